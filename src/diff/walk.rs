//! The diff itself: both canonical trees walked together, emitting a drift per
//! leaf path whose values differ, in path order (§6.3–6.5). Pure: no I/O.
//!
//! Equivalent by construction to flattening both trees jointly (see
//! `canon::flatten::flatten_pair`) and merge-joining the two sorted leaf lists, but a
//! path is only materialised for a drift: equal leaves cost no allocation, and a
//! cached `Canonical` need not keep a flattened copy of itself. Keyed arrays are
//! matched by key only when both sides could be keyed, else by position.

use std::cmp::Ordering;

use crate::canon::flatten::{Leaf, LeafValue, flatten_children, flatten_node, member_leaf};
use crate::canon::number::Decimal;
use crate::canon::path::{Member, Segment, redaction_token};
use crate::canon::tree::{CKind, CNode};
use crate::canon::value::{Value, write_json_string};
use crate::diff::FieldDrift;
use crate::report::DriftKind;

/// A path segment borrowed from the trees being walked.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(u64),
    Keyed(&'a str, &'a Member),
    Member(&'a Member),
}

impl Step<'_> {
    fn to_segment(self) -> Segment {
        match self {
            Step::Key(k) => Segment::Key(k.to_owned()),
            Step::Index(i) => Segment::Index(i),
            Step::Keyed(field, value) => Segment::Keyed {
                field: field.to_owned(),
                value: value.clone(),
            },
            Step::Member(m) => Segment::Member(m.clone()),
        }
    }
}

/// Appends the drifts between two canonical roots to `drifts`, in path order.
pub(crate) fn diff_trees(
    running: &CNode,
    committed: &CNode,
    tolerance: &Decimal,
    drifts: &mut Vec<FieldDrift>,
) {
    let mut walk = Walk {
        tolerance,
        path: Vec::new(),
        drifts,
    };
    walk.pair(Some(running), Some(committed), true);
}

struct Walk<'a, 'o> {
    tolerance: &'o Decimal,
    path: Vec<Step<'a>>,
    drifts: &'o mut Vec<FieldDrift>,
}

fn items_of(node: &CNode) -> Option<&[Option<CNode>]> {
    match &node.kind {
        CKind::Array(items) | CKind::Keyed { items, .. } => Some(items),
        _ => None,
    }
}

/// A node that flattens to exactly one leaf at its own path (below the root).
fn is_leaf(node: &CNode) -> bool {
    matches!(node.kind, CKind::Scalar(_)) || node.is_empty_container()
}

impl<'a> Walk<'a, '_> {
    fn owned_path(&self) -> Vec<Segment> {
        self.path.iter().map(|s| s.to_segment()).collect()
    }

    /// `root`: the document itself, which is never a leaf and always descends.
    fn pair(&mut self, r: Option<&'a CNode>, c: Option<&'a CNode>, root: bool) {
        let (r, c) = match (r, c) {
            (Some(r), Some(c)) => (r, c),
            (Some(r), None) => return self.fallback(Some(r), None, root),
            (None, Some(c)) => return self.fallback(None, Some(c), root),
            (None, None) => return,
        };
        // An empty container is a leaf of its own; only two non-empty ones descend together.
        let descend = root || (!r.is_empty_container() && !c.is_empty_container());
        match (&r.kind, &c.kind) {
            (CKind::Object(a), CKind::Object(b)) if descend => {
                merge(
                    a,
                    b,
                    |x, y| x.0.as_bytes().cmp(y.0.as_bytes()),
                    |x, y| {
                        let (key, rv, cv) = match (x, y) {
                            (Some(x), y) => (&*x.0, Some(&x.1), y.map(|y| &y.1)),
                            (None, Some(y)) => (&*y.0, None, Some(&y.1)),
                            (None, None) => return,
                        };
                        self.path.push(Step::Key(key));
                        self.pair(rv, cv, false);
                        self.path.pop();
                    },
                );
            }
            (
                CKind::Keyed {
                    items: xa,
                    index: Some(ia),
                },
                CKind::Keyed {
                    items: xb,
                    index: Some(ib),
                },
            ) if descend && ia.field == ib.field => {
                merge(
                    &ia.by_member,
                    &ib.by_member,
                    |x, y| x.0.cmp(&y.0),
                    |x, y| {
                        let member = match (x, y) {
                            (Some(x), _) => &x.0,
                            (None, Some(y)) => &y.0,
                            (None, None) => return,
                        };
                        let rv = x.and_then(|&(_, k)| xa.get(k)?.as_ref());
                        let cv = y.and_then(|&(_, k)| xb.get(k)?.as_ref());
                        self.path.push(Step::Keyed(&ia.field, member));
                        self.pair(rv, cv, false);
                        self.path.pop();
                    },
                );
            }
            _ if descend && items_of(r).is_some() && items_of(c).is_some() => {
                let a = items_of(r).unwrap_or_default();
                let b = items_of(c).unwrap_or_default();
                for k in 0..a.len().max(b.len()) {
                    let rv = a.get(k).and_then(Option::as_ref);
                    let cv = b.get(k).and_then(Option::as_ref);
                    if rv.is_none() && cv.is_none() {
                        continue;
                    }
                    self.path.push(Step::Index(k as u64));
                    self.pair(rv, cv, false);
                    self.path.pop();
                }
            }
            (CKind::Set(a), CKind::Set(b)) if descend => {
                // A member's value is its path: held on both sides, it never drifts.
                merge(
                    a,
                    b,
                    |x, y| x.member.cmp(&y.member),
                    |x, y| match (x, y) {
                        (Some(x), None) => {
                            self.member_drift(&x.member, DriftKind::MissingInCommitted)
                        }
                        (None, Some(y)) => {
                            self.member_drift(&y.member, DriftKind::MissingInRunning)
                        }
                        _ => {}
                    },
                );
            }
            _ if !root && is_leaf(r) && is_leaf(c) => {
                if leaves_differ(r, c, self.tolerance) {
                    self.fallback(Some(r), Some(c), false);
                }
            }
            _ => self.fallback(Some(r), Some(c), root),
        }
    }

    fn member_drift(&mut self, member: &'a Member, kind: DriftKind) {
        self.path.push(Step::Member(member));
        let leaf = member_leaf(member, &self.owned_path());
        self.path.pop();
        let (r, c): (&[Leaf], &[Leaf]) = match kind {
            DriftKind::MissingInCommitted => (std::slice::from_ref(&leaf), &[]),
            _ => (&[], std::slice::from_ref(&leaf)),
        };
        merge_leaves(r, c, self.tolerance, self.drifts);
    }

    /// Flattens what is here on each side and merge-joins the two leaf lists: for
    /// subtrees of different shapes, or one side missing. Every leaf it sees below
    /// a non-leaf is a drift, so the allocation is the report's own.
    fn fallback(&mut self, r: Option<&CNode>, c: Option<&CNode>, root: bool) {
        let mut path = self.owned_path();
        let mut flat = |n: Option<&CNode>| {
            let mut out = Vec::new();
            if let Some(n) = n {
                if root {
                    flatten_children(n, &mut path, &mut out);
                } else {
                    flatten_node(n, &mut path, &mut out);
                }
            }
            out
        };
        let (lr, lc) = (flat(r), flat(c));
        merge_leaves(&lr, &lc, self.tolerance, self.drifts);
    }
}

/// Merge-join of two slices sorted by `order`; `visit` gets each pair of equal
/// items, or an item of one side alone, in order.
fn merge<'x, T>(
    a: &'x [T],
    b: &'x [T],
    order: impl Fn(&T, &T) -> Ordering,
    mut visit: impl FnMut(Option<&'x T>, Option<&'x T>),
) {
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => match order(x, y) {
                Ordering::Less => {
                    visit(Some(x), None);
                    i += 1;
                }
                Ordering::Greater => {
                    visit(None, Some(y));
                    j += 1;
                }
                Ordering::Equal => {
                    visit(Some(x), Some(y));
                    i += 1;
                    j += 1;
                }
            },
            (Some(x), None) => {
                visit(Some(x), None);
                i += 1;
            }
            (None, Some(y)) => {
                visit(None, Some(y));
                j += 1;
            }
            (None, None) => return,
        }
    }
}

/// Whether two nodes that are each one leaf at the same path differ: what
/// [`differ`] says of their leaves, without building them.
fn leaves_differ(r: &CNode, c: &CNode, tolerance: &Decimal) -> bool {
    match (&r.kind, &c.kind) {
        (CKind::Scalar(Value::Number(x)), CKind::Scalar(Value::Number(y))) => {
            if x == y {
                Decimal::ZERO > *tolerance
            } else {
                x.sub(y).abs() > *tolerance
            }
        }
        (CKind::Scalar(Value::Number(_)), _) | (_, CKind::Scalar(Value::Number(_))) => true,
        // Null, booleans and strings: canonical JSON is an injective rendering.
        (CKind::Scalar(x), CKind::Scalar(y)) => x != y,
        (CKind::Scalar(_), _) | (_, CKind::Scalar(_)) => true,
        // Both empty containers: `{}` or `[]`.
        (CKind::Object(_), CKind::Object(_)) => false,
        (CKind::Object(_), _) | (_, CKind::Object(_)) => true,
        _ => false,
    }
}

/// The merge-join over two leaf lists sorted by path: the reference definition of
/// a drift (§6.4).
pub(crate) fn merge_leaves(r: &[Leaf], c: &[Leaf], tolerance: &Decimal, out: &mut Vec<FieldDrift>) {
    merge(
        r,
        c,
        |a, b| a.path.cmp(&b.path),
        |a, b| match (a, b) {
            (Some(a), None) => out.push(FieldDrift {
                path: a.path.clone(),
                kind: DriftKind::MissingInCommitted,
                running: Some(shown(a)),
                committed: None,
                delta: None,
            }),
            (None, Some(b)) => out.push(FieldDrift {
                path: b.path.clone(),
                kind: DriftKind::MissingInRunning,
                running: None,
                committed: Some(shown(b)),
                delta: None,
            }),
            (Some(a), Some(b)) => {
                if differ(a, b, tolerance) {
                    out.push(FieldDrift {
                        path: a.path.clone(),
                        kind: DriftKind::Changed,
                        running: Some(shown(a)),
                        committed: Some(shown(b)),
                        delta: delta(a, b),
                    });
                }
            }
            (None, None) => {}
        },
    );
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
pub(crate) fn shown(leaf: &Leaf) -> String {
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
