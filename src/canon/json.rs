//! JSON (RFC 8259) → [`Value`], strictly: one value, no trailing text, no
//! duplicate key, no NaN/Infinity, numbers kept exact, nesting ≤ [`MAX_DEPTH`].
//! Pure: no I/O. Must never panic or overflow the stack on hostile input. Tested
//! through [`super::parse::parse_document`], beside the other formats.
//!
//! JSON is parsed by hand rather than through serde_json because serde_json keeps
//! the last of two duplicate keys and turns numbers into binary floats; the
//! contract needs both refused or kept exact.
//!
//! A leading UTF-8 byte order mark is refused in JSON (RFC 8259 §8.1 says a
//! JSON text must not carry one); YAML and TOML accept it, as their specs do.

use super::number::Decimal;
use super::parse_error::{MAX_DEPTH, ParseError, Position};
use super::value::{DuplicateKey, Map, Value};
use crate::text::excerpt;

/// Parses one JSON value of any type from text already known to be UTF-8.
pub(super) fn parse_json_text(text: &str) -> Result<Value, ParseError> {
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
