//! The configuration file as serde reads it (§3), and the structural pass that
//! turns serde's first failure into every structural problem of the file.
//!
//! Owns: TOML syntax errors (with line and column), unknown keys, wrong types.
//! Every table is `deny_unknown_fields` so a typo never silently changes
//! behaviour; every key is optional so that `build` names a missing one itself.
//! Must not judge values (ranges, paths, URLs, slugs are `build`'s) and must never
//! put a header value into a message or `Debug` output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

pub use super::error::SyntaxError;
use super::error::{ConfigErrorKind, Place};
use crate::text::one_line_joined;

/// The top level of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub mode: Option<String>,
    pub check_interval_minutes: Option<i64>,
    pub tolerance_for_numeric_drift: Option<RawNumber>,
    pub ignore_fields: Option<Vec<String>>,
    pub registry_file: Option<String>,
    pub repo: Option<RawRepo>,
    pub runtime: Option<RawRuntime>,
    pub bots: Option<Vec<RawBot>>,
    pub state: Option<RawState>,
    pub server: Option<RawServer>,
    pub auth: Option<RawAuth>,
}

/// A `registry_file`: nothing but `[[bots]]` entries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub bots: Option<Vec<RawBot>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepo {
    pub url: Option<String>,
    pub branch: Option<String>,
    pub config_path: Option<String>,
    pub schema_path: Option<String>,
    pub checkout_dir: Option<String>,
    pub history_depth: Option<i64>,
    pub max_staleness_s: Option<i64>,
    pub require_signed_commits: Option<bool>,
    pub allowed_signers: Option<String>,
    pub gpg_keyring: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    pub timeout_ms: Option<i64>,
    pub max_in_flight: Option<i64>,
    pub max_body_bytes: Option<i64>,
    pub latency_budget_ms: Option<i64>,
    pub headers: Option<RawHeaders>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBot {
    pub slug: Option<String>,
    pub runtime: Option<String>,
    pub config_path: Option<String>,
    pub schema_path: Option<String>,
    pub headers: Option<RawHeaders>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub path: Option<String>,
    pub retention_days: Option<i64>,
    pub audit_retention_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub rate_limit_per_s: Option<i64>,
    pub rate_limit_burst: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub tokens: Option<Vec<RawToken>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub name: Option<String>,
    pub role: Option<String>,
    pub sha256: Option<String>,
}

/// Header name → value as written (before `${ENV}` expansion).
pub type RawHeaders = BTreeMap<String, RawHeaderValue>;

/// A header value as written. Its `Debug` never shows it: even before expansion
/// it may be a literal bearer token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RawHeaderValue(pub String);

impl fmt::Debug for RawHeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A TOML integer or float, kept apart so an integer never goes through `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawNumber {
    Integer(i64),
    Float(f64),
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = RawNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNumber, E> {
                Ok(RawNumber::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNumber, E> {
                i64::try_from(v)
                    .map(RawNumber::Integer)
                    .map_err(|_| E::custom("the number is too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNumber, E> {
                Ok(RawNumber::Float(v))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// What the structural pass found. Offending keys are removed before the final
/// deserialisation, so the rest of the file can still be checked.
#[derive(Debug, Default)]
pub struct Structure {
    /// Every problem found, without the file name.
    pub problems: Vec<ConfigErrorKind>,
    /// Keys removed because their value had the wrong type, as `repo.url`,
    /// `bots[2].slug` or `bots[2]` (0-based), so `build` does not also call them
    /// missing.
    pub dropped: BTreeSet<String>,
}

/// Reads the main configuration file.
pub fn parse_config(text: &str) -> Result<(RawConfig, Structure), SyntaxError> {
    parse_with(text, |table, s| {
        check_keys::<RawConfig>(
            table,
            &Place::Top,
            &["repo", "runtime", "bots", "state", "server", "auth"],
            s,
        );
        if let Some(t) = sub_table(table, "repo", s) {
            check_keys::<RawRepo>(t, &Place::Table("repo"), &[], s);
        }
        if let Some(t) = sub_table(table, "runtime", s) {
            check_keys::<RawRuntime>(t, &Place::Table("runtime"), &[], s);
        }
        if let Some(t) = sub_table(table, "state", s) {
            check_keys::<RawState>(t, &Place::Table("state"), &[], s);
        }
        if let Some(t) = sub_table(table, "server", s) {
            check_keys::<RawServer>(t, &Place::Table("server"), &[], s);
        }
        if let Some(t) = sub_table(table, "auth", s) {
            check_keys::<RawAuth>(t, &Place::Table("auth"), &["tokens"], s);
            entries::<RawToken>(t, "tokens", "auth.tokens", "name", s);
        }
        entries::<RawBot>(table, "bots", "bots", "slug", s);
    })
}

/// Reads a `registry_file`.
pub fn parse_registry(text: &str) -> Result<(RawRegistry, Structure), SyntaxError> {
    parse_with(text, |table, s| {
        check_keys::<RawRegistry>(table, &Place::Top, &["bots"], s);
        entries::<RawBot>(table, "bots", "bots", "slug", s);
    })
}

fn parse_with<T: DeserializeOwned + Default>(
    text: &str,
    walk: impl FnOnce(&mut toml::Table, &mut Structure),
) -> Result<(T, Structure), SyntaxError> {
    let mut table: toml::Table = text.parse().map_err(|e| syntax_error(text, &e))?;
    let mut structure = Structure::default();
    walk(&mut table, &mut structure);
    match toml::Value::Table(table).try_into::<T>() {
        Ok(raw) => Ok((raw, structure)),
        Err(e) => {
            // The walk removed everything serde could refuse; reaching this means a
            // shape the walk does not know, so say what serde said, once.
            structure.problems.push(ConfigErrorKind::Unrecognised {
                detail: one_line_joined(e.message()),
            });
            Ok((T::default(), structure))
        }
    }
}

fn syntax_error(text: &str, e: &toml::de::Error) -> SyntaxError {
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    SyntaxError {
        line,
        column,
        message: one_line_joined(e.message()),
    }
}

/// The table under `key`, if there is one; a non-table there is reported and removed.
fn sub_table<'t>(
    table: &'t mut toml::Table,
    key: &'static str,
    s: &mut Structure,
) -> Option<&'t mut toml::Table> {
    let is_table = table.get(key)?.is_table();
    if !is_table {
        let got = table.get(key).map_or("nothing", toml::Value::type_str);
        s.problems.push(ConfigErrorKind::NotATable { key, got });
        table.remove(key);
        s.dropped.insert(key.to_owned());
        return None;
    }
    table.get_mut(key).and_then(toml::Value::as_table_mut)
}

/// Checks every entry of the array of tables under `key`. An entry that is not a
/// table is reported and replaced by an empty one (so entry numbers stay those of
/// the file) and marked dropped as a whole.
fn entries<T: DeserializeOwned>(
    table: &mut toml::Table,
    key: &'static str,
    array: &'static str,
    name_key: &str,
    s: &mut Structure,
) {
    let Some(value) = table.get_mut(key) else {
        return;
    };
    let Some(items) = value.as_array_mut() else {
        s.problems.push(ConfigErrorKind::NotAnArrayOfTables {
            array,
            got: value.type_str(),
        });
        table.remove(key);
        s.dropped.insert(array.to_owned());
        return;
    };
    for (index, item) in items.iter_mut().enumerate() {
        if !item.is_table() {
            s.problems.push(ConfigErrorKind::EntryNotATable {
                array,
                number: index + 1,
                got: item.type_str(),
            });
            *item = toml::Value::Table(toml::Table::new());
            s.dropped.insert(format!("{array}[{index}]"));
            continue;
        }
        if let Some(t) = item.as_table_mut() {
            let name = t
                .get(name_key)
                .and_then(toml::Value::as_str)
                .map(str::to_owned);
            let place = Place::Entry { array, index, name };
            check_keys::<T>(t, &place, &[], s);
        }
    }
}

/// Reports (and removes) every key of `table` that `T` does not know or whose value
/// `T` refuses; `nested` keys are tables the caller checks itself.
fn check_keys<T: DeserializeOwned>(
    table: &mut toml::Table,
    place: &Place,
    nested: &[&str],
    s: &mut Structure,
) {
    let fields = field_names::<T>();
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        if !fields.contains(&key.as_str()) {
            table.remove(&key);
            s.problems.push(ConfigErrorKind::UnknownKey {
                suggestion: closest(&key, fields),
                key,
                place: place.clone(),
            });
            continue;
        }
        if nested.contains(&key.as_str()) {
            continue;
        }
        let Some(value) = table.get(&key).cloned() else {
            continue;
        };
        // One key at a time, so a wrong type names its key and hides nothing else.
        let mut alone = toml::Table::new();
        alone.insert(key.clone(), value.clone());
        if let Err(e) = toml::Value::Table(alone).try_into::<T>() {
            s.problems
                .push(wrong_type(&key, &value, place, e.message()));
            table.remove(&key);
            s.dropped.insert(place.path(&key));
        }
    }
}

/// The known key an unknown one is most likely a typo of, if any is close.
fn closest(key: &str, fields: &[&'static str]) -> Option<&'static str> {
    fields
        .iter()
        .map(|f| (edit_distance(key, f), *f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 4))
        .min()
        .map(|(_, f)| f)
}

fn wrong_type(key: &str, value: &toml::Value, place: &Place, serde: &str) -> ConfigErrorKind {
    let place = place.clone();
    // A header table's serde message could quote a value; header values never
    // appear in messages.
    if key == "headers" {
        return ConfigErrorKind::HeadersNotATable { place };
    }
    let scalar = !matches!(value, toml::Value::Array(_) | toml::Value::Table(_));
    let expected = serde
        .rsplit_once(", expected ")
        .map(|(_, e)| describe_expected(e.trim()));
    match expected {
        Some(expected) if scalar => ConfigErrorKind::WrongType {
            key: key.to_owned(),
            place,
            expected,
            got: value.type_str(),
        },
        _ => ConfigErrorKind::WrongTypeIn {
            key: key.to_owned(),
            place,
            detail: one_line_joined(serde),
        },
    }
}

/// serde's expectation in an operator's words.
fn describe_expected(e: &str) -> String {
    match e {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "an integer".to_owned()
        }
        "a sequence" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        _ if e.starts_with("struct ") => "a table".to_owned(),
        _ => e.to_owned(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The field names serde's derive gives `T`, read by asking `T` to deserialize
/// from a deserializer that only records what `deserialize_struct` is told. This
/// keeps the struct the one place a key is declared.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_struct() {
        assert_eq!(field_names::<RawToken>(), &["name", "role", "sha256"]);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_config("mode = \"shadow\"\ncheck_interval_minutes = = 3\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.column > 1, "{err}");
        assert!(
            err.to_string()
                .starts_with("TOML syntax error at line 2, column")
        );
    }

    #[test]
    fn every_structural_problem_is_reported_at_once() {
        let text = r#"
chek_interval_minutes = 3
mode = 7
[runtime]
timout_ms = 10
max_in_flight = "many"
headers = { Authorization = 5 }
[[bots]]
slug = "a"
runtim = "http://x"
"#;
        let (raw, s) = parse_config(text).unwrap();
        let all = s
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            all.contains(
                "unknown key `chek_interval_minutes` (did you mean `check_interval_minutes`?)"
            ),
            "{all}"
        );
        assert!(
            all.contains("`mode` must be a string, not an integer"),
            "{all}"
        );
        assert!(
            all.contains("unknown key `timout_ms` in [runtime]"),
            "{all}"
        );
        assert!(
            all.contains("`max_in_flight` in [runtime] must be an integer, not a string"),
            "{all}"
        );
        assert!(
            all.contains("`headers` in [runtime] must be a table"),
            "{all}"
        );
        assert!(
            all.contains("unknown key `runtim` in [[bots]] entry `a`"),
            "{all}"
        );
        assert_eq!(s.problems.len(), 6, "{all}");
        assert!(s.dropped.contains("mode"));
        assert!(s.dropped.contains("runtime.max_in_flight"));
        // What was sound is still read.
        assert_eq!(raw.bots.unwrap()[0].slug.as_deref(), Some("a"));
    }

    #[test]
    fn header_values_never_reach_debug() {
        let (raw, _) =
            parse_config("[runtime]\nheaders = { Authorization = \"Bearer s3cret\" }\n").unwrap();
        assert!(!format!("{raw:?}").contains("s3cret"));
    }
}
