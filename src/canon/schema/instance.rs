//! Our [`Value`] as a `jsonschema` instance representation, so validation reads
//! the document in place instead of converting it to `serde_json` first (which
//! cost as much as the validation itself). Pure: no I/O.
//!
//! Must answer exactly as [`Value::to_serde_json`]'s result would: numbers are
//! reported through the very `serde_json::Number` that conversion makes, objects
//! iterate in key-byte order (as `serde_json`'s `BTreeMap` does), and everything
//! cold (error values, `const`/`enum`/`uniqueItems`) goes through the conversion.

use std::borrow::Cow;
use std::cell::RefCell;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};

use crate::canon::number::Decimal;
use crate::canon::value::{Map, Value};

/// The representation marker `jsonschema` is generic over.
pub(crate) struct Doc;

impl Json for Doc {
    type Node<'a> = &'a Value;
    type PreparedKey = String;
    type StringBuffer = NameBuffer;

    // A lookup is a binary search comparing keys, like `serde_json`'s `BTreeMap`.
    const KEYS_PER_LOOKUP: usize = 2;
    // A parsed document is a tree: no node is its own descendant.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut NameBuffer,
        string: &str,
        f: impl FnOnce(&Value) -> T,
    ) -> T {
        match &mut buffer.0 {
            Value::String(s) => {
                s.clear();
                s.push_str(string);
            }
            other => *other = Value::String(string.to_owned()),
        }
        f(&buffer.0)
    }
}

/// Where `propertyNames` puts each name it validates, reused across names.
pub(crate) struct NameBuffer(Value);

impl Default for NameBuffer {
    fn default() -> Self {
        NameBuffer(Value::String(String::new()))
    }
}

/// The number `to_serde_json` makes of `n`; `None` where it makes `null`.
fn number_of(n: &Decimal) -> Option<serde_json::Number> {
    thread_local! {
        // Numbers are read on every type check: keep their text off the allocator.
        static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
    }
    TEXT.with_borrow_mut(|text| {
        text.clear();
        n.write_canonical(text);
        crate::canon::value::serde_number(n, text)
    })
}

impl<'a> Node<'a, Doc> for &'a Value {
    type Object = &'a Map;
    type Array = &'a [Value];
    type Number = serde_json::Number;

    fn as_object(&self) -> Option<&'a Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&'a [Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            Value::String(s) => Some(Cow::Borrowed(s)),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<serde_json::Number> {
        match self {
            Value::Number(n) => number_of(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Number(n) => number_of(n).is_none(),
            _ => false,
        }
    }

    fn json_type(&self) -> JsonType {
        match self {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(n) if number_of(n).is_none() => JsonType::Null,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, serde_json::Value> {
        Cow::Owned(self.to_serde_json())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref::<Value>(self) as usize))
    }
}

impl<'a> Object<'a, Doc> for &'a Map {
    type Node = &'a Value;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        Map::len(self)
    }

    fn get(&self, key: &String) -> Option<&'a Value> {
        Map::get(self, key)
    }

    fn members(&self) -> Members<'a> {
        Members(self.entries().iter())
    }
}

/// An object's members in key-byte order.
pub(crate) struct Members<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_str(), v))
    }
}

impl<'a> Array<'a, Doc> for &'a [Value] {
    type Node = &'a Value;
    type ElementsIter = std::slice::Iter<'a, Value>;

    fn len(&self) -> usize {
        <[Value]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Value> {
        (*self).iter()
    }
}

#[cfg(test)]
mod tests {
    use crate::canon::parse::parse_json_value;
    use crate::canon::schema::Schema;

    fn j(text: &str) -> crate::canon::Value {
        parse_json_value(text.as_bytes()).expect("test JSON parses")
    }

    /// Reading our tree in place must judge every document exactly as the
    /// validator judges its `serde_json` conversion: same verdict, same errors.
    #[test]
    fn validating_in_place_agrees_with_validating_the_serde_json_conversion() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"{"type": "object", "required": ["a"], "additionalProperties": false,
                    "properties": {"a": {"type": "integer", "minimum": 2, "multipleOf": 2},
                                   "b": {"type": "number", "exclusiveMaximum": 1.5},
                                   "c": {"const": {"x": [1, 2.0]}}, "d": {"enum": [1, "one", null]},
                                   "e": {"uniqueItems": true}, "f": {"type": "string", "minLength": 2, "maxLength": 3},
                                   "g": {"propertyNames": {"pattern": "^[a-z]+$"}, "patternProperties": {"^n": {"type": "null"}}},
                                   "h": {"type": ["array", "boolean"], "items": {"type": "integer"}, "minItems": 1}}}"#,
                &[
                    r#"{"a": 4}"#,
                    r#"{"a": 4.0, "b": 1.4999, "c": {"x": [1.0, 2]}, "d": null, "e": [1, 1.0], "f": "éé"}"#,
                    r#"{"a": 3, "b": 1.5, "c": {"x": [1]}, "d": 2, "e": [[1], [1.0]], "f": "ééééé", "z": 1}"#,
                    r#"{"a": 18446744073709551616, "b": -1e-400, "g": {"nx": 1, "A": null}, "h": [1, 2.5, "x"]}"#,
                    r#"{"a": -9223372036854775809, "h": true, "g": {"no": null}}"#,
                    r#"{"a": 1e30, "h": [], "b": 123456789012345678901234567890.5}"#,
                    r#"{"b": "x"}"#,
                ],
            ),
            (
                r#"{"$schema": "http://json-schema.org/draft-04/schema#",
                    "properties": {"i": {"type": "integer"}, "m": {"maximum": 3, "exclusiveMaximum": true}}}"#,
                &[
                    r#"{"i": 1.0, "m": 3}"#,
                    r#"{"i": 1, "m": 2.9}"#,
                    r#"{"i": 1e2}"#,
                ],
            ),
        ];
        for (schema_text, docs) in cases {
            let schema_doc = j(schema_text);
            let ours = Schema::compile(&schema_doc).expect("compiles");
            let reference = jsonschema::options()
                .offline()
                .build(&schema_doc.to_serde_json())
                .expect("compiles");
            for doc in *docs {
                let d = j(doc);
                let json = d.to_serde_json();
                let expected: Vec<(String, String)> = reference
                    .iter_errors(&json)
                    .map(|e| (e.instance_path().to_string(), e.to_string()))
                    .collect();
                let got: Vec<(String, String)> = ours
                    .validator
                    .iter_errors(&d)
                    .map(|e| (e.instance_path().to_string(), e.to_string()))
                    .collect();
                assert_eq!(got, expected, "{doc}");
                assert_eq!(
                    ours.validator.is_valid(&d),
                    reference.is_valid(&json),
                    "{doc}"
                );
            }
        }
    }
}
