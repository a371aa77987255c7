//! Flattening canonical trees to leaves keyed by path (§6.3): scalars, empty
//! objects, empty arrays and set members; the root itself is never a leaf.
//!
//! Output is in path order (§6.5) by construction: children are visited in
//! segment order. Pure: no I/O. `diff` walks trees directly and flattens only
//! where it reports: subtrees present on one side, or shaped differently. Leaves keep real values (for comparison); a
//! secret leaf also carries its HMAC, which is all that may be shown.

use crate::canon::number::Decimal;
use crate::canon::path::{Member, Path, Segment};
use crate::canon::tree::{CKind, CNode};

/// One leaf of a canonical document. Its `Debug` never shows a secret's value.
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    pub path: Path,
    pub value: LeafValue,
    /// Full hex HMAC of the canonical value when the leaf is secret.
    pub secret: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeafValue {
    /// Kept exact, for tolerance.
    Number(Decimal),
    /// Canonical JSON of a string, boolean, null, `{}` or `[]`.
    Json(String),
    /// A set member: its value is its path, so two sides holding it are equal.
    /// The text is what may be shown (empty when the member is secret).
    Member(String),
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Leaf");
        d.field("path", &self.path.to_string());
        match &self.secret {
            Some(hmac) => d.field("value", &crate::canon::path::redaction_token(hmac)),
            None => d.field("value", &self.value),
        };
        d.finish()
    }
}

/// How many leaves a whole document has, without building them.
pub(crate) fn count_leaves(root: &CNode) -> usize {
    fn below(node: &CNode) -> usize {
        if matches!(node.kind, CKind::Scalar(_)) || node.is_empty_container() {
            1
        } else {
            children(node)
        }
    }
    fn children(node: &CNode) -> usize {
        match &node.kind {
            CKind::Scalar(_) => 0,
            CKind::Object(entries) => entries.iter().map(|(_, c)| below(c)).sum(),
            CKind::Array(items)
            | CKind::Keyed {
                items, index: None, ..
            } => items.iter().flatten().map(below).sum(),
            CKind::Keyed {
                items,
                index: Some(index),
                ..
            } => index
                .by_member
                .iter()
                .filter_map(|&(_, i)| items.get(i)?.as_ref())
                .map(below)
                .sum(),
            CKind::Set(members) => members.len(),
        }
    }
    children(root)
}

/// What flattening hands each leaf to: a full [`Leaf`], or only its path.
pub(crate) trait LeafSink {
    /// A scalar or empty container at `path`.
    fn node(&mut self, path: &[Segment], node: &CNode);
    /// A set member, whose path ends in its own segment.
    fn member(&mut self, path: &[Segment], member: &Member);
}

impl LeafSink for Vec<Leaf> {
    fn node(&mut self, path: &[Segment], node: &CNode) {
        let value = match &node.kind {
            CKind::Scalar(crate::canon::value::Value::Number(n)) => LeafValue::Number(n.clone()),
            CKind::Scalar(other) => LeafValue::Json(other.to_canonical_json()),
            CKind::Object(_) => LeafValue::Json("{}".into()),
            _ => LeafValue::Json("[]".into()),
        };
        self.push(Leaf {
            path: Path(path.to_vec()),
            value,
            secret: node.hmac.as_deref().map(str::to_owned),
        });
    }

    fn member(&mut self, path: &[Segment], member: &Member) {
        self.push(member_leaf(member, path));
    }
}

/// Leaf paths only: what an ignored subtree leaves behind, to be counted.
pub(crate) struct PathsOnly<'a>(pub &'a mut Vec<Path>);

impl LeafSink for PathsOnly<'_> {
    fn node(&mut self, path: &[Segment], _: &CNode) {
        self.0.push(Path(path.to_vec()));
    }

    fn member(&mut self, path: &[Segment], _: &Member) {
        self.0.push(Path(path.to_vec()));
    }
}

/// Leaves of `node`, which sits at `path` (itself a leaf when empty or scalar).
pub(crate) fn flatten_node(node: &CNode, path: &mut Vec<Segment>, out: &mut impl LeafSink) {
    if matches!(node.kind, CKind::Scalar(_)) || node.is_empty_container() {
        out.node(path, node);
    } else {
        flatten_children(node, path, out);
    }
}

pub(crate) fn flatten_children(node: &CNode, path: &mut Vec<Segment>, out: &mut impl LeafSink) {
    match &node.kind {
        CKind::Scalar(_) => {}
        CKind::Object(entries) => {
            for (k, child) in entries {
                path.push(Segment::Key(k.to_string()));
                flatten_node(child, path, out);
                path.pop();
            }
        }
        CKind::Array(items)
        | CKind::Keyed {
            items, index: None, ..
        } => flatten_positional(items, path, out),
        CKind::Keyed {
            items,
            index: Some(index),
        } => {
            for (member, i) in &index.by_member {
                if let Some(Some(item)) = items.get(*i) {
                    path.push(keyed(&index.field, member));
                    flatten_node(item, path, out);
                    path.pop();
                }
            }
        }
        CKind::Set(members) => {
            for m in members {
                path.push(Segment::Member(m.member.clone()));
                out.member(path, &m.member);
                path.pop();
            }
        }
    }
}

fn flatten_positional(items: &[Option<CNode>], path: &mut Vec<Segment>, out: &mut impl LeafSink) {
    for (i, item) in items.iter().enumerate() {
        if let Some(item) = item {
            path.push(Segment::Index(i as u64));
            flatten_node(item, path, out);
            path.pop();
        }
    }
}

fn keyed(field: &str, member: &Member) -> Segment {
    Segment::Keyed {
        field: field.to_owned(),
        value: member.clone(),
    }
}

pub(crate) fn member_leaf(member: &Member, path: &[Segment]) -> Leaf {
    let (value, secret) = match member {
        Member::Json(json) => (LeafValue::Member(json.clone()), None),
        Member::Redacted(hmac) => (LeafValue::Member(String::new()), Some(hmac.clone())),
    };
    Leaf {
        path: Path(path.to_vec()),
        value,
        secret,
    }
}

/// Both sides' leaves with keyed-array decisions taken jointly: an `x-drift-key`
/// array is matched by key only when both sides can be; otherwise both compare
/// it by position (§6.2). The reference `diff`'s tree walk is tested against.
#[cfg(test)]
pub(crate) fn flatten_pair(running: &CNode, committed: &CNode) -> (Vec<Leaf>, Vec<Leaf>) {
    let mut r = Vec::new();
    let mut c = Vec::new();
    joint(
        Some(running),
        Some(committed),
        &mut Vec::new(),
        &mut r,
        &mut c,
        true,
    );
    ensure_sorted(&mut r);
    ensure_sorted(&mut c);
    (r, c)
}

#[cfg(test)]
fn items_of(node: &CNode) -> Option<&[Option<CNode>]> {
    match &node.kind {
        CKind::Array(items) | CKind::Keyed { items, .. } => Some(items),
        _ => None,
    }
}

#[cfg(test)]
fn joint(
    r: Option<&CNode>,
    c: Option<&CNode>,
    path: &mut Vec<Segment>,
    out_r: &mut Vec<Leaf>,
    out_c: &mut Vec<Leaf>,
    root: bool,
) {
    let one = |n: &CNode, path: &mut Vec<Segment>, out: &mut Vec<Leaf>| {
        if root {
            flatten_children(n, path, out);
        } else {
            flatten_node(n, path, out);
        }
    };
    let (r, c) = match (r, c) {
        (Some(r), Some(c)) => (r, c),
        (Some(r), None) => return one(r, path, out_r),
        (None, Some(c)) => return one(c, path, out_c),
        (None, None) => return,
    };
    // An empty container is a leaf of its own; only two non-empty ones descend together.
    let descend = root || (!r.is_empty_container() && !c.is_empty_container());
    match (&r.kind, &c.kind) {
        (CKind::Object(a), CKind::Object(b)) if descend => {
            let (mut i, mut j) = (0, 0);
            while i < a.len() || j < b.len() {
                let order = match (a.get(i), b.get(j)) {
                    (Some(x), Some(y)) => x.0.as_bytes().cmp(y.0.as_bytes()),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    _ => std::cmp::Ordering::Greater,
                };
                let (key, rv, cv) = match order {
                    std::cmp::Ordering::Less => {
                        i += 1;
                        (&a[i - 1].0, Some(&a[i - 1].1), None)
                    }
                    std::cmp::Ordering::Greater => {
                        j += 1;
                        (&b[j - 1].0, None, Some(&b[j - 1].1))
                    }
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        j += 1;
                        (&a[i - 1].0, Some(&a[i - 1].1), Some(&b[j - 1].1))
                    }
                };
                path.push(Segment::Key(key.to_string()));
                joint(rv, cv, path, out_r, out_c, false);
                path.pop();
            }
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
            let (a, b) = (&ia.by_member, &ib.by_member);
            let (mut i, mut j) = (0, 0);
            while i < a.len() || j < b.len() {
                let order = match (a.get(i), b.get(j)) {
                    (Some(x), Some(y)) => x.0.cmp(&y.0),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    _ => std::cmp::Ordering::Greater,
                };
                let (member, ri, ci) = match order {
                    std::cmp::Ordering::Less => {
                        i += 1;
                        (&a[i - 1].0, Some(a[i - 1].1), None)
                    }
                    std::cmp::Ordering::Greater => {
                        j += 1;
                        (&b[j - 1].0, None, Some(b[j - 1].1))
                    }
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        j += 1;
                        (&a[i - 1].0, Some(a[i - 1].1), Some(b[j - 1].1))
                    }
                };
                let rv = ri.and_then(|k| xa.get(k)?.as_ref());
                let cv = ci.and_then(|k| xb.get(k)?.as_ref());
                path.push(keyed(&ia.field, member));
                joint(rv, cv, path, out_r, out_c, false);
                path.pop();
            }
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
                path.push(Segment::Index(k as u64));
                joint(rv, cv, path, out_r, out_c, false);
                path.pop();
            }
        }
        _ => {
            one(r, path, out_r);
            one(c, path, out_c);
        }
    }
}

/// Construction yields path order; a check that costs one pass keeps a future
/// change from silently breaking the merge-join.
#[cfg(test)]
fn ensure_sorted(leaves: &mut [Leaf]) {
    if !leaves.is_sorted_by(|a, b| a.path <= b.path) {
        debug_assert!(false, "leaves were built out of path order");
        leaves.sort_by(|a, b| a.path.cmp(&b.path));
    }
}
