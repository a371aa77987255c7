//! Bytes → [`Value`]: the entry point for all three formats. It checks UTF-8,
//! hands the text to the format's parser (`json.rs`, `yaml.rs`, `toml_doc.rs`,
//! all reporting through [`ParseError`]) and requires an object at the root.
//!
//! Validity (§4): one object at the root, no duplicate key, valid UTF-8, no
//! NaN/Infinity, |number| ≤ f64::MAX, nesting ≤ 128. Pure: no I/O. Must never
//! panic or overflow the stack on hostile input, and an error message never
//! quotes more of the document than one key or number.

use super::Format;
use super::json::parse_json_text;
use super::parse_error::{ParseError, ParseLimits};
use super::value::Value;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::number::Decimal;
    use crate::canon::parse_error::{MAX_DEPTH, Position};
    use crate::canon::value::Map;

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
