//! The bot's JSON Schema, used twice (§6.2): full validation through the
//! `jsonschema` crate, and canonicalisation, which follows only `properties`,
//! object `additionalProperties` and `items`, local `$ref` (siblings merged, the
//! sibling winning) and `allOf` (members merged in order).
//!
//! A schema is compiled once per blob into a small graph of [`Node`]s that the
//! canonicaliser walks for every document; the graph may be cyclic (recursive
//! schemas), so walkers bound their own depth. Pure: no I/O (remote `$ref`s are
//! refused, never fetched), no clock.

mod instance;

use std::collections::{BTreeMap, HashMap};

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use sha2::{Digest, Sha256};

use crate::canon::path::{Path, Segment};
use crate::canon::value::Value;
use crate::report::{SchemaError, Side};
use crate::text::{one_line_spaced, percent_decode};

/// Index of a compiled node in [`Schema`]'s graph.
pub(crate) type NodeId = usize;

/// The node with no rule at all: what a value without a schema, or outside what the
/// schema describes, is canonicalised by.
pub(crate) const ANY: NodeId = 0;

/// `$ref`/`allOf` hops followed while expanding one subschema. Cycles are cut
/// before this; the bound is for absurdly long chains.
const MAX_EXPANSION_DEPTH: usize = 64;

/// Distinct merged subschemas one schema may compile to. Merging `allOf` members
/// that each recurse can multiply them; real schemas stay far below this.
const MAX_NODES: usize = 20_000;

/// What canonicalisation needs to know about one (merged) subschema.
#[derive(Debug)]
pub(crate) struct Node {
    /// From `properties`, sorted by key bytes.
    pub properties: Vec<(String, NodeId)>,
    /// Object-valued `additionalProperties`.
    pub additional: Option<NodeId>,
    /// Object-valued `items`.
    pub items: Option<NodeId>,
    pub default: Option<Value>,
    /// `x-drift-ignore: true`.
    pub ignore: bool,
    /// `x-drift-secret: true` or `writeOnly: true`.
    pub secret: bool,
    /// `x-drift-key`: the property items are matched by.
    pub key: Option<String>,
    /// `uniqueItems: true`.
    pub unique: bool,
}

impl Node {
    pub(crate) const EMPTY: Node = Node {
        properties: Vec::new(),
        additional: None,
        items: None,
        default: None,
        ignore: false,
        secret: false,
        key: None,
        unique: false,
    };

    /// The node for property `key` of an object this node describes.
    pub(crate) fn child(&self, key: &str) -> NodeId {
        match self
            .properties
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
        {
            Ok(i) => self.properties[i].1,
            Err(_) => self.additional.unwrap_or(ANY),
        }
    }

    /// The node for any item of an array this node describes.
    pub(crate) fn item(&self) -> NodeId {
        self.items.unwrap_or(ANY)
    }
}

/// The node used when there is no schema.
pub(crate) static ANY_NODE: Node = Node::EMPTY;

/// Why a schema cannot be used; the caller makes the bot UNKNOWN
/// `committed_config_invalid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaCompileError {
    #[error("the schema is not a valid JSON Schema: {0}")]
    Invalid(String),
    #[error("the schema's $ref `{0}` does not point into the same document")]
    UnresolvableRef(String),
    #[error("the schema's `x-drift-key` must be a property name (a string), not {0}")]
    BadDriftKey(&'static str),
    #[error(
        "the schema merges into more than {MAX_NODES} distinct subschemas through $ref and allOf, too many to canonicalise"
    )]
    TooComplex,
}

/// A compiled schema: build it once per schema blob and share it (it is `Send +
/// Sync`) across every document canonicalised against it.
pub struct Schema {
    /// Reads documents in place: see [`instance`].
    validator: jsonschema::Validator<instance::Doc>,
    nodes: Vec<Node>,
    root: NodeId,
    /// SHA-256 of the schema's canonical JSON: tells schemas apart in `Debug` output.
    id: [u8; 32],
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("nodes", &self.nodes.len())
            .field("id", &hex::encode(self.id))
            .finish_non_exhaustive()
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Schema>();
};

impl Schema {
    /// Compiles `doc` for validation (draft 2020-12 unless `$schema` names another;
    /// remote references refused) and for canonicalisation.
    pub fn compile(doc: &Value) -> Result<Schema, SchemaCompileError> {
        let json = doc.to_serde_json();
        let validator = jsonschema::options_for::<instance::Doc>()
            .offline()
            .build(&json)
            .map_err(|e| {
                // A build error's instance path is the spot in the schema at fault.
                let at = e.instance_path().as_str();
                let reason = one_line_spaced(&e.to_string());
                SchemaCompileError::Invalid(if at.is_empty() {
                    reason
                } else {
                    format!("{reason} (at `{at}`)")
                })
            })?;
        let mut compiler = Compiler::new(doc);
        let root = compiler.compile_root()?;
        let id = Sha256::digest(doc.to_canonical_json().as_bytes()).into();
        Ok(Schema {
            validator,
            nodes: compiler.nodes,
            root,
            id,
        })
    }

    pub(crate) fn root(&self) -> NodeId {
        self.root
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&ANY_NODE)
    }

    /// Validates `doc` (as given, before defaults) with the full schema. Messages
    /// about a secret, or about a value that contains one, never quote the value.
    /// Also returns the paths of `uniqueItems` failures, which canonicalisation
    /// need not report a second time.
    pub(crate) fn validate(&self, doc: &Value, side: Side) -> (Vec<SchemaError>, Vec<String>) {
        // Most documents are valid, and `is_valid` short-circuits without building
        // error values.
        if self.validator.is_valid(doc) {
            return (Vec::new(), Vec::new());
        }
        let mut out = Vec::new();
        let mut unique = Vec::new();
        let mut secrets: Option<Vec<Vec<Segment>>> = None;
        for error in self.validator.iter_errors(doc) {
            let location = instance_segments(doc, &error);
            let secrets = secrets.get_or_insert_with(|| self.secret_locations(doc));
            // Keys and indexes are structure, never values: the path may name them.
            let inside = secrets.iter().any(|s| location.starts_with(s));
            let contains = secrets.iter().any(|s| s.starts_with(&location));
            let message = if inside || contains {
                secret_safe_message(&error, inside)
            } else {
                one_line_spaced(&error.to_string())
            };
            let path = Path(location);
            if matches!(error.kind(), ValidationErrorKind::UniqueItems) {
                unique.push(path.to_string());
            }
            out.push(SchemaError {
                side,
                path: path.to_string(),
                message,
            });
        }
        (out, unique)
    }

    /// Positional paths of every value the schema marks secret in `doc`.
    fn secret_locations(&self, doc: &Value) -> Vec<Vec<Segment>> {
        fn walk(
            schema: &Schema,
            value: &Value,
            node: NodeId,
            path: &mut Vec<Segment>,
            out: &mut Vec<Vec<Segment>>,
        ) {
            let n = schema.node(node);
            if n.secret {
                out.push(path.clone());
                return;
            }
            match value {
                Value::Object(map) => {
                    for (k, v) in map.iter() {
                        path.push(Segment::Key(k.to_owned()));
                        walk(schema, v, n.child(k), path, out);
                        path.pop();
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        path.push(Segment::Index(i as u64));
                        walk(schema, v, n.item(), path, out);
                        path.pop();
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, doc, self.root, &mut Vec::new(), &mut out);
        out
    }
}

/// The error's instance location in our path syntax, reading the document to tell
/// an object key that looks like a number from an array index.
fn instance_segments(doc: &Value, error: &ValidationError<'_>) -> Vec<Segment> {
    let mut current = Some(doc);
    let mut out = Vec::new();
    for seg in error.instance_path().segments() {
        let text = seg.to_string();
        match current {
            Some(Value::Object(map)) => {
                current = map.get(&text);
                out.push(Segment::Key(text));
            }
            Some(Value::Array(items)) => match text.parse::<u64>() {
                Ok(i) => {
                    current = usize::try_from(i).ok().and_then(|i| items.get(i));
                    out.push(Segment::Index(i));
                }
                Err(_) => {
                    current = None;
                    out.push(Segment::Key(text));
                }
            },
            _ => {
                current = None;
                out.push(match seg {
                    jsonschema::paths::LocationSegment::Index(i) => Segment::Index(i as u64),
                    jsonschema::paths::LocationSegment::Property(_) => Segment::Key(text),
                });
            }
        }
    }
    out
}

/// A message that states what is wrong without the value: `inside` when the
/// error is at or below a secret (then even key names in it are part of the secret).
fn secret_safe_message(error: &ValidationError<'_>, inside: bool) -> String {
    let keyword = error.kind().keyword().to_owned();
    match error.kind() {
        // These list names taken from the instance (keys, or a nested error's value).
        ValidationErrorKind::PropertyNames { .. } => {
            "the secret value has a property name that `propertyNames` does not allow".into()
        }
        ValidationErrorKind::AdditionalProperties { .. }
        | ValidationErrorKind::UnevaluatedProperties { .. }
            if inside =>
        {
            format!("the secret value has properties that `{keyword}` does not allow")
        }
        _ => {
            let placeholder = if inside {
                "the secret value"
            } else {
                "the value (which holds a secret)"
            };
            one_line_spaced(&error.masked_with(placeholder).to_string())
        }
    }
}

/// Address of a subschema inside the borrowed document: identity for memoising.
fn addr(v: &Value) -> usize {
    std::ptr::from_ref(v) as usize
}

struct Compiler<'a> {
    doc: &'a Value,
    anchors: HashMap<&'a str, &'a Value>,
    nodes: Vec<Node>,
    memo: HashMap<Vec<usize>, NodeId>,
    pending: Vec<(NodeId, Vec<&'a Value>)>,
}

impl<'a> Compiler<'a> {
    fn new(doc: &'a Value) -> Compiler<'a> {
        let mut anchors = HashMap::new();
        collect_anchors(doc, &mut anchors, 0);
        let mut memo = HashMap::new();
        memo.insert(Vec::new(), ANY);
        Compiler {
            doc,
            anchors,
            nodes: vec![Node::EMPTY],
            memo,
            pending: Vec::new(),
        }
    }

    fn compile_root(&mut self) -> Result<NodeId, SchemaCompileError> {
        let mut list = Vec::new();
        self.expand(self.doc, &mut Vec::new(), &mut list)?;
        let root = self.node_for(list)?;
        // A worklist, not recursion: merged subschemas can chain thousands deep.
        while let Some((id, list)) = self.pending.pop() {
            let node = self.build(&list)?;
            self.nodes[id] = node;
        }
        Ok(root)
    }

    /// Appends the subschemas `schema` merges, in order (later wins): what its
    /// `$ref` points to, then its `allOf` members, then itself.
    fn expand(
        &self,
        schema: &'a Value,
        stack: &mut Vec<usize>,
        out: &mut Vec<&'a Value>,
    ) -> Result<(), SchemaCompileError> {
        let Value::Object(map) = schema else {
            // `true`/`false` schemas carry no canonicalisation rule.
            return Ok(());
        };
        let me = addr(schema);
        if stack.contains(&me) || stack.len() >= MAX_EXPANSION_DEPTH {
            // A `$ref`/`allOf` cycle: what it would add is already being merged.
            return Ok(());
        }
        stack.push(me);
        if let Some(Value::String(reference)) = map.get("$ref") {
            let target = self.resolve(reference)?;
            self.expand(target, stack, out)?;
        }
        if let Some(Value::Array(members)) = map.get("allOf") {
            for member in members {
                self.expand(member, stack, out)?;
            }
        }
        out.push(schema);
        stack.pop();
        Ok(())
    }

    /// Resolves a local reference: `#`, a JSON pointer `#/…`, or an anchor `#name`.
    fn resolve(&self, reference: &str) -> Result<&'a Value, SchemaCompileError> {
        let unresolvable = || SchemaCompileError::UnresolvableRef(reference.to_owned());
        let fragment = reference.strip_prefix('#').ok_or_else(unresolvable)?;
        let fragment = percent_decode(fragment).ok_or_else(unresolvable)?;
        if fragment.is_empty() {
            return Ok(self.doc);
        }
        let Some(pointer) = fragment.strip_prefix('/') else {
            return self
                .anchors
                .get(fragment.as_str())
                .copied()
                .ok_or_else(unresolvable);
        };
        let mut current = self.doc;
        for raw in pointer.split('/') {
            let token = raw.replace("~1", "/").replace("~0", "~");
            current = match current {
                Value::Object(map) => map.get(&token),
                Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
            .ok_or_else(unresolvable)?;
        }
        Ok(current)
    }

    /// The node for a merged list of subschemas, created on first sight.
    fn node_for(&mut self, list: Vec<&'a Value>) -> Result<NodeId, SchemaCompileError> {
        // Keep each subschema's last occurrence only: under "later wins" that
        // changes nothing, and it keeps recursive merges from growing forever.
        let mut seen = Vec::with_capacity(list.len());
        let mut deduped: Vec<&'a Value> = Vec::with_capacity(list.len());
        for s in list.into_iter().rev() {
            if !seen.contains(&addr(s)) {
                seen.push(addr(s));
                deduped.push(s);
            }
        }
        deduped.reverse();
        seen.reverse();
        if let Some(&id) = self.memo.get(&seen) {
            return Ok(id);
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(SchemaCompileError::TooComplex);
        }
        let id = self.nodes.len();
        self.nodes.push(Node::EMPTY);
        self.memo.insert(seen, id);
        self.pending.push((id, deduped));
        Ok(id)
    }

    fn build(&mut self, list: &[&'a Value]) -> Result<Node, SchemaCompileError> {
        let mut node = Node::EMPTY;
        let mut properties: BTreeMap<&'a str, Vec<&'a Value>> = BTreeMap::new();
        let mut additional = Vec::new();
        let mut items = Vec::new();
        let mut secret_mark = false;
        let mut write_only = false;
        for schema in list {
            let Value::Object(map) = schema else { continue };
            if let Some(Value::Object(props)) = map.get("properties") {
                for (k, sub) in props.iter() {
                    self.expand(sub, &mut Vec::new(), properties.entry(k).or_default())?;
                }
            }
            if let Some(sub @ Value::Object(_)) = map.get("additionalProperties") {
                self.expand(sub, &mut Vec::new(), &mut additional)?;
            }
            if let Some(sub @ Value::Object(_)) = map.get("items") {
                self.expand(sub, &mut Vec::new(), &mut items)?;
            }
            if let Some(d) = map.get("default") {
                node.default = Some(d.clone());
            }
            if let Some(Value::Bool(b)) = map.get("x-drift-ignore") {
                node.ignore = *b;
            }
            if let Some(Value::Bool(b)) = map.get("x-drift-secret") {
                secret_mark = *b;
            }
            if let Some(Value::Bool(b)) = map.get("writeOnly") {
                write_only = *b;
            }
            if let Some(Value::Bool(b)) = map.get("uniqueItems") {
                node.unique = *b;
            }
            match map.get("x-drift-key") {
                None => {}
                Some(Value::String(k)) => node.key = Some(k.clone()),
                Some(other) => return Err(SchemaCompileError::BadDriftKey(other.type_name())),
            }
        }
        node.secret = secret_mark || write_only;
        // BTreeMap<&str> iterates in byte order, which `Node::child` searches by.
        for (k, list) in properties {
            let id = self.node_for(list)?;
            node.properties.push((k.to_owned(), id));
        }
        if !additional.is_empty() {
            node.additional = Some(self.node_for(additional)?);
        }
        if !items.is_empty() {
            node.items = Some(self.node_for(items)?);
        }
        Ok(node)
    }
}

/// `$anchor` names anywhere in the document (no `$id` scoping: one document).
fn collect_anchors<'a>(v: &'a Value, out: &mut HashMap<&'a str, &'a Value>, depth: usize) {
    if depth > crate::canon::parse_error::MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("$anchor") {
                out.entry(name.as_str()).or_insert(v);
            }
            for (_, child) in map.iter() {
                collect_anchors(child, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_anchors(child, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::parse::parse_json_value;

    fn compile(text: &str) -> Result<Schema, SchemaCompileError> {
        Schema::compile(&parse_json_value(text.as_bytes()).expect("test JSON parses"))
    }

    fn default_of(schema: &Schema, key: &str) -> Option<String> {
        let node = schema.node(schema.node(schema.root()).child(key));
        node.default.as_ref().map(Value::to_canonical_json)
    }

    #[test]
    fn refs_resolve_anchors_and_percent_encoded_pointers() {
        let s = compile(
            r##"{"$defs": {"a b": {"default": 1}, "named": {"$anchor": "usd", "default": 2}},
                "properties": {"p": {"$ref": "#/$defs/a%20b"}, "q": {"$ref": "#usd"}}}"##,
        )
        .expect("compiles");
        assert_eq!(default_of(&s, "p").as_deref(), Some("1"));
        assert_eq!(default_of(&s, "q").as_deref(), Some("2"));
    }

    #[test]
    fn recursive_all_of_merges_stay_finite() {
        // Each level merges two members that both recurse to the root: without
        // de-duplicating merged lists the node count would double per level.
        let s = compile(
            r##"{"allOf": [{"properties": {"c": {"$ref": "#"}}}, {"properties": {"c": {"$ref": "#", "default": {}}}}]}"##,
        )
        .expect("compiles");
        assert!(s.nodes.len() < 10, "{} nodes", s.nodes.len());
        let child = s.node(s.root()).child("c");
        assert_eq!(
            s.node(child).child("c"),
            child,
            "the recursion closes on itself"
        );
    }

    #[test]
    fn marks_are_read_from_merged_subschemas() {
        let s = compile(
            r##"{"$defs": {"k": {"x-drift-secret": true}},
                "properties": {"a": {"$ref": "#/$defs/k", "x-drift-ignore": true},
                               "b": {"writeOnly": true},
                               "c": {"allOf": [{"uniqueItems": true}, {"x-drift-key": "id"}]}}}"##,
        )
        .expect("compiles");
        let root = s.node(s.root());
        let a = s.node(root.child("a"));
        assert!(a.secret && a.ignore);
        assert!(s.node(root.child("b")).secret);
        let c = s.node(root.child("c"));
        assert!(c.unique && c.key.as_deref() == Some("id"));
        assert_eq!(root.child("zzz"), ANY, "unknown keys have no rule");
    }

    #[test]
    fn additional_properties_and_items_are_followed_only_when_objects() {
        let s = compile(
            r#"{"properties": {"m": {"additionalProperties": {"default": 1}}, "n": {"additionalProperties": true},
                               "l": {"items": {"default": 2}}}}"#,
        )
        .expect("compiles");
        let root = s.node(s.root());
        let m = s.node(root.child("m"));
        assert!(s.node(m.child("anything")).default.is_some());
        assert_eq!(s.node(root.child("n")).child("x"), ANY);
        assert!(s.node(s.node(root.child("l")).item()).default.is_some());
    }
}
