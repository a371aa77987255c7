//! The document tree both sides are parsed into: JSON's data model with exact
//! decimal numbers and objects kept sorted by key bytes (key order never matters).
//! Pure: no I/O.

use super::number::Decimal;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

/// An object: entries sorted by the UTF-8 bytes of their keys, keys unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

/// Returned by [`Map::from_entries`] when a key appears twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey(pub String);

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    /// Sorts the entries; a repeated key is refused, never silently resolved.
    pub fn from_entries(mut entries: Vec<(String, Value)>) -> Result<Map, DuplicateKey> {
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DuplicateKey(w[0].0.clone()));
        }
        Ok(Map { entries })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self
            .entries
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
        {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces, keeping the order.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self
            .entries
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
        {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self
            .entries
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
        {
            Ok(i) => Some(self.entries.remove(i).1),
            Err(_) => None,
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key-byte order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Entries in key-byte order, borrowed.
    pub(crate) fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// Entries in key-byte order, by value: consuming a map moves its keys.
    pub fn into_entries(self) -> Vec<(String, Value)> {
        self.entries
    }

    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&str, &mut Value)> {
        self.entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Canonical JSON (§6.6): sorted keys, no insignificant whitespace, numbers as
    /// exact decimals without exponent, strings escaped like paths.
    pub fn to_canonical_json(&self) -> String {
        let mut out = String::new();
        self.write_canonical_json(&mut out);
        out
    }

    pub fn write_canonical_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => n.write_canonical(out),
            Value::String(s) => write_json_string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_canonical_json(out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(k, out);
                    out.push(':');
                    v.write_canonical_json(out);
                }
                out.push('}');
            }
        }
    }

    /// For the `jsonschema` validator, which works on `serde_json`. Integers that fit
    /// 64 bits stay exact; other numbers become their nearest f64.
    pub fn to_serde_json(&self) -> serde_json::Value {
        // One text buffer for every number: converting is on every validation's
        // path, and a fresh string per number was most of its cost.
        self.to_serde_json_with(&mut String::new())
    }

    fn to_serde_json_with(&self, scratch: &mut String) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                scratch.clear();
                n.write_canonical(scratch);
                serde_number(n, scratch).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| v.to_serde_json_with(scratch))
                    .collect(),
            ),
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_serde_json_with(scratch)))
                    .collect(),
            ),
        }
    }
}

/// The `serde_json` number validation sees for `n`, whose canonical text is `text`:
/// exact when an integer fits 64 bits, else the nearest f64 (`None` if not finite).
pub(crate) fn serde_number(n: &Decimal, text: &str) -> Option<serde_json::Number> {
    if n.is_integer() {
        if let Ok(i) = text.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(u.into());
        }
    }
    serde_json::Number::from_f64(text.parse().unwrap_or(f64::NAN))
}

/// A JSON string literal escaping only `"`, `\` and control characters (§6.3, §6.6).
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Value {
        Value::Number(Decimal::parse(s).unwrap())
    }

    #[test]
    fn canonical_json_sorts_keys_and_normalises_numbers() {
        let m = Map::from_entries(vec![
            ("b".into(), n("1e1")),
            (
                "a".into(),
                Value::Array(vec![
                    n("10.0"),
                    Value::Null,
                    Value::String("x\"\\\u{1}".into()),
                ]),
            ),
            ("é".into(), Value::Bool(true)),
            ("Z".into(), Value::Object(Map::new())),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(m).to_canonical_json(),
            r#"{"Z":{},"a":[10,null,"x\"\\\u0001"],"b":10,"é":true}"#
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = Map::from_entries(vec![("a".into(), Value::Null), ("a".into(), Value::Null)])
            .unwrap_err();
        assert_eq!(e, DuplicateKey("a".into()));
    }
}
