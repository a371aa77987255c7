//! Bytes → [`Value`] for JSON and TOML, and the entry point for all three formats.
//! Validity (§4): one object at the root, no duplicate key, valid UTF-8, no
//! NaN/Infinity, |number| ≤ f64::MAX, nesting ≤ 128.

use super::Format;
use super::value::Value;

/// Deepest nesting a valid document may have (§4).
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

/// Why a document is not valid, as one sentence (without the file name: callers add it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Invalid(String),
}

/// Parses a whole document; its root must be an object.
pub fn parse_document(
    bytes: &[u8],
    format: Format,
    limits: &ParseLimits,
) -> Result<Value, ParseError> {
    let _ = (limits, format);
    let v = parse_json_value(bytes)?;
    match v {
        Value::Object(_) => Ok(v),
        other => Err(ParseError::Invalid(format!(
            "the document's root is {}, not an object",
            other.type_name()
        ))),
    }
}

/// Parses one JSON value of any type (also used for values inside path patterns).
// PLACEHOLDER (replaced by the real parser): goes through serde_json, so numbers
// are not exact and duplicate keys are not detected.
pub fn parse_json_value(bytes: &[u8]) -> Result<Value, ParseError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ParseError::Invalid(e.to_string()))?;
    Ok(from_serde(&v))
}

fn from_serde(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            Value::Number(super::Decimal::parse(&n.to_string()).unwrap_or(super::Decimal::ZERO))
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(m) => Value::Object(
            super::value::Map::from_entries(
                m.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect(),
            )
            .unwrap_or_default(),
        ),
    }
}
