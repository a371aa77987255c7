//! The pure core's second half: compare two canonical trees leaf by leaf, each
//! leaf keyed by its path (§6.3–6.5), walking both together so that only drifts
//! ever get a path of their own. No I/O, no clock.
//!
//! The drift list is exactly the leaf paths whose values differ — present on one
//! side only, of another type, or of another value (numbers beyond the tolerance,
//! in exact decimal arithmetic) — in path order. Secret values never reach a
//! `FieldDrift`: only their token does.

mod walk;

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use crate::canon::canonical::Canonical;
use crate::canon::flatten;
use crate::canon::number::Decimal;
use crate::canon::path::Path;
use crate::canon::tree::Shape;
use crate::report::{DriftKind, SchemaError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// Two numbers differ only when |running − committed| is greater than this.
    pub tolerance: Decimal,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            tolerance: Decimal::ZERO,
        }
    }
}

/// One drifted leaf. Values are canonical JSON text; a secret's value is the JSON
/// string of its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDrift {
    pub path: Path,
    pub kind: DriftKind,
    pub running: Option<String>,
    pub committed: Option<String>,
    /// running − committed, when both are numbers and neither is secret.
    pub delta: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffOutcome {
    /// In path order (§6.5).
    pub drifts: Vec<FieldDrift>,
    /// Distinct leaf paths removed as ignored, over both sides.
    pub ignored: u64,
    /// The running side's, then the committed side's.
    pub schema_errors: Vec<SchemaError>,
}

/// Compares two canonicalised sides: both trees walked together, keyed arrays
/// matched by key only where both sides can be (else by position, §6.2).
pub fn diff(running: &Canonical, committed: &Canonical, opts: &DiffOptions) -> DiffOutcome {
    let mut drifts = Vec::new();
    walk::diff_trees(&running.tree, &committed.tree, &opts.tolerance, &mut drifts);
    if !running.vacated.is_empty() || !committed.vacated.is_empty() {
        drifts.retain(|d| !emptied_on_the_other_side(d, running, committed));
    }
    let mut schema_errors = running.schema_errors().to_vec();
    schema_errors.extend_from_slice(committed.schema_errors());
    DiffOutcome {
        drifts,
        ignored: union_count(&running.ignored, &committed.ignored),
        schema_errors,
    }
}

/// Current values of named leaves on both sides, as a drift would show them:
/// `(running, committed)`, `None` where a side lacks the leaf. Fields ignored now
/// on either side are left out: they could not be observed. The latch uses this
/// at the end of a field's drift to tell which side moved (§9 `resolved_by`).
///
/// Flattens both whole trees, so callers ask only for bots with fields going back
/// in sync, which is rare.
pub fn observe(
    running: &Canonical,
    committed: &Canonical,
    fields: &[&str],
) -> HashMap<String, (Option<String>, Option<String>)> {
    if fields.is_empty() {
        return HashMap::new();
    }
    let wanted: HashSet<&str> = fields.iter().copied().collect();
    let values = |side: &Canonical| -> HashMap<String, String> {
        let mut leaves = Vec::new();
        flatten::flatten_children(&side.tree, &mut Vec::new(), &mut leaves);
        leaves
            .iter()
            .map(|leaf| (leaf.path.to_string(), leaf))
            .filter(|(path, _)| wanted.contains(path.as_str()))
            .map(|(path, leaf)| (path, walk::shown(leaf)))
            .collect()
    };
    let ignored = |field: &str| {
        running.ignored.iter().chain(&committed.ignored).any(|p| {
            let p = p.to_string();
            field == p
                || field
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    };
    let mut r = values(running);
    let mut c = values(committed);
    fields
        .iter()
        .filter(|f| !ignored(f))
        .map(|f| (f.to_string(), (r.remove(*f), c.remove(*f))))
        .collect()
}

/// An empty container on one side against a container that ignore rules emptied
/// on the other: nothing that is compared differs, so it is no drift.
fn emptied_on_the_other_side(d: &FieldDrift, running: &Canonical, committed: &Canonical) -> bool {
    let (shown, other) = match d.kind {
        DriftKind::MissingInRunning => (&d.committed, running),
        DriftKind::MissingInCommitted => (&d.running, committed),
        DriftKind::Changed => return false,
    };
    let shape = match shown.as_deref() {
        Some("{}") => Shape::Object,
        Some("[]") => Shape::Array,
        _ => return false,
    };
    other
        .vacated
        .binary_search_by(|(path, s)| (path, *s).cmp(&(&d.path, shape)))
        .is_ok()
}

/// Size of the union of two sorted lists without repeats.
fn union_count(a: &[Path], b: &[Path]) -> u64 {
    let (mut i, mut j, mut n) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
        n += 1;
    }
    n + (a.len() - i) as u64 + (b.len() - j) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::canonical::{CanonOptions, canonicalise};
    use crate::canon::parse::parse_json_value;
    use crate::canon::path;
    use crate::canon::schema::Schema;
    use crate::canon::secret::SecretKey;
    use crate::report::Side;

    fn j(text: &str) -> crate::canon::Value {
        parse_json_value(text.as_bytes()).expect("test JSON parses")
    }

    /// The tree walk must report exactly what merge-joining the jointly flattened
    /// leaf lists reports: keyable or not, same schema or not, any shapes.
    #[test]
    fn tree_walk_equals_the_merge_join_of_jointly_flattened_leaves() {
        let keyed = Schema::compile(&j(r#"{"properties": {
            "m": {"x-drift-key": "id", "items": {"properties": {"s": {"uniqueItems": true}}}},
            "t": {"uniqueItems": true}, "k": {"x-drift-secret": true}}}"#))
        .expect("compiles");
        let plain = Schema::compile(&j(r#"{"properties": {"t": {"uniqueItems": true}}}"#))
            .expect("compiles");
        let key = SecretKey::from_bytes([3; 32]);
        let opts = CanonOptions {
            ignore_fields: &[],
            secret_key: &key,
        };
        let docs = [
            r#"{"m": [{"id": 2, "s": [3, 1]}, {"id": 1, "x": {}}], "t": ["b", "a"], "k": {"p": 1}, "z": [[], {}]}"#,
            r#"{"m": [{"id": 1, "x": {"y": null}}], "t": [], "k": "v", "z": [[1]]}"#,
            r#"{"m": [{"id": 1}, {"id": 1, "q": 2}], "t": ["a", "c"], "k": 2.50, "z": {"a": 1}}"#,
            r#"{"m": [{"x": 1}, {"id": 3}], "t": {"a": []}, "k": null, "z": [{}, []]}"#,
            r#"{"m": {}, "t": "x", "k": {}, "z": 1e3, "a": {"b": [1, {"c": 2}]}}"#,
            r#"{"m": [], "a": {"b": [1, {"c": 3}, 4]}, "z": 1000}"#,
            r#"[1, {"a": 2}]"#,
            r#"7"#,
            r#"{}"#,
        ];
        let schemas = [None, Some(&keyed), Some(&plain)];
        for tolerance in [Decimal::ZERO, Decimal::parse("0.5").expect("number")] {
            for r in docs {
                for c in docs {
                    for rs in schemas {
                        for cs in schemas {
                            let rc = canonicalise(j(r), rs, Side::Running, &opts);
                            let cc = canonicalise(j(c), cs, Side::Committed, &opts);
                            let (jr, jc) = flatten::flatten_pair(&rc.tree, &cc.tree);
                            let mut expected = Vec::new();
                            walk::merge_leaves(&jr, &jc, &tolerance, &mut expected);
                            let got = diff(
                                &rc,
                                &cc,
                                &DiffOptions {
                                    tolerance: tolerance.clone(),
                                },
                            );
                            assert_eq!(got.drifts, expected, "{r} vs {c}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn observe_shows_current_values_of_named_leaves_and_skips_ignored_ones() {
        let key = SecretKey::from_bytes([5; 32]);
        let ignore = [path::FieldPattern::parse("gone").expect("pattern")];
        let opts = CanonOptions {
            ignore_fields: &ignore,
            secret_key: &key,
        };
        let schema = Schema::compile(&j(r#"{"properties": {"m": {"x-drift-key": "id"}}}"#))
            .expect("compiles");
        let r = canonicalise(
            j(r#"{"a": 1.50, "m": [{"id": "x", "v": true}], "only_r": "s", "gone": 1}"#),
            Some(&schema),
            Side::Running,
            &opts,
        );
        let c = canonicalise(
            j(r#"{"a": 2, "m": [{"id": "x", "v": false}], "gone": 2}"#),
            Some(&schema),
            Side::Committed,
            &opts,
        );
        let seen = observe(&r, &c, &["a", "m[id=\"x\"].v", "only_r", "nowhere", "gone"]);
        assert_eq!(seen["a"], (Some("1.5".into()), Some("2".into())));
        assert_eq!(
            seen["m[id=\"x\"].v"],
            (Some("true".into()), Some("false".into()))
        );
        assert_eq!(seen["only_r"], (Some("\"s\"".into()), None));
        assert_eq!(seen["nowhere"], (None, None));
        assert!(
            !seen.contains_key("gone"),
            "an ignored field is not observed"
        );
        assert!(observe(&r, &c, &[]).is_empty());
    }

    #[test]
    fn ignored_paths_are_counted_once_across_sides() {
        let p = |s: &str| Path(vec![path::Segment::Key(s.into())]);
        assert_eq!(union_count(&[p("a"), p("b")], &[p("b"), p("c")]), 3);
        assert_eq!(union_count(&[], &[p("b")]), 1);
        assert_eq!(union_count(&[p("a")], &[]), 1);
    }

    /// A set member's shown form reuses its real JSON only when nothing inside it
    /// is secret; a secret nested in a member must still be redacted.
    #[test]
    fn set_members_holding_a_nested_secret_show_only_its_token() {
        let schema = Schema::compile(&j(r#"{"properties": {"s": {"uniqueItems": true,
            "items": {"properties": {"k": {"x-drift-secret": true}}}}}}"#))
        .expect("compiles");
        let key = SecretKey::from_bytes([5; 32]);
        let opts = CanonOptions {
            ignore_fields: &[],
            secret_key: &key,
        };
        let doc = r#"{"s": [{"k": "hunter2", "a": 1}, "plain"]}"#;
        let running = canonicalise(j(doc), Some(&schema), Side::Running, &opts);
        let committed = canonicalise(j("{}"), Some(&schema), Side::Committed, &opts);
        let json = running.redacted_canonical_json();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains(r#""plain""#), "{json}");
        let outcome = diff(&running, &committed, &DiffOptions::default());
        let shown = format!("{:?}", outcome.drifts);
        assert_eq!(outcome.drifts.len(), 2, "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted:hmac-sha256:"), "{shown}");
    }
}
