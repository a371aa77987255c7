//! Bytes → [`Value`]: the entry point for all three formats, and the JSON parser.
//! Validity (§4): one object at the root, no duplicate key, valid UTF-8, no
//! NaN/Infinity, |number| ≤ f64::MAX, nesting ≤ 128. YAML lives in `yaml.rs`,
//! TOML in `toml_doc.rs`; both report through [`ParseError`].
//!
//! Pure: no I/O. Must never panic or overflow the stack on hostile input, and an
//! error message never quotes more of the document than one key or number.
//!
//! JSON is parsed by hand rather than through serde_json because serde_json keeps
//! the last of two duplicate keys and turns numbers into binary floats; the
//! contract needs both refused or kept exact.
//!
//! A leading UTF-8 byte order mark is refused in JSON (RFC 8259 §8.1 says a
//! JSON text must not carry one); YAML and TOML accept it, as their specs do.

use std::fmt;

use super::Format;
use super::number::{Decimal, NumberError};
use super::value::{DuplicateKey, Map, Value};

/// Deepest nesting a valid document may have (§4): 128 containers inside each
/// other are fine, the 129th is refused.
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Bound on YAML alias expansion (the runtime's `max_body_bytes`).
    pub max_bytes: u64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 1_048_576,
        }
    }
}

/// Where in a document something is: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

impl Position {
    /// The position of byte `offset` of `text` (clamped to its end).
    pub(crate) fn at_offset(text: &str, offset: usize) -> Position {
        let bytes = text.as_bytes();
        let before = &bytes[..offset.min(bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        // Columns count characters, so skip UTF-8 continuation bytes.
        let column = before[line_start..]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count()
            + 1;
        Position { line, column }
    }
}

/// Why a document is not valid, as one sentence (without the file name: callers add it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the document is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("the document starts with a UTF-8 byte order mark, which JSON does not allow")]
    ByteOrderMark,
    #[error("the document is empty")]
    Empty,
    #[error("{}", syntax_message(.at, .format, .message))]
    Syntax {
        at: Option<Position>,
        format: &'static str,
        message: String,
    },
    #[error("{at}: duplicate key `{key}`")]
    DuplicateKey { at: Position, key: String },
    #[error("{at}: number `{text}` is larger in magnitude than 1.7976931348623157e308")]
    NumberOutOfRange { at: Position, text: String },
    #[error("{at}: number `{text}` has too many digits to be compared exactly")]
    NumberTooPrecise { at: Position, text: String },
    #[error("{at}: integer `{text}` does not fit in 64 bits, as TOML requires")]
    IntegerOutOfRange { at: Position, text: String },
    #[error("{at}: NaN and infinite numbers are not allowed")]
    NotFinite { at: Position },
    #[error("{at}: `{escape}` is half of a UTF-16 surrogate pair without its other half")]
    LoneSurrogate { at: Position, escape: String },
    #[error("{at}: nesting is deeper than {MAX_DEPTH} levels")]
    TooDeep { at: Position },
    #[error("the document's root is {found}, not an object")]
    RootNotObject { found: &'static str },
    #[error("{at}: a second YAML document starts here, but only one is allowed")]
    MultipleDocuments { at: Position },
    #[error("{at}: tag `{tag}` is not one of the YAML core tags")]
    UnsupportedTag { at: Position, tag: String },
    #[error("{at}: `{text}` is not a valid {tag} value")]
    TagMismatch {
        at: Position,
        tag: &'static str,
        text: String,
    },
    #[error("{at}: a {kind} cannot be a mapping key")]
    ComplexKey { at: Position, kind: &'static str },
    #[error("{at}: the merge key `<<` needs a mapping or a sequence of mappings")]
    BadMerge { at: Position },
    #[error("{at}: this alias refers to a node that contains it")]
    RecursiveAlias { at: Position },
    #[error("{at}: expanding YAML aliases would exceed the limit of {limit} bytes")]
    AliasExpansion { at: Position, limit: u64 },
}

fn syntax_message(at: &Option<Position>, format: &str, message: &str) -> String {
    match at {
        Some(at) => format!("{at}: not valid {format}: {message}"),
        None => format!("not valid {format}: {message}"),
    }
}

impl ParseError {
    /// The error for a number that [`Decimal::parse`] refused, quoting a short excerpt.
    pub(crate) fn from_number(at: Position, text: &str, error: NumberError) -> ParseError {
        let text = excerpt(text);
        match error {
            NumberError::OutOfRange(_) => ParseError::NumberOutOfRange { at, text },
            NumberError::TooPrecise(_) => ParseError::NumberTooPrecise { at, text },
            NumberError::Syntax(_) => ParseError::Syntax {
                at: Some(at),
                format: "number",
                message: format!("`{text}` is not a number"),
            },
        }
    }
}

/// A key or number as it may appear in a message: one line, never the whole input.
pub(crate) fn excerpt(s: &str) -> String {
    bounded(s, 60)
}

/// A parser library's own message, kept to one line of reasonable length.
pub(crate) fn one_line(s: &str) -> String {
    bounded(s, 240)
}

fn bounded(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a whole document; its root must be an object.
pub fn parse_document(
    bytes: &[u8],
    format: Format,
    limits: &ParseLimits,
) -> Result<Value, ParseError> {
    let text = utf8(bytes)?;
    let value = match format {
        Format::Json => parse_json_text(text)?,
        Format::Yaml => super::yaml::parse_yaml(text, limits)?,
        Format::Toml => super::toml_doc::parse_toml(text)?,
    };
    match value {
        Value::Object(_) => Ok(value),
        other => Err(ParseError::RootNotObject {
            found: other.type_name(),
        }),
    }
}

/// Parses one JSON value of any type (also used for values inside path patterns).
pub fn parse_json_value(bytes: &[u8]) -> Result<Value, ParseError> {
    parse_json_text(utf8(bytes)?)
}

fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| ParseError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })
}

fn parse_json_text(text: &str) -> Result<Value, ParseError> {
    if text.starts_with('\u{feff}') {
        return Err(ParseError::ByteOrderMark);
    }
    let mut p = Json {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.skip_whitespace();
    if p.pos == p.bytes.len() {
        return Err(ParseError::Empty);
    }
    let value = p.value()?;
    p.skip_whitespace();
    if p.pos != p.bytes.len() {
        return Err(p.syntax(p.pos, "unexpected text after the JSON value".into()));
    }
    Ok(value)
}

/// A strict RFC 8259 recursive-descent parser over the bytes of valid UTF-8.
///
/// Recursion is safe because `depth` is checked before each nested container, so
/// the stack never holds more than [`MAX_DEPTH`] frames of it.
struct Json<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Json<'_> {
    fn at(&self, offset: usize) -> Position {
        Position::at_offset(self.text, offset)
    }

    fn syntax(&self, offset: usize, message: String) -> ParseError {
        ParseError::Syntax {
            at: Some(self.at(offset)),
            format: "JSON",
            message,
        }
    }

    /// Describes what is at `offset`, for "expected X, found Y" messages.
    fn found(&self, offset: usize) -> String {
        match self.text.get(offset..).and_then(|rest| rest.chars().next()) {
            None => "the end of the document".into(),
            Some(c) if c.is_control() => format!("`{}`", c.escape_default()),
            Some(c) => format!("`{c}`"),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'N' | b'I') if self.non_finite_at(self.pos) => Err(ParseError::NotFinite {
                at: self.at(self.pos),
            }),
            _ => Err(self.syntax(
                self.pos,
                format!("expected a value, found {}", self.found(self.pos)),
            )),
        }
    }

    fn non_finite_at(&self, offset: usize) -> bool {
        let rest = &self.bytes[offset.min(self.bytes.len())..];
        rest.starts_with(b"NaN") || rest.starts_with(b"Infinity")
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, ParseError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.syntax(self.pos, format!("expected `{word}`")))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::TooDeep {
                at: self.at(self.pos),
            });
        }
        Ok(())
    }

    fn array(&mut self) -> Result<Value, ParseError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => {
                    return Err(self.syntax(
                        self.pos,
                        format!(
                            "expected `,` or `]` after an array item, found {}",
                            self.found(self.pos)
                        ),
                    ));
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn object(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.enter()?;
        self.pos += 1;
        let mut entries = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(Map::new()));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.syntax(
                    self.pos,
                    format!("expected a string key, found {}", self.found(self.pos)),
                ));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.syntax(
                    self.pos,
                    format!(
                        "expected `:` after an object key, found {}",
                        self.found(self.pos)
                    ),
                ));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value()?;
            entries.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => {
                    return Err(self.syntax(
                        self.pos,
                        format!(
                            "expected `,` or `}}` after an object member, found {}",
                            self.found(self.pos)
                        ),
                    ));
                }
            }
        }
        self.depth -= 1;
        match Map::from_entries(entries) {
            Ok(map) => Ok(Value::Object(map)),
            Err(DuplicateKey(key)) => Err(ParseError::DuplicateKey {
                at: self.at(self.second_occurrence(start, &key)),
                key: excerpt(&key),
            }),
        }
    }

    /// Offset of the second `key` in the object starting at `start`. Only called on
    /// the error path, so the hot path need not remember where each key was.
    fn second_occurrence(&self, start: usize, key: &str) -> usize {
        let mut p = Json {
            text: self.text,
            bytes: self.bytes,
            pos: start + 1,
            depth: self.depth + 1,
        };
        let mut seen = false;
        loop {
            p.skip_whitespace();
            let key_at = p.pos;
            if p.peek() != Some(b'"') {
                return start;
            }
            let Ok(k) = p.string() else { return start };
            if k == key {
                if seen {
                    return key_at;
                }
                seen = true;
            }
            p.skip_whitespace();
            p.pos += 1; // the `:`, already checked by the first pass
            p.skip_whitespace();
            if p.value().is_err() {
                return start;
            }
            p.skip_whitespace();
            p.pos += 1; // `,` (a `}` cannot come before the second occurrence)
        }
    }

    /// A string literal at `self.pos` (a `"`). Runs without escapes are copied as
    /// whole slices: most strings have none and cost one allocation.
    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        let start = open + 1;
        let mut i = start;
        while let Some(&c) = self.bytes.get(i) {
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(self.slice(start, i).to_owned());
                }
                b'\\' => return self.escaped_string(open, start, i),
                0..=0x1f => return Err(self.control_in_string(i)),
                _ => i += 1,
            }
        }
        Err(self.syntax(open, "this string is never closed".into()))
    }

    /// `text[start..end]`; both ends sit next to ASCII bytes, so on char boundaries.
    fn slice(&self, start: usize, end: usize) -> &str {
        self.text.get(start..end).unwrap_or_default()
    }

    fn control_in_string(&self, offset: usize) -> ParseError {
        self.syntax(
            offset,
            format!(
                "control character {} must be escaped inside a string",
                self.found(offset)
            ),
        )
    }

    fn escaped_string(
        &mut self,
        open: usize,
        start: usize,
        first_escape: usize,
    ) -> Result<String, ParseError> {
        let mut out = String::with_capacity(first_escape - start + 16);
        out.push_str(self.slice(start, first_escape));
        let mut i = first_escape;
        loop {
            let Some(&c) = self.bytes.get(i) else {
                return Err(self.syntax(open, "this string is never closed".into()));
            };
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(out);
                }
                b'\\' => i = self.escape(i, &mut out)?,
                0..=0x1f => return Err(self.control_in_string(i)),
                _ => {
                    let run = i;
                    while let Some(&c) = self.bytes.get(i) {
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        i += 1;
                    }
                    out.push_str(self.slice(run, i));
                }
            }
        }
    }

    /// Decodes the escape at `i` (a `\`) into `out`; returns the offset after it.
    fn escape(&self, i: usize, out: &mut String) -> Result<usize, ParseError> {
        let simple = match self.bytes.get(i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(i, out),
            _ => {
                return Err(self.syntax(
                    i,
                    format!("invalid escape `\\` followed by {}", self.found(i + 1)),
                ));
            }
        };
        out.push(simple);
        Ok(i + 2)
    }

    fn unicode_escape(&self, i: usize, out: &mut String) -> Result<usize, ParseError> {
        let lone = |this: &Self| ParseError::LoneSurrogate {
            at: this.at(i),
            escape: this.slice(i, i + 6).to_owned(),
        };
        let high = self.hex4(i)?;
        let code = match high {
            0xD800..=0xDBFF => {
                let next = i + 6;
                if self.bytes.get(next) != Some(&b'\\') || self.bytes.get(next + 1) != Some(&b'u') {
                    return Err(lone(self));
                }
                let low = self.hex4(next)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(lone(self));
                }
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                out.push(char::from_u32(code).ok_or_else(|| lone(self))?);
                return Ok(next + 6);
            }
            0xDC00..=0xDFFF => return Err(lone(self)),
            other => other,
        };
        out.push(char::from_u32(code).ok_or_else(|| lone(self))?);
        Ok(i + 6)
    }

    /// The four hex digits of the `\uXXXX` escape at `i`.
    fn hex4(&self, i: usize) -> Result<u32, ParseError> {
        let digits = self.bytes.get(i + 2..i + 6).unwrap_or_default();
        let mut code = 0u32;
        for (n, &d) in digits.iter().enumerate() {
            let v = (d as char).to_digit(16).ok_or_else(|| {
                self.syntax(
                    i + 2 + n,
                    format!(
                        "`\\u` needs four hex digits, found {}",
                        self.found(i + 2 + n)
                    ),
                )
            })?;
            code = code * 16 + v;
        }
        if digits.len() < 4 {
            return Err(self.syntax(i, "`\\u` needs four hex digits".into()));
        }
        Ok(code)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept exact.
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let mut i = start;
        if self.bytes[i] == b'-' {
            i += 1;
        }
        match self.bytes.get(i) {
            Some(b'0') => {
                i += 1;
                if let Some(b'0'..=b'9') = self.bytes.get(i) {
                    return Err(self.syntax(start, "a number cannot have leading zeros".into()));
                }
            }
            Some(b'1'..=b'9') => i = self.digits(i),
            Some(b'I') if self.non_finite_at(i) => {
                return Err(ParseError::NotFinite { at: self.at(start) });
            }
            _ => return Err(self.expected_digit(i)),
        }
        if self.bytes.get(i) == Some(&b'.') {
            i += 1;
            let after = self.digits(i);
            if after == i {
                return Err(self.expected_digit(i));
            }
            i = after;
        }
        if let Some(b'e' | b'E') = self.bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = self.bytes.get(i) {
                i += 1;
            }
            let after = self.digits(i);
            if after == i {
                return Err(self.expected_digit(i));
            }
            i = after;
        }
        self.pos = i;
        let text = self.slice(start, i);
        Decimal::parse(text)
            .map(Value::Number)
            .map_err(|e| ParseError::from_number(self.at(start), text, e))
    }

    fn digits(&self, mut i: usize) -> usize {
        while let Some(b'0'..=b'9') = self.bytes.get(i) {
            i += 1;
        }
        i
    }

    fn expected_digit(&self, i: usize) -> ParseError {
        self.syntax(
            i,
            format!("expected a digit in a number, found {}", self.found(i)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Result<Value, ParseError> {
        parse_document(s.as_bytes(), Format::Json, &ParseLimits::default())
    }

    fn num(s: &str) -> Value {
        Value::Number(Decimal::parse(s).unwrap())
    }

    fn obj(entries: Vec<(&str, Value)>) -> Value {
        Value::Object(
            Map::from_entries(entries.into_iter().map(|(k, v)| (k.into(), v)).collect()).unwrap(),
        )
    }

    #[test]
    fn parses_every_json_type() {
        let v = json(
            r#" {"s": "x", "n": -1.5e2, "t": true, "f": false, "z": null, "a": [1, {}, []]} "#,
        )
        .unwrap();
        assert_eq!(
            v,
            obj(vec![
                ("s", Value::String("x".into())),
                ("n", num("-150")),
                ("t", Value::Bool(true)),
                ("f", Value::Bool(false)),
                ("z", Value::Null),
                (
                    "a",
                    Value::Array(vec![
                        num("1"),
                        Value::Object(Map::new()),
                        Value::Array(vec![])
                    ])
                ),
            ])
        );
    }

    #[test]
    fn invalid_utf8_names_the_byte_offset() {
        let mut bytes = br#"{"a": "xy"}"#.to_vec();
        bytes[8] = 0xff;
        let e = parse_document(&bytes, Format::Json, &ParseLimits::default()).unwrap_err();
        assert_eq!(e, ParseError::InvalidUtf8 { offset: 8 });
        assert!(e.to_string().contains("offset 8"), "{e}");
    }

    #[test]
    fn lone_surrogate_escapes_are_refused() {
        for bad in [
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\ud800x"}"#,
            r#"{"a": "\udc00"}"#,
            r#"{"a": "\ud800\u0041"}"#,
        ] {
            assert!(
                matches!(json(bad), Err(ParseError::LoneSurrogate { .. })),
                "{bad}: {:?}",
                json(bad)
            );
        }
        assert_eq!(
            json(r#"{"a": "\ud83d\ude00 \u00e9\n\"\\\/\b\f\r\t"}"#).unwrap(),
            obj(vec![(
                "a",
                Value::String("😀 é\n\"\\/\u{8}\u{c}\r\t".into())
            )])
        );
    }

    #[test]
    fn duplicate_key_is_refused_naming_key_and_position() {
        let e = json("{\n  \"a\": 1,\n  \"b\": {\"x\": 1, \"x\": 2}\n}").unwrap_err();
        assert_eq!(
            e,
            ParseError::DuplicateKey {
                at: Position {
                    line: 3,
                    column: 17
                },
                key: "x".into()
            }
        );
        assert_eq!(e.to_string(), "line 3, column 17: duplicate key `x`");
        assert!(matches!(
            json(r#"{"a": 1, "b": 2, "a": 3}"#),
            Err(ParseError::DuplicateKey { .. })
        ));
        // Escapes are resolved before comparing: "\u0061" is "a".
        assert!(matches!(
            json(r#"{"a": 1, "\u0061": 2}"#),
            Err(ParseError::DuplicateKey { .. })
        ));
    }

    #[test]
    fn nan_and_infinity_are_refused() {
        for bad in [r#"{"a": NaN}"#, r#"{"a": Infinity}"#, r#"{"a": -Infinity}"#] {
            assert!(
                matches!(json(bad), Err(ParseError::NotFinite { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers_are_kept_exact() {
        let a = json(r#"{"n": 9007199254740993}"#).unwrap();
        let b = json(r#"{"n": 9007199254740992}"#).unwrap();
        assert_ne!(a, b);
        let ten = json(r#"{"n": 10}"#).unwrap();
        assert_eq!(ten, json(r#"{"n": 10.0}"#).unwrap());
        assert_eq!(ten, json(r#"{"n": 1e1}"#).unwrap());
        assert_eq!(ten, json(r#"{"n": 100E-1}"#).unwrap());
        assert_eq!(
            json(r#"{"n": 0.1}"#).unwrap(),
            obj(vec![("n", Value::Number(Decimal::from_f64(0.1).unwrap()))])
        );
    }

    #[test]
    fn magnitude_beyond_f64_max_is_refused() {
        assert!(json(r#"{"n": 1.7976931348623157e308}"#).is_ok());
        assert!(json(r#"{"n": -1.7976931348623157e308}"#).is_ok());
        let e = json(r#"{"n": 1.7976931348623158e308}"#).unwrap_err();
        assert!(matches!(e, ParseError::NumberOutOfRange { .. }), "{e}");
        assert!(matches!(
            json(r#"{"n": -1e309}"#),
            Err(ParseError::NumberOutOfRange { .. })
        ));
    }

    #[test]
    fn json_number_grammar_is_strict() {
        for bad in [
            "+1", ".5", "1.", "01", "-", "1e", "1e+", "0x10", "1_000", "--1", "-.5",
        ] {
            let doc = format!(r#"{{"n": {bad}}}"#);
            assert!(
                matches!(json(&doc), Err(ParseError::Syntax { .. })),
                "{bad}: {:?}",
                json(&doc)
            );
        }
        for good in ["0", "-0", "0.5", "-0.5e-3", "1E+2", "123"] {
            assert!(json(&format!(r#"{{"n": {good}}}"#)).is_ok(), "{good}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        let e = parse_json_value(deep.as_bytes()).unwrap_err();
        assert!(matches!(e, ParseError::TooDeep { .. }), "{e}");
        let deep_objects = r#"{"a":"#.repeat(100_000);
        assert!(matches!(
            json(&deep_objects),
            Err(ParseError::TooDeep { .. })
        ));
    }

    #[test]
    fn nesting_of_exactly_128_is_allowed_and_129_is_not() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_json_value(nest(MAX_DEPTH).as_bytes()).is_ok());
        assert!(matches!(
            parse_json_value(nest(MAX_DEPTH + 1).as_bytes()),
            Err(ParseError::TooDeep { .. })
        ));
    }

    #[test]
    fn trailing_garbage_is_refused() {
        for bad in [r#"{"a": 1} x"#, r#"{"a": 1}}"#, r#"{"a": 1}{}"#, "{} 1"] {
            assert!(matches!(json(bad), Err(ParseError::Syntax { .. })), "{bad}");
        }
        assert!(json("  {\"a\": 1}\r\n\t ").is_ok());
    }

    #[test]
    fn byte_order_mark_is_refused_in_json() {
        assert_eq!(json("\u{feff}{}"), Err(ParseError::ByteOrderMark));
    }

    #[test]
    fn malformed_json_is_refused() {
        for bad in [
            "",
            "   ",
            "{",
            "{\"a\"}",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "[1,]",
            "[1 2]",
            "{'a': 1}",
            "{a: 1}",
            "{\"a\": tru}",
            "{\"a\": \"unterminated}",
            "{\"a\": \"tab\there\"}",
            "{\"a\": \"\\x\"}",
            "{\"a\": \"\\u12\"}",
            "{\"a\": \"\\u12G4\"}",
            "{\"a\": 1} // comment",
        ] {
            assert!(json(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn root_must_be_an_object() {
        assert_eq!(
            json("[1]"),
            Err(ParseError::RootNotObject { found: "array" })
        );
        assert_eq!(
            json("\"s\""),
            Err(ParseError::RootNotObject { found: "string" })
        );
        assert_eq!(
            parse_json_value(b"[1]").unwrap(),
            Value::Array(vec![num("1")])
        );
    }

    #[test]
    fn messages_are_one_line_with_position_and_never_quote_the_document() {
        let big_key = "k".repeat(10_000);
        let doc = format!("{{\"{big_key}\": 1, \"{big_key}\": 2}}");
        let msg = json(&doc).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        let huge = format!("{{\"n\": 1{}e400}}", "0".repeat(10_000));
        let msg = json(&huge).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        let msg = json("{\n\"a\": 1\n\"b\": 2}").unwrap_err().to_string();
        assert_eq!(
            msg,
            "line 3, column 1: not valid JSON: expected `,` or `}` after an object member, found `\"`"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = json("{\"é\": 1, \"é\": 2}").unwrap_err();
        assert_eq!(
            e,
            ParseError::DuplicateKey {
                at: Position {
                    line: 1,
                    column: 10
                },
                key: "é".into()
            }
        );
    }

    #[test]
    fn same_document_in_json_yaml_and_toml_is_the_same_tree() {
        let limits = ParseLimits::default();
        let from_json = json(
            r#"{"name": "mm.eu", "enabled": true, "ratio": 0.1, "big": 9007199254740993,
                "ten": 10, "tags": ["btc", "eth"], "yes": "yes",
                "limits": {"max_usd": 2.5e6, "per_market": [{"id": "m1", "max": 1.50}]},
                "started": "1979-05-27T07:32:00Z"}"#,
        )
        .unwrap();
        let yaml = "name: mm.eu\nenabled: true\nratio: 0.1\nbig: 9007199254740993\nten: 10.0\n\
                    tags: [btc, eth]\nyes: yes\nlimits:\n  max_usd: 2500000\n  per_market:\n    \
                    - id: m1\n      max: 1.5\nstarted: '1979-05-27T07:32:00Z'\n";
        let from_yaml = parse_document(yaml.as_bytes(), Format::Yaml, &limits).unwrap();
        let toml = "name = \"mm.eu\"\nenabled = true\nratio = 0.1\nbig = 9007199254740993\n\
                    ten = 1e1\ntags = [\"btc\", \"eth\"]\nyes = \"yes\"\nstarted = 1979-05-27T07:32:00Z\n\
                    [limits]\nmax_usd = 2_500_000\n[[limits.per_market]]\nid = \"m1\"\nmax = 1.500\n";
        let from_toml = parse_document(toml.as_bytes(), Format::Toml, &limits).unwrap();
        assert_eq!(from_json, from_yaml);
        assert_eq!(from_json, from_toml);
    }

    fn from_serde(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(if let Some(i) = n.as_i64() {
                Decimal::from_i64(i)
            } else if let Some(u) = n.as_u64() {
                Decimal::from_u64(u)
            } else {
                // The value as serde_json wrote it: where two shortest forms
                // round-trip (…532.2 and …532.3 for …532.25), ryu and Rust's
                // formatter may pick differently, and we read what is written.
                Decimal::parse(&n.to_string()).unwrap()
            }),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(from_serde).collect()),
            serde_json::Value::Object(m) => Value::Object(
                Map::from_entries(m.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
                    .unwrap(),
            ),
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_serde_json_output_parses_to_the_same_tree(v in arb_json()) {
            let compact = serde_json::to_string(&v).unwrap();
            proptest::prop_assert_eq!(parse_json_value(compact.as_bytes()).unwrap(), from_serde(&v));
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            proptest::prop_assert_eq!(parse_json_value(pretty.as_bytes()).unwrap(), from_serde(&v));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_json_value(&bytes);
        }
    }

    /// A bot config of the fleet's shape: ~60 fields, some nested.
    fn sixty_field_document() -> String {
        let mut fields = Vec::new();
        for i in 0..20 {
            fields.push(format!("\"max_position_usd_{i}\": {}.25", 1000 + i));
            fields.push(format!("\"venue_name_{i}\": \"binance-futures-{i}\""));
            fields.push(format!("\"enabled_{i}\": {}", i % 2 == 0));
        }
        fields.push(
            r#""limits": {"per_market": [{"id": "m1", "max_usd": 1e6}, {"id": "m2", "max_usd": 250000.5}], "tags": ["btc", "eth"]}"#
                .into(),
        );
        format!("{{{}}}", fields.join(",\n  "))
    }

    #[test]
    fn throughput_of_a_sixty_field_document() {
        let doc = sixty_field_document();
        let n = 2_000;
        let started = std::time::Instant::now();
        for _ in 0..n {
            let v = parse_json_value(doc.as_bytes()).unwrap();
            assert_eq!(v.as_object().map(Map::len), Some(61));
        }
        let elapsed = started.elapsed();
        let per_doc = elapsed / n;
        let mb_per_s = (doc.len() as f64 * f64::from(n)) / elapsed.as_secs_f64() / 1e6;
        println!(
            "json: {} bytes/doc, {per_doc:?}/doc, {mb_per_s:.1} MB/s (20,000 docs ≈ {:?})",
            doc.len(),
            per_doc * 20_000
        );
    }
}
