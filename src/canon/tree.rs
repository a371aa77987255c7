//! The canonical tree: what canonicalisation builds and `diff` walks. Nodes
//! keep their document shape (objects sorted by key, arrays by position, keyed
//! arrays with their key index, sets sorted and deduplicated) and carry the HMAC
//! of every value inside a secret. Owns the tree's canonical JSON (§6.6) and
//! must not decide how a tree is built: `canonical` does, through the schema.

use crate::canon::path::{Member, redaction_token};
use crate::canon::value::{Value, write_json_string};

/// What kind of container was vacated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shape {
    Object,
    Array,
}

/// A canonicalised value. `hmac` is set on every node inside a secret: the full
/// HMAC of the node's canonical JSON. Its `Debug` shows secrets as tokens only.
pub(crate) struct CNode {
    pub kind: CKind,
    pub hmac: Option<Box<str>>,
}

pub(crate) enum CKind {
    /// Null, boolean, number or string.
    Scalar(Value),
    /// Sorted by key bytes.
    Object(Vec<(Box<str>, CNode)>),
    /// Items in document order; `None` where an `ignore_fields` pattern removed one
    /// (the others keep their index).
    Array(Vec<Option<CNode>>),
    /// An `x-drift-key` array. `index` is `None` when this side's items cannot be
    /// matched by key; then it is compared by position.
    Keyed {
        items: Vec<Option<CNode>>,
        /// Boxed: most nodes are scalars, and every node is as big as the largest kind.
        index: Option<Box<KeyIndex>>,
    },
    /// A `uniqueItems` array: members sorted by [`Member`] order, no repeats.
    Set(Vec<SetMember>),
}

pub(crate) struct KeyIndex {
    /// The key property.
    pub field: String,
    /// Each kept item's key, sorted by path order.
    pub by_member: Vec<(Member, usize)>,
    /// Kept items ordered by their key's real canonical JSON (for serialisation).
    pub by_json: Vec<usize>,
}

pub(crate) struct SetMember {
    /// The path segment's member: canonical JSON with secrets inside it shown as
    /// tokens, or the HMAC when the member itself is secret.
    pub member: Member,
    /// The member's real canonical JSON (HMAC input, serialisation order).
    pub json: String,
}

impl std::fmt::Debug for CNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A `{:?}` in a log line must not be how a secret leaves the process.
        f.write_str(&self.to_json(true))
    }
}

impl CNode {
    pub(crate) fn is_empty_container(&self) -> bool {
        match &self.kind {
            CKind::Scalar(_) => false,
            CKind::Object(entries) => entries.is_empty(),
            CKind::Array(items) | CKind::Keyed { items, .. } => items.iter().all(Option::is_none),
            CKind::Set(members) => members.is_empty(),
        }
    }

    /// Whether this node or anything below it is secret.
    pub(crate) fn holds_secret(&self) -> bool {
        self.hmac.is_some()
            || match &self.kind {
                CKind::Scalar(_) => false,
                CKind::Object(entries) => entries.iter().any(|(_, c)| c.holds_secret()),
                CKind::Array(items) | CKind::Keyed { items, .. } => {
                    items.iter().flatten().any(CNode::holds_secret)
                }
                // A member holding a secret shows differently from its real JSON.
                CKind::Set(members) => members.iter().any(|m| match &m.member {
                    Member::Redacted(_) => true,
                    Member::Json(shown) => *shown != m.json,
                }),
            }
    }

    /// Canonical JSON; with `redact`, secrets are written as their token string.
    pub(crate) fn to_json(&self, redact: bool) -> String {
        let mut out = String::new();
        self.write_json(redact, &mut out);
        out
    }

    fn write_json(&self, redact: bool, out: &mut String) {
        if let (true, Some(h)) = (redact, &self.hmac) {
            write_json_string(&redaction_token(h), out);
            return;
        }
        match &self.kind {
            CKind::Scalar(v) => v.write_canonical_json(out),
            CKind::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(k, out);
                    out.push(':');
                    v.write_json(redact, out);
                }
                out.push('}');
            }
            CKind::Array(items)
            | CKind::Keyed {
                items, index: None, ..
            } => write_items(items.iter().flatten(), redact, out),
            CKind::Keyed {
                items,
                index: Some(index),
                ..
            } => write_items(
                index.by_json.iter().filter_map(|&i| items.get(i)?.as_ref()),
                redact,
                out,
            ),
            CKind::Set(members) => {
                out.push('[');
                if redact {
                    for (i, m) in members.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        // A redacted member displays as its token string.
                        out.push_str(&m.member.to_string());
                    }
                } else {
                    let mut jsons: Vec<&str> = members.iter().map(|m| m.json.as_str()).collect();
                    jsons.sort_unstable();
                    out.push_str(&jsons.join(","));
                }
                out.push(']');
            }
        }
    }
}

fn write_items<'a>(items: impl Iterator<Item = &'a CNode>, redact: bool, out: &mut String) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        item.write_json(redact, out);
    }
    out.push(']');
}
