//! Canonicalisation of one parsed document through its schema (§6.2) into the form
//! `diff` compares: defaults filled, ignored subtrees removed (and their leaves
//! counted), keyed arrays indexed by key, sets deduplicated, secrets HMAC'd.
//!
//! A `Canonical` is built once per document and may be diffed many times (the
//! committed side is cached per blob, so its size is held for the whole fleet):
//! it keeps the tree only, with keys moved out of the document, never a
//! flattened copy with a path per leaf. Pure: no I/O, no clock; secret values stay
//! inside this tree and only their HMAC ever reaches a path or an output string.

use crate::canon::flatten::{PathsOnly, count_leaves, flatten_node};
use crate::canon::path::{FieldPattern, Member, Path, Segment};
use crate::canon::schema::{ANY, ANY_NODE, Node, NodeId, Schema};
use crate::canon::secret::SecretKey;
use crate::canon::tree::{CKind, CNode, KeyIndex, SetMember, Shape};
use crate::canon::value::{Map, Value, write_json_string};
use crate::report::{SchemaError, Side};

/// Defaults are filled at most this many schema hops deep inside filled content,
/// so a recursive schema whose recursion has a default terminates (§6.2).
pub const MAX_DEFAULT_HOPS: u32 = 32;

pub struct CanonOptions<'a> {
    /// `ignore_fields`: each covers its whole subtree.
    pub ignore_fields: &'a [FieldPattern],
    /// What secret values are HMAC'd under.
    pub secret_key: &'a SecretKey,
}

/// One side, canonicalised.
#[derive(Debug)]
pub struct Canonical {
    /// What `diff` walks; kept unflattened, since a flattened copy (a path per
    /// leaf) would be most of a cached side's memory.
    pub(crate) tree: CNode,
    /// Leaf paths removed as ignored, sorted, without repeats.
    pub(crate) ignored: Vec<Path>,
    /// Containers removed because ignore rules emptied them, sorted: not leaves,
    /// and equal to an empty container of their shape on the other side.
    pub(crate) vacated: Vec<(Path, Shape)>,
    side: Side,
    schema_errors: Vec<SchemaError>,
}

impl Canonical {
    /// Canonical JSON (§6.6) of the canonicalised tree (defaults filled, ignored
    /// removed, sets sorted and deduplicated, keyed arrays in key order) with every
    /// secret value replaced by its token string: what `running_sha256` hashes.
    pub fn redacted_canonical_json(&self) -> String {
        self.tree.to_json(true)
    }

    /// Validation errors, then canonicalisation problems (keyed-array fallbacks,
    /// collapsed set duplicates), all on this side.
    pub fn schema_errors(&self) -> &[SchemaError] {
        &self.schema_errors
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// How many leaves this side has (its own keyed-array decisions).
    pub fn leaf_count(&self) -> usize {
        count_leaves(&self.tree)
    }
}

/// Canonicalises one side. Schema validation runs on `doc` as given; the tree then
/// gets the schema's rules (§6.2). Problems are listed, never fatal.
pub fn canonicalise(
    doc: Value,
    schema: Option<&Schema>,
    side: Side,
    opts: &CanonOptions<'_>,
) -> Canonical {
    let (mut schema_errors, unique_errors) = match schema {
        Some(s) => s.validate(&doc, side),
        None => (Vec::new(), Vec::new()),
    };
    let mut builder = Builder {
        schema,
        opts,
        side,
        path: Path::root(),
        errors: Vec::new(),
        ignored: Vec::new(),
        vacated: Vec::new(),
        in_ignored: false,
        unique_errors: &unique_errors,
    };
    let root = schema.map_or(ANY, Schema::root);
    let root_secret = builder.node(root).secret;
    // The root is never a leaf: a root emptied by ignore rules is just empty.
    let tree = builder.build(doc, root, root_secret, 0).node;
    schema_errors.append(&mut builder.errors);
    let mut ignored = builder.ignored;
    ignored.sort_unstable();
    ignored.dedup();
    let mut vacated = builder.vacated;
    vacated.sort_unstable();
    Canonical {
        tree,
        ignored,
        vacated,
        side,
        schema_errors,
    }
}

/// A built value, and whether ignore rules emptied it (of which shape).
struct Built {
    node: CNode,
    vacated: Option<Shape>,
}

struct Builder<'s, 'o> {
    schema: Option<&'s Schema>,
    opts: &'o CanonOptions<'o>,
    side: Side,
    /// Where the value being built sits, in canonical path segments.
    path: Path,
    errors: Vec<SchemaError>,
    ignored: Vec<Path>,
    vacated: Vec<(Path, Shape)>,
    /// Building a removed subtree only to count its leaves: no ignore checks, no
    /// schema errors.
    in_ignored: bool,
    /// Paths where validation already reported `uniqueItems`.
    unique_errors: &'o [String],
}

impl<'s> Builder<'s, '_> {
    fn node(&self, id: NodeId) -> &'s Node {
        match self.schema {
            Some(s) => s.node(id),
            None => &ANY_NODE,
        }
    }

    fn pattern_covers_here(&self) -> bool {
        self.opts.ignore_fields.iter().any(|p| p.covers(&self.path))
    }

    fn error(&mut self, message: String) {
        if !self.in_ignored {
            self.errors.push(SchemaError {
                side: self.side,
                path: self.path.to_string(),
                message,
            });
        }
    }

    /// `hops`: 0 in document content; inside filled defaults, how many schema hops
    /// below the nearest document value.
    fn build(&mut self, value: Value, node_id: NodeId, in_secret: bool, hops: u32) -> Built {
        let node = self.node(node_id);
        // What the container holds once defaults are filled: an ignore rule that
        // removes all of it (a default left unfilled counts) empties it.
        let mut shape = match &value {
            Value::Object(map) if !map.is_empty() => Some(Shape::Object),
            Value::Array(items) if !items.is_empty() => Some(Shape::Array),
            _ => None,
        };
        let kind = match value {
            Value::Object(map) => {
                let (entries, unfilled) = self.build_object(map, node, in_secret, hops);
                if unfilled {
                    shape = Some(Shape::Object);
                }
                CKind::Object(entries)
            }
            Value::Array(items) => self.build_array(items, node, in_secret, hops),
            scalar => CKind::Scalar(scalar),
        };
        let mut built = CNode { kind, hmac: None };
        if in_secret {
            built.hmac = Some(
                self.opts
                    .secret_key
                    .hmac_hex(&built.to_json(false))
                    .into_boxed_str(),
            );
        }
        let vacated = match shape {
            Some(shape) if !self.in_ignored && built.is_empty_container() => Some(shape),
            _ => None,
        };
        Built {
            node: built,
            vacated,
        }
    }

    /// `build` for an object member or array item: a container that ignore rules
    /// emptied is removed and remembered instead. Left in place it would be an
    /// empty container, which is a leaf, so an ignore rule would create the very
    /// drift it exists to hide (`runtime {}` against an absent `runtime`).
    fn build_kept(
        &mut self,
        value: Value,
        node_id: NodeId,
        in_secret: bool,
        hops: u32,
    ) -> Option<CNode> {
        let built = self.build(value, node_id, in_secret, hops);
        match built.vacated {
            Some(shape) => {
                self.vacated.push((self.path.clone(), shape));
                None
            }
            None => Some(built.node),
        }
    }

    /// Builds the removed subtree at the current path and records its leaf paths.
    fn record_ignored(&mut self, value: Value, node_id: NodeId, in_secret: bool, hops: u32) {
        let was = std::mem::replace(&mut self.in_ignored, true);
        let removed = self.build(value, node_id, in_secret, hops).node;
        self.in_ignored = was;
        flatten_node(
            &removed,
            &mut self.path.0,
            &mut PathsOnly(&mut self.ignored),
        );
    }

    /// The object's entries, and whether a default was left unfilled because
    /// an ignore rule covers it.
    fn build_object(
        &mut self,
        map: Map,
        node: &'s Node,
        in_secret: bool,
        hops: u32,
    ) -> (Vec<(Box<str>, CNode)>, bool) {
        let inner_hops = if hops > 0 { hops + 1 } else { 0 };
        let mut entries: Vec<(String, Value, u32)> = map
            .into_entries()
            .into_iter()
            .map(|(k, v)| (k, v, inner_hops))
            .collect();
        // The document's own keys, sorted: what a default must not override.
        let present = entries.len();
        let fill_hops = hops + 1;
        let mut unfilled = false;
        if fill_hops <= MAX_DEFAULT_HOPS {
            let mut filled = false;
            for (k, child_id) in &node.properties {
                let child = self.node(*child_id);
                let Some(default) = &child.default else {
                    continue;
                };
                let in_doc = entries[..present]
                    .binary_search_by(|e| e.0.as_bytes().cmp(k.as_bytes()))
                    .is_ok();
                if in_doc {
                    continue;
                }
                if child.ignore {
                    unfilled |= !self.in_ignored;
                    continue;
                }
                if !self.in_ignored && !self.opts.ignore_fields.is_empty() {
                    self.path.0.push(Segment::Key(k.clone()));
                    let covered = self.pattern_covers_here();
                    self.path.0.pop();
                    if covered {
                        unfilled = true;
                        continue;
                    }
                }
                entries.push((k.clone(), default.clone(), fill_hops));
                filled = true;
            }
            if filled {
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for (k, v, child_hops) in entries {
            let child_id = node.child(&k);
            let child = self.node(child_id);
            let child_secret = in_secret || child.secret;
            self.path.0.push(Segment::Key(k));
            if !self.in_ignored && (child.ignore || self.pattern_covers_here()) {
                self.record_ignored(v, child_id, child_secret, child_hops);
                self.path.0.pop();
                continue;
            }
            let built = self.build_kept(v, child_id, child_secret, child_hops);
            if let (Some(Segment::Key(k)), Some(built)) = (self.path.0.pop(), built) {
                out.push((k.into_boxed_str(), built));
            }
        }
        (out, unfilled)
    }

    fn build_array(
        &mut self,
        items: Vec<Value>,
        node: &'s Node,
        in_secret: bool,
        hops: u32,
    ) -> CKind {
        let item_hops = if hops > 0 { hops + 1 } else { 0 };
        let item_id = node.item();
        let item_secret = in_secret || self.node(item_id).secret;
        if let Some(field) = &node.key {
            return self.build_keyed(field, items, item_id, item_secret, item_hops);
        }
        if node.unique {
            return self.build_set(items, item_id, item_secret, item_hops);
        }
        let built = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                self.build_item(
                    Segment::Index(i as u64),
                    v,
                    item_id,
                    item_secret,
                    item_hops,
                    false,
                )
            })
            .collect();
        CKind::Array(built)
    }

    /// One array item at `seg`; `None` when an `ignore_fields` pattern removes it,
    /// or empties it unless `keep_emptied`.
    fn build_item(
        &mut self,
        seg: Segment,
        value: Value,
        item_id: NodeId,
        item_secret: bool,
        hops: u32,
        keep_emptied: bool,
    ) -> Option<CNode> {
        self.path.0.push(seg);
        let built = if !self.in_ignored && self.pattern_covers_here() {
            self.record_ignored(value, item_id, item_secret, hops);
            None
        } else if keep_emptied {
            Some(self.build(value, item_id, item_secret, hops).node)
        } else {
            self.build_kept(value, item_id, item_secret, hops)
        };
        self.path.0.pop();
        built
    }

    fn build_keyed(
        &mut self,
        field: &str,
        items: Vec<Value>,
        item_id: NodeId,
        item_secret: bool,
        hops: u32,
    ) -> CKind {
        let item_node = self.node(item_id);
        let key_node = self.node(item_node.child(field));
        let key_secret = item_secret || key_node.secret;
        // An item without the key takes the key property's default, as it would
        // once filled.
        let keys: Vec<Option<String>> = items
            .iter()
            .map(|item| match item {
                Value::Object(m) => m
                    .get(field)
                    .or(key_node.default.as_ref())
                    .map(Value::to_canonical_json),
                _ => None,
            })
            .collect();
        let shown = |json: &str| -> String {
            if key_secret {
                let mut s = String::new();
                write_json_string(&self.opts.secret_key.token(json), &mut s);
                s
            } else {
                json.to_owned()
            }
        };
        let mut problem = None;
        if let Some(i) = keys.iter().position(Option::is_none) {
            problem = Some(format!("item {i} has no `{field}`"));
        } else {
            let mut sorted: Vec<(&str, usize)> = keys
                .iter()
                .enumerate()
                .filter_map(|(i, k)| Some((k.as_deref()?, i)))
                .collect();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
                problem = Some(format!(
                    "items {} and {} share the `{field}` value {}",
                    w[0].1,
                    w[1].1,
                    shown(w[0].0)
                ));
            }
        }
        if let Some(problem) = problem {
            // No index: `diff` then compares this array by position on both sides.
            self.error(format!(
                "{problem}, so `x-drift-key` cannot match this array's items and both sides compare it by position"
            ));
            let built = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    self.build_item(
                        Segment::Index(i as u64),
                        v,
                        item_id,
                        item_secret,
                        hops,
                        false,
                    )
                })
                .collect();
            return CKind::Keyed {
                items: built,
                index: None,
            };
        }
        let keys: Vec<String> = keys.into_iter().flatten().collect();
        let mut built = Vec::with_capacity(items.len());
        let mut by_member = Vec::with_capacity(items.len());
        for (i, (value, json)) in items.into_iter().zip(&keys).enumerate() {
            let member = if key_secret {
                Member::Redacted(self.opts.secret_key.hmac_hex(json))
            } else {
                Member::Json(json.clone())
            };
            let seg = Segment::Keyed {
                field: field.to_owned(),
                value: member.clone(),
            };
            let item = self.build_item(seg, value, item_id, item_secret, hops, false);
            if item.is_some() {
                by_member.push((member, i));
            }
            built.push(item);
        }
        by_member.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut by_json: Vec<usize> = by_member.iter().map(|&(_, i)| i).collect();
        by_json.sort_unstable_by(|&a, &b| keys[a].as_bytes().cmp(keys[b].as_bytes()));
        CKind::Keyed {
            items: built,
            index: Some(Box::new(KeyIndex {
                field: field.to_owned(),
                by_member,
                by_json,
            })),
        }
    }

    fn build_set(
        &mut self,
        items: Vec<Value>,
        item_id: NodeId,
        item_secret: bool,
        hops: u32,
    ) -> CKind {
        let mut members: Vec<SetMember> = Vec::with_capacity(items.len());
        for (i, value) in items.into_iter().enumerate() {
            // Patterns inside a member see it by position; the member's own path
            // needs its canonical form, known only once it is built.
            // A member emptied by ignore rules stays a member (`{}`), as a member
            // partly ignored stays one with what is left of it.
            let seg = Segment::Index(i as u64);
            let Some(built) = self.build_item(seg, value, item_id, item_secret, hops, true) else {
                continue;
            };
            let json = built.to_json(false);
            let member = match &built.hmac {
                Some(h) => Member::Redacted(h.to_string()),
                // Redaction changes only what lies inside a secret.
                None if !built.holds_secret() => Member::Json(json.clone()),
                None => Member::Json(built.to_json(true)),
            };
            self.path.0.push(Segment::Member(member));
            if !self.in_ignored && self.pattern_covers_here() {
                self.ignored.push(self.path.clone());
                self.path.0.pop();
                continue;
            }
            if let Some(Segment::Member(member)) = self.path.0.pop() {
                members.push(SetMember { member, json });
            }
        }
        members.sort_by(|a, b| a.member.cmp(&b.member));
        let before = members.len();
        let mut repeated: Vec<String> = Vec::new();
        members.dedup_by(|later, kept| {
            let same = later.member == kept.member;
            if same && repeated.last() != Some(&kept.member.to_string()) {
                repeated.push(kept.member.to_string());
            }
            same
        });
        if members.len() != before && !self.unique_errors.contains(&self.path.to_string()) {
            for shown in repeated {
                self.error(format!(
                    "member {shown} appears more than once in a `uniqueItems` array; it counts once"
                ));
            }
        }
        CKind::Set(members)
    }
}
