//! The words every sub-parser (JSON, YAML, TOML) reports in: [`ParseError`],
//! the [`Position`] it points at, and the validity limits (§4) they all enforce.
//! A leaf: it imports no parser, so `parse.rs` can dispatch to the parsers and
//! the parsers can import this without a circle.
//!
//! A message never quotes more of the document than one key or number
//! ([`excerpt`]) and says where, as line and column in characters.

use std::fmt;

use super::number::NumberError;
use crate::text::excerpt;

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
