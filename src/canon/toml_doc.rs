//! TOML → [`Value`]: datetimes become their RFC 3339 text (§4).
//!
//! Owns the TOML half of the validity rules. The `toml` crate's own parser refuses
//! duplicate keys and redefined tables; this module converts its tree, keeping
//! numbers exact and refusing NaN, infinities, and nesting deeper than 128.
//! Pure: no I/O; must never panic on any input.
//!
//! Numbers are taken from the text as written (the crate's `DeTable` keeps it), not
//! through a binary float: `0.1` is exactly the decimal 0.1, as in JSON and YAML,
//! and `1.00000000000000000001` stays distinct from `1`. Integers must fit in 64
//! bits, as the TOML spec requires.
//!
//! The crate refuses inline arrays and tables nested deeper than about 80 on its
//! own (a recursion guard); such documents are reported as too deep.

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use toml::value::Datetime;

use super::number::Decimal;
use super::parse_error::{MAX_DEPTH, ParseError, Position};
use super::value::{DuplicateKey, Map, Value};
use crate::text::{excerpt, one_line_clipped};

/// Parses a TOML document; its root is always a table.
pub(crate) fn parse_toml(text: &str) -> Result<Value, ParseError> {
    let root = DeTable::parse(text).map_err(|e| toml_error(text, &e))?;
    let span = root.span();
    table(
        text,
        root.get_ref(),
        1,
        Position::at_offset(text, span.start),
    )
}

fn toml_error(text: &str, e: &toml::de::Error) -> ParseError {
    let at = e.span().map(|span| Position::at_offset(text, span.start));
    let message = e.message().replace(['\n', '\r'], " ");
    match (at, message.as_str()) {
        (Some(at), "duplicate key") => {
            let raw = e
                .span()
                .and_then(|span| text.get(span))
                .unwrap_or_default()
                .trim();
            ParseError::DuplicateKey {
                at,
                key: excerpt(unquote(raw)),
            }
        }
        (Some(at), m) if m.contains("recursion") => ParseError::TooDeep { at },
        _ => ParseError::Syntax {
            at,
            format: "TOML",
            message: one_line_clipped(&message),
        },
    }
}

/// A key as written, without the quotes of a simple quoted key.
fn unquote(raw: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = raw.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    raw
}

fn table(text: &str, t: &DeTable<'_>, depth: usize, at: Position) -> Result<Value, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep { at });
    }
    let mut entries = Vec::with_capacity(t.len());
    for (key, value) in t.iter() {
        entries.push((key.get_ref().to_string(), convert(text, value, depth)?));
    }
    Map::from_entries(entries)
        .map(Value::Object)
        .map_err(|DuplicateKey(key)| ParseError::DuplicateKey {
            at,
            key: excerpt(&key),
        })
}

/// Converts a value found inside a container at `depth`.
fn convert(text: &str, v: &Spanned<DeValue<'_>>, depth: usize) -> Result<Value, ParseError> {
    let at = Position::at_offset(text, v.span().start);
    match v.get_ref() {
        DeValue::String(s) => Ok(Value::String(s.to_string())),
        DeValue::Boolean(b) => Ok(Value::Bool(*b)),
        DeValue::Integer(i) => {
            let n = i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| {
                ParseError::IntegerOutOfRange {
                    at,
                    text: excerpt(&i.to_string()),
                }
            })?;
            Ok(Value::Number(Decimal::from_i64(n)))
        }
        DeValue::Float(f) => {
            let raw = f.as_str();
            if raw.contains("nan") || raw.contains("inf") {
                return Err(ParseError::NotFinite { at });
            }
            Decimal::parse(raw)
                .map(Value::Number)
                .map_err(|e| ParseError::from_number(at, raw, e))
        }
        DeValue::Datetime(d) => Ok(Value::String(rfc3339(d, text.get(v.span())))),
        DeValue::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                return Err(ParseError::TooDeep { at });
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                out.push(convert(text, item, depth + 1)?);
            }
            Ok(Value::Array(out))
        }
        DeValue::Table(t) => table(text, t, depth + 1, at),
    }
}

/// The datetime as written, so a bot echoing the committed text does not drift
/// (the crate's own rendering drops trailing fractional zeros: `.000Z` → `.0Z`).
/// Two things are normalised towards RFC 3339: the space TOML allows between
/// date and time becomes `T`, and a time without seconds (TOML 1.1's `07:32`)
/// gets `:00`.
fn rfc3339(d: &Datetime, written: Option<&str>) -> String {
    let Some(written) = written.map(str::trim).filter(|w| w.is_ascii()) else {
        let mut d = *d;
        if let Some(time) = d.time.as_mut() {
            time.second.get_or_insert(0);
        }
        return d.to_string();
    };
    let mut out = written.to_owned();
    // `YYYY-MM-DD` and the separator come before the time when there is a date.
    let time_start = if d.date.is_some() { 11 } else { 0 };
    if d.date.is_some() && d.time.is_some() && out.as_bytes().get(10) == Some(&b' ') {
        out.replace_range(10..11, "T");
    }
    if d.time.is_some_and(|t| t.second.is_none()) && out.len() >= time_start + 5 {
        out.insert_str(time_start + 5, ":00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::Format;
    use crate::canon::parse::parse_document;
    use crate::canon::parse_error::ParseLimits;

    fn toml(s: &str) -> Result<Value, ParseError> {
        parse_document(s.as_bytes(), Format::Toml, &ParseLimits::default())
    }

    fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
        v.as_object()
            .and_then(|m| m.get(key))
            .unwrap_or_else(|| panic!("no key {key} in {v:?}"))
    }

    fn num(s: &str) -> Value {
        Value::Number(Decimal::parse(s).unwrap())
    }

    #[test]
    fn converts_every_toml_type() {
        let v = toml(
            "s = \"x\"\ni = -42\nh = 0xff\no = 0o17\nb = 0b101\nu = 1_000\nf = 0.1\nt = true\n\
             a = [1, \"two\", [3]]\n[table]\nk = \"v\"\n[[list]]\nn = 1\n[[list]]\nn = 2\n",
        )
        .unwrap();
        assert_eq!(get(&v, "s"), &Value::String("x".into()));
        assert_eq!(get(&v, "i"), &num("-42"));
        assert_eq!(get(&v, "h"), &num("255"));
        assert_eq!(get(&v, "o"), &num("15"));
        assert_eq!(get(&v, "b"), &num("5"));
        assert_eq!(get(&v, "u"), &num("1000"));
        assert_eq!(
            get(&v, "f"),
            &Value::Number(Decimal::from_f64(0.1).unwrap())
        );
        assert_eq!(get(&v, "t"), &Value::Bool(true));
        assert_eq!(
            get(&v, "a"),
            &Value::Array(vec![
                num("1"),
                Value::String("two".into()),
                Value::Array(vec![num("3")])
            ])
        );
        assert_eq!(get(get(&v, "table"), "k"), &Value::String("v".into()));
        let Value::Array(list) = get(&v, "list") else {
            panic!("list is not an array")
        };
        assert_eq!(get(&list[1], "n"), &num("2"));
    }

    #[test]
    fn integers_are_exact_and_64_bit() {
        let v = toml("a = 9007199254740993\nb = 9223372036854775807\nc = -9223372036854775808\n")
            .unwrap();
        assert_eq!(get(&v, "a"), &num("9007199254740993"));
        assert_eq!(get(&v, "b"), &num("9223372036854775807"));
        assert_eq!(get(&v, "c"), &num("-9223372036854775808"));
        assert!(matches!(
            toml("a = 9223372036854775808"),
            Err(ParseError::IntegerOutOfRange { .. })
        ));
    }

    #[test]
    fn floats_keep_their_written_value() {
        let v =
            toml("a = 10.0\nb = 1e1\nc = 1.00000000000000000001\nd = -0.0\ne = 1_000.5\n").unwrap();
        assert_eq!(get(&v, "a"), &num("10"));
        assert_eq!(get(&v, "b"), &num("10"));
        assert_eq!(get(&v, "c"), &num("1.00000000000000000001"));
        assert_eq!(get(&v, "d"), &num("0"));
        assert_eq!(get(&v, "e"), &num("1000.5"));
    }

    #[test]
    fn nan_infinity_and_huge_floats_are_refused() {
        for bad in [
            "a = nan", "a = +nan", "a = -nan", "a = inf", "a = +inf", "a = -inf",
        ] {
            assert!(
                matches!(toml(bad), Err(ParseError::NotFinite { .. })),
                "{bad}: {:?}",
                toml(bad)
            );
        }
        assert!(matches!(
            toml("a = 1.0e309"),
            Err(ParseError::NumberOutOfRange { .. })
        ));
    }

    #[test]
    fn datetimes_become_rfc3339_text() {
        let v = toml(
            "odt = 1979-05-27T07:32:00Z\nspace = 1979-05-27 07:32:00.500+01:00\n\
             ldt = 1979-05-27T07:32:00\nld = 1979-05-27\nlt = 07:32:00.999\nshort = 07:32\n",
        )
        .unwrap();
        let text = |k: &str| match get(&v, k) {
            Value::String(s) => s.clone(),
            other => panic!("{k} is {other:?}"),
        };
        assert_eq!(text("odt"), "1979-05-27T07:32:00Z");
        assert_eq!(text("space"), "1979-05-27T07:32:00.500+01:00");
        assert_eq!(text("ldt"), "1979-05-27T07:32:00");
        assert_eq!(text("ld"), "1979-05-27");
        assert_eq!(text("lt"), "07:32:00.999");
        assert_eq!(text("short"), "07:32:00");
    }

    #[test]
    fn datetimes_keep_their_written_fraction_and_offset() {
        let v = toml(
            "a = 2026-01-01T00:00:00.000Z
b = 2026-01-01T00:00:00.500Z # comment
             c = [2026-01-01 00:00:00.120-05:00, 2026-01-01T10:20Z]
d = { e = 1979-05-27t07:32:00z }
",
        )
        .unwrap();
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => panic!("{other:?} is not text"),
        };
        assert_eq!(text(get(&v, "a")), "2026-01-01T00:00:00.000Z");
        assert_eq!(text(get(&v, "b")), "2026-01-01T00:00:00.500Z");
        let Value::Array(c) = get(&v, "c") else {
            panic!("c is not an array")
        };
        assert_eq!(text(&c[0]), "2026-01-01T00:00:00.120-05:00");
        assert_eq!(text(&c[1]), "2026-01-01T10:20:00Z");
        assert_eq!(text(get(get(&v, "d"), "e")), "1979-05-27t07:32:00z");
    }

    #[test]
    fn duplicate_keys_are_refused_naming_the_key() {
        let e = toml("a = 1\nb = 2\n'a' = 3\n").unwrap_err();
        assert_eq!(
            e,
            ParseError::DuplicateKey {
                at: Position { line: 3, column: 1 },
                key: "a".into()
            }
        );
        assert!(matches!(
            toml("[t]\nx = 1\n[t]\ny = 2\n"),
            Err(ParseError::DuplicateKey { .. })
        ));
        assert!(toml("a.b = 1\na.b = 2\n").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let huge = format!("a = {}", "[".repeat(100_000));
        assert!(matches!(toml(&huge), Err(ParseError::TooDeep { .. })));
        // The crate guards headers and inline values separately; together they can
        // pass 128: root + 70 tables + 70 arrays.
        let header = (0..70)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(".");
        let deep = format!("[{header}]\nx = {}1{}\n", "[".repeat(70), "]".repeat(70));
        let e = toml(&deep).unwrap_err();
        assert!(matches!(e, ParseError::TooDeep { .. }), "{e}");
    }

    #[test]
    fn nesting_up_to_128_through_tables_is_allowed() {
        // Root (1) + 60 header tables + 60 inline arrays + the innermost array = 122.
        let header = (0..60)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(".");
        let doc = format!("[{header}]\nx = {}1{}\n", "[".repeat(61), "]".repeat(61));
        assert!(toml(&doc).is_ok(), "{:?}", toml(&doc));
    }

    #[test]
    fn syntax_errors_are_one_line_with_a_position() {
        let e = toml("a = 1\nb = 'unterminated\n").unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Syntax {
                    at: Some(Position { line: 2, .. }),
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.starts_with("line 2, column"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
