//! The pure core's second half: flatten both canonical trees to leaves keyed by
//! path and compare them (§6.3–6.5). No I/O, no clock.
//!
//! The drift list is exactly the leaf paths whose values differ — present on one
//! side only, of another type, or of another value (numbers beyond the tolerance,
//! in exact decimal arithmetic) — in path order. Secret values never reach a
//! `FieldDrift`: only their token does.

pub mod flatten;
pub mod path;

use std::cmp::Ordering;

use crate::canon::canonical::Canonical;
use crate::canon::number::Decimal;
use crate::canon::value::write_json_string;
use crate::report::{DriftKind, SchemaError};

use flatten::{Leaf, LeafValue, flatten_pair};
use path::{Path, redaction_token};

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

/// Compares two canonicalised sides. A merge-join over the two sorted leaf
/// lists; only when an `x-drift-key` array could not be keyed on some side (or
/// the sides were shaped by different schemas) are both re-flattened together.
pub fn diff(running: &Canonical, committed: &Canonical, opts: &DiffOptions) -> DiffOutcome {
    let joint;
    let (r, c): (&[Leaf], &[Leaf]) = if running.schema_id == committed.schema_id
        && !running.has_unkeyable
        && !committed.has_unkeyable
    {
        (&running.leaves, &committed.leaves)
    } else {
        joint = flatten_pair(&running.tree, &committed.tree);
        (&joint.0, &joint.1)
    };
    let mut drifts = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (r.get(i), c.get(j)) {
            (Some(a), Some(b)) => a.path.cmp(&b.path),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match order {
            Ordering::Less => {
                let a = &r[i];
                drifts.push(FieldDrift {
                    path: a.path.clone(),
                    kind: DriftKind::MissingInCommitted,
                    running: Some(shown(a)),
                    committed: None,
                    delta: None,
                });
                i += 1;
            }
            Ordering::Greater => {
                let b = &c[j];
                drifts.push(FieldDrift {
                    path: b.path.clone(),
                    kind: DriftKind::MissingInRunning,
                    running: None,
                    committed: Some(shown(b)),
                    delta: None,
                });
                j += 1;
            }
            Ordering::Equal => {
                let (a, b) = (&r[i], &c[j]);
                if differ(a, b, &opts.tolerance) {
                    drifts.push(FieldDrift {
                        path: a.path.clone(),
                        kind: DriftKind::Changed,
                        running: Some(shown(a)),
                        committed: Some(shown(b)),
                        delta: delta(a, b),
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    let mut schema_errors = running.schema_errors().to_vec();
    schema_errors.extend_from_slice(committed.schema_errors());
    DiffOutcome {
        drifts,
        ignored: union_count(&running.ignored, &committed.ignored),
        schema_errors,
    }
}

fn differ(a: &Leaf, b: &Leaf, tolerance: &Decimal) -> bool {
    match (&a.value, &b.value) {
        (LeafValue::Number(x), LeafValue::Number(y)) => x.sub(y).abs() > *tolerance,
        // A member's value is its path: same path, same member.
        (LeafValue::Member(_), LeafValue::Member(_)) => false,
        (LeafValue::Json(x), LeafValue::Json(y)) => x != y,
        _ => true,
    }
}

fn delta(a: &Leaf, b: &Leaf) -> Option<String> {
    match (&a.value, &b.value, &a.secret, &b.secret) {
        (LeafValue::Number(x), LeafValue::Number(y), None, None) => Some(x.sub(y).to_canonical()),
        _ => None,
    }
}

/// What a report may show of a leaf: its canonical JSON, or its token.
fn shown(leaf: &Leaf) -> String {
    if let Some(hmac) = &leaf.secret {
        let mut s = String::new();
        write_json_string(&redaction_token(hmac), &mut s);
        return s;
    }
    match &leaf.value {
        LeafValue::Number(n) => n.to_canonical(),
        LeafValue::Json(s) | LeafValue::Member(s) => s.clone(),
    }
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
    use crate::canon::schema::Schema;
    use crate::canon::secret::SecretKey;
    use crate::report::Side;

    fn j(text: &str) -> crate::canon::Value {
        parse_json_value(text.as_bytes()).expect("test JSON parses")
    }

    /// The merge-join's fast path (each side flattened alone, once) must agree
    /// with flattening both together whenever every keyed array is keyable.
    #[test]
    fn cached_leaves_equal_joint_flattening_when_every_key_is_usable() {
        let schema = Schema::compile(&j(r#"{"properties": {
            "m": {"x-drift-key": "id", "items": {"properties": {"s": {"uniqueItems": true}}}},
            "t": {"uniqueItems": true}, "k": {"x-drift-secret": true}}}"#))
        .expect("compiles");
        let key = SecretKey::from_bytes([3; 32]);
        let opts = CanonOptions {
            ignore_fields: &[],
            secret_key: &key,
        };
        let docs = [
            r#"{"m": [{"id": 2, "s": [3, 1]}, {"id": 1, "x": {}}], "t": ["b", "a"], "k": {"p": 1}, "z": [[], {}]}"#,
            r#"{"m": [{"id": 1, "x": {"y": null}}], "t": [], "k": "v", "z": [[1]]}"#,
            r#"{"m": [], "a": {"b": [1, {"c": 2}]}}"#,
            r#"{}"#,
        ];
        for r in docs {
            for c in docs {
                let rc = canonicalise(j(r), Some(&schema), Side::Running, &opts);
                let cc = canonicalise(j(c), Some(&schema), Side::Committed, &opts);
                assert!(!rc.has_unkeyable && !cc.has_unkeyable);
                let (jr, jc) = flatten_pair(&rc.tree, &cc.tree);
                assert_eq!(jr, rc.leaves, "{r} vs {c}");
                assert_eq!(jc, cc.leaves, "{r} vs {c}");
            }
        }
    }

    #[test]
    fn ignored_paths_are_counted_once_across_sides() {
        let p = |s: &str| Path(vec![path::Segment::Key(s.into())]);
        assert_eq!(union_count(&[p("a"), p("b")], &[p("b"), p("c")]), 3);
        assert_eq!(union_count(&[], &[p("b")]), 1);
        assert_eq!(union_count(&[p("a")], &[]), 1);
    }
}
