//! YAML scalars and tags (core schema, YAML 1.2): which tags are core, and what
//! value a scalar's text resolves to, exactly (`0.1` stays the decimal `0.1`, an
//! octal or hex integer becomes its exact decimal digits). The loader in
//! `yaml.rs` builds the tree; this decides each leaf. Pure: no I/O; must never
//! panic on any input.
//!
//! Decisions the contract leaves open:
//! - The non-specific tag `!` makes a scalar a string (`a: ! 12` is `"12"`) and
//!   leaves a mapping or sequence as it is, as YAML 1.2 resolves it.
//! - `!!binary`, `!!timestamp`, `!!set`, local tags (`!foo`), … are not core tags
//!   and are refused.
//! - Signed `.inf` and the `.nan` forms are refused; `-.nan`, which the core schema
//!   does not list, is the string it looks like.

use saphyr_parser::{ScalarStyle, Tag};

use crate::canon::number::Decimal;
use crate::canon::parse_error::{ParseError, Position};
use crate::canon::value::Value;
use crate::text::excerpt;

/// `!!x` is shorthand for this prefix followed by `x`.
const CORE_PREFIX: &str = "tag:yaml.org,2002:";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CoreTag {
    Str,
    Int,
    Float,
    Bool,
    Null,
    Map,
    Sequence,
    /// `!`: a string for a scalar, the node's own kind otherwise.
    NonSpecific,
}

pub(super) fn tag_name(tag: &Tag) -> &'static str {
    match tag.suffix.as_str() {
        "str" | "tag:yaml.org,2002:str" => "!!str",
        "int" | "tag:yaml.org,2002:int" => "!!int",
        "float" | "tag:yaml.org,2002:float" => "!!float",
        "bool" | "tag:yaml.org,2002:bool" => "!!bool",
        "null" | "tag:yaml.org,2002:null" => "!!null",
        "map" | "tag:yaml.org,2002:map" => "!!map",
        "seq" | "tag:yaml.org,2002:seq" => "!!seq",
        _ => "tagged",
    }
}

/// The core tag `tag` names, whether written `!!int` or `!<tag:yaml.org,2002:int>`.
pub(super) fn core_tag(tag: &Tag, at: Position) -> Result<CoreTag, ParseError> {
    let full = format!("{}{}", tag.handle, tag.suffix);
    if full == "!" {
        return Ok(CoreTag::NonSpecific);
    }
    let core = match full.strip_prefix(CORE_PREFIX) {
        Some("str") => CoreTag::Str,
        Some("int") => CoreTag::Int,
        Some("float") => CoreTag::Float,
        Some("bool") => CoreTag::Bool,
        Some("null") => CoreTag::Null,
        Some("map") => CoreTag::Map,
        Some("seq") => CoreTag::Sequence,
        Some(other) => {
            return Err(ParseError::UnsupportedTag {
                at,
                tag: excerpt(&format!("!!{other}")),
            });
        }
        None => {
            return Err(ParseError::UnsupportedTag {
                at,
                tag: excerpt(&full),
            });
        }
    };
    Ok(core)
}

pub(super) fn tag_mismatch(tag: &'static str, text: &str, at: Position) -> ParseError {
    ParseError::TagMismatch {
        at,
        tag,
        text: excerpt(text),
    }
}

/// A scalar's value: quoted and block scalars are strings unless tagged; plain
/// ones go through the core schema.
pub(super) fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    at: Position,
) -> Result<Value, ParseError> {
    let Some(tag) = tag else {
        if style == ScalarStyle::Plain {
            return resolve_plain(text, at);
        }
        return Ok(Value::String(text.to_owned()));
    };
    let mismatch = || tag_mismatch(tag_name(tag), text, at);
    match core_tag(tag, at)? {
        CoreTag::Str | CoreTag::NonSpecific => Ok(Value::String(text.to_owned())),
        CoreTag::Null if is_null(text) => Ok(Value::Null),
        CoreTag::Bool => parse_bool(text).map(Value::Bool).ok_or_else(mismatch),
        CoreTag::Int => parse_int(text, at).unwrap_or_else(|| Err(mismatch())),
        CoreTag::Float if is_non_finite(text) => Err(ParseError::NotFinite { at }),
        CoreTag::Float if is_core_float(text) => parse_decimal(text, at),
        CoreTag::Null | CoreTag::Float | CoreTag::Map | CoreTag::Sequence => Err(mismatch()),
    }
}

/// The YAML 1.2 core schema's resolution of an untagged plain scalar.
fn resolve_plain(text: &str, at: Position) -> Result<Value, ParseError> {
    if is_null(text) {
        return Ok(Value::Null);
    }
    if let Some(b) = parse_bool(text) {
        return Ok(Value::Bool(b));
    }
    if let Some(int) = parse_int(text, at) {
        return int;
    }
    if is_core_float(text) {
        return parse_decimal(text, at);
    }
    if is_non_finite(text) {
        return Err(ParseError::NotFinite { at });
    }
    Ok(Value::String(text.to_owned()))
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn all_digits(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_digit(radix))
}

/// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`; `None` when `text` is none of them.
fn parse_int(text: &str, at: Position) -> Option<Result<Value, ParseError>> {
    if let Some(digits) = text.strip_prefix("0o") {
        return all_digits(digits, 8).then(|| radix_number(text, digits, 8, at));
    }
    if let Some(digits) = text.strip_prefix("0x") {
        return all_digits(digits, 16).then(|| radix_number(text, digits, 16, at));
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    all_digits(unsigned, 10).then(|| parse_decimal(text, at))
}

fn parse_decimal(text: &str, at: Position) -> Result<Value, ParseError> {
    Decimal::parse(text)
        .map(Value::Number)
        .map_err(|e| ParseError::from_number(at, text, e))
}

/// An octal or hexadecimal integer, converted to decimal digits exactly.
fn radix_number(text: &str, digits: &str, radix: u32, at: Position) -> Result<Value, ParseError> {
    let digits = digits.trim_start_matches('0');
    // f64::MAX < 2^1024: more significant digits than 1024 bits hold is out of
    // range, and refusing early keeps the quadratic conversion below small.
    let bits_per_digit = if radix == 16 { 4 } else { 3 };
    if digits.len() * bits_per_digit > 1024 + bits_per_digit {
        return Err(ParseError::NumberOutOfRange {
            at,
            text: excerpt(text),
        });
    }
    const BASE: u64 = 1_000_000_000;
    // Little-endian limbs in base 10^9.
    let mut limbs: Vec<u64> = vec![0];
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(radix).unwrap_or(0));
        for limb in &mut limbs {
            let v = *limb * u64::from(radix) + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut decimal = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            decimal.push_str(&limb.to_string());
        } else {
            decimal.push_str(&format!("{limb:09}"));
        }
    }
    Decimal::parse(&decimal)
        .map(Value::Number)
        .map_err(|e| ParseError::from_number(at, text, e))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_core_float(text: &str) -> bool {
    let b = text.strip_prefix(['-', '+']).unwrap_or(text).as_bytes();
    let digits_from = |i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = digits_from(0);
    if i == 0 {
        if b.first() != Some(&b'.') {
            return false;
        }
        let fraction = digits_from(1);
        if fraction == 0 {
            return false;
        }
        i = 1 + fraction;
    } else if b.get(i) == Some(&b'.') {
        i += 1 + digits_from(i + 1);
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'-' | b'+') = b.get(i) {
            i += 1;
        }
        let exponent = digits_from(i);
        if exponent == 0 {
            return false;
        }
        i += exponent;
    }
    i == b.len()
}

/// The core schema's infinities and NaNs, which no valid document may hold.
fn is_non_finite(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN")
}
