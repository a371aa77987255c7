//! YAML 1.2 (core schema) → [`Value`], built from saphyr-parser's events so scalars
//! keep their exact text: `0.1` here is the same decimal as `0.1` in JSON.
//!
//! Owns the YAML half of the validity rules (§4): one document, core tags only,
//! merge keys `<<`, non-string scalar keys taken as their text, duplicate keys
//! refused, nesting ≤ 128, and alias expansion bounded by `max_bytes` so an alias
//! bomb is an error, never a hang. Pure: no I/O; must never panic on any input.
//!
//! Decisions the contract leaves open:
//! - A key is the text of its scalar as written, whatever it resolves to: `1: a`
//!   has key `"1"`, `true: x` has `"true"`, `~: x` has `"~"`, `null: x` has
//!   `"null"`, and an empty key has `""`. So `1` and `"1"` as keys collide.
//! - `<<` is a merge key only as a plain untagged scalar; `"<<"` is an ordinary key.
//!
//! This file is the loader (events → tree: keys, merges, anchors and aliases,
//! depth, the expansion bound); what a scalar or tag means is `yaml/scalar.rs`'s,
//! with the decisions about tags and non-finite numbers.

mod scalar;

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::parse_error::{MAX_DEPTH, ParseError, ParseLimits, Position};
use super::value::{DuplicateKey, Map, Value};
use crate::text::{excerpt, one_line_clipped};
use scalar::{CoreTag, core_tag, resolve_scalar, tag_mismatch, tag_name};

/// Charged per node on top of its scalar text when an alias is expanded, so that a
/// bomb made of empty nodes is bounded as well as one made of long strings.
const NODE_COST: u64 = 8;

/// Parses a YAML stream holding exactly one document, of any root type.
pub(crate) fn parse_yaml(text: &str, limits: &ParseLimits) -> Result<Value, ParseError> {
    let mut builder = Builder {
        frames: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        expanded: 0,
        limit: limits.max_bytes,
    };
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(scan_error)?;
        let at = position(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ParseError::MultipleDocuments { at });
                }
            }
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::Scalar(value, style, anchor, tag) => {
                builder.scalar(&value, style, anchor, tag.as_deref(), at)?;
            }
            Event::Alias(id) => builder.alias(id, at)?,
            Event::SequenceStart(anchor, tag) => {
                builder.start(Kind::Sequence, anchor, tag.as_deref(), at)?;
            }
            Event::MappingStart(anchor, tag) => {
                builder.start(Kind::Mapping, anchor, tag.as_deref(), at)?;
            }
            Event::SequenceEnd | Event::MappingEnd => builder.end()?,
        }
    }
    builder.root.map(|node| node.value).ok_or(ParseError::Empty)
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn scan_error(e: ScanError) -> ParseError {
    let at = Position {
        line: e.marker().line(),
        column: e.marker().col() + 1,
    };
    // The scanner refuses deep flow nesting on its own before we see the events.
    if e.info().contains("recursion limit") {
        return ParseError::TooDeep { at };
    }
    ParseError::Syntax {
        at: Some(at),
        format: "YAML",
        message: one_line_clipped(e.info()),
    }
}

/// A finished node: its value, how many containers deep it goes (0 for a scalar),
/// and what it costs when an alias repeats it.
#[derive(Clone)]
struct Node {
    value: Value,
    height: usize,
    size: u64,
}

struct Anchored {
    /// An error for a scalar that is valid as a key but not as a value (`.nan`), so
    /// that it is refused only where an alias uses it as a value.
    node: Result<Node, ParseError>,
    /// A scalar's text, for when an alias is used as a key.
    key_text: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Sequence,
    Mapping,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sequence => "sequence",
            Kind::Mapping => "mapping",
        }
    }
}

enum Key {
    Text(String, Position),
    Merge(Position),
}

enum Body {
    Sequence(Vec<Value>),
    Mapping {
        entries: Vec<(String, Value, Position)>,
        merges: Vec<Map>,
        /// Whether a `<<` key was seen: a second one is a duplicate key.
        merge_seen: bool,
        key: Option<Key>,
    },
}

/// An open container.
struct Frame {
    anchor: usize,
    /// Height of the tallest child so far.
    height: usize,
    size: u64,
    at: Position,
    body: Body,
}

struct Builder {
    frames: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    root: Option<Node>,
    /// Total size of alias expansions so far.
    expanded: u64,
    limit: u64,
}

impl Builder {
    fn expecting_key(&self) -> bool {
        matches!(
            self.frames.last(),
            Some(Frame {
                body: Body::Mapping { key: None, .. },
                ..
            })
        )
    }

    fn set_key(&mut self, key: Key, size: u64) {
        if let Some(frame) = self.frames.last_mut() {
            frame.size = frame.size.saturating_add(size);
            if let Body::Mapping { key: slot, .. } = &mut frame.body {
                *slot = Some(key);
            }
        }
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        at: Position,
    ) -> Result<(), ParseError> {
        let size = (text.len() as u64).saturating_add(NODE_COST);
        if self.expecting_key() {
            // Keys are taken as their text, so only the tag is checked here.
            if let Some(tag) = tag {
                match core_tag(tag, at)? {
                    CoreTag::Map | CoreTag::Sequence => {
                        return Err(tag_mismatch(tag_name(tag), text, at));
                    }
                    _ => {}
                }
            }
            if anchor != 0 {
                let node = resolve_scalar(text, style, tag, at).map(|value| Node {
                    value,
                    height: 0,
                    size,
                });
                self.anchors.insert(
                    anchor,
                    Anchored {
                        node,
                        key_text: Some(text.to_owned()),
                    },
                );
            }
            let key = if style == ScalarStyle::Plain && tag.is_none() && text == "<<" {
                Key::Merge(at)
            } else {
                Key::Text(text.to_owned(), at)
            };
            self.set_key(key, size);
            return Ok(());
        }
        let node = Node {
            value: resolve_scalar(text, style, tag, at)?,
            height: 0,
            size,
        };
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    node: Ok(node.clone()),
                    key_text: Some(text.to_owned()),
                },
            );
        }
        self.deliver(node, at)
    }

    fn alias(&mut self, id: usize, at: Position) -> Result<(), ParseError> {
        // The parser only hands out ids of anchors it has seen, so a missing one is
        // an anchor whose node is still open: the alias sits inside its own target.
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(ParseError::RecursiveAlias { at });
        };
        let size = match &anchored.node {
            Ok(node) => node.size,
            Err(_) => anchored
                .key_text
                .as_ref()
                .map_or(NODE_COST, |t| t.len() as u64 + NODE_COST),
        };
        self.expanded = self.expanded.saturating_add(size);
        if self.expanded > self.limit {
            return Err(ParseError::AliasExpansion {
                at,
                limit: self.limit,
            });
        }
        if self.expecting_key() {
            let Some(text) = anchored.key_text.clone() else {
                let kind = match anchored.node.as_ref().map(|n| &n.value) {
                    Ok(Value::Array(_)) => "sequence",
                    _ => "mapping",
                };
                return Err(ParseError::ComplexKey { at, kind });
            };
            self.set_key(Key::Text(text, at), size);
            return Ok(());
        }
        let node = anchored.node.clone()?;
        self.deliver(node, at)
    }

    fn start(
        &mut self,
        kind: Kind,
        anchor: usize,
        tag: Option<&Tag>,
        at: Position,
    ) -> Result<(), ParseError> {
        if self.expecting_key() {
            return Err(ParseError::ComplexKey {
                at,
                kind: kind.name(),
            });
        }
        if let Some(tag) = tag {
            let matches = matches!(
                (core_tag(tag, at)?, kind),
                (CoreTag::Map, Kind::Mapping)
                    | (CoreTag::Sequence, Kind::Sequence)
                    | (CoreTag::NonSpecific, _)
            );
            if !matches {
                return Err(tag_mismatch(tag_name(tag), kind.name(), at));
            }
        }
        if self.frames.len() + 1 > MAX_DEPTH {
            return Err(ParseError::TooDeep { at });
        }
        let body = match kind {
            Kind::Sequence => Body::Sequence(Vec::new()),
            Kind::Mapping => Body::Mapping {
                entries: Vec::new(),
                merges: Vec::new(),
                merge_seen: false,
                key: None,
            },
        };
        self.frames.push(Frame {
            anchor,
            height: 0,
            size: NODE_COST,
            at,
            body,
        });
        Ok(())
    }

    fn end(&mut self) -> Result<(), ParseError> {
        let Some(frame) = self.frames.pop() else {
            return Ok(());
        };
        let value = match frame.body {
            Body::Sequence(items) => Value::Array(items),
            Body::Mapping {
                entries, merges, ..
            } => Value::Object(build_mapping(entries, merges, frame.at)?),
        };
        let node = Node {
            value,
            height: frame.height + 1,
            size: frame.size,
        };
        if frame.anchor != 0 {
            self.anchors.insert(
                frame.anchor,
                Anchored {
                    node: Ok(node.clone()),
                    key_text: None,
                },
            );
        }
        self.deliver(node, frame.at)
    }

    /// Hands a finished node to the open container (or makes it the root).
    fn deliver(&mut self, node: Node, at: Position) -> Result<(), ParseError> {
        let depth = self.frames.len();
        let Some(frame) = self.frames.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.size = frame.size.saturating_add(node.size);
        // How tall the node stands inside this container: a merged mapping adds
        // its entries, not itself, so it stands one level shorter.
        let child_height = match &mut frame.body {
            Body::Sequence(items) => {
                check_depth(depth, node.height, at)?;
                items.push(node.value);
                node.height
            }
            Body::Mapping {
                entries,
                merges,
                merge_seen,
                key,
            } => match key.take() {
                Some(Key::Text(k, key_at)) => {
                    check_depth(depth, node.height, at)?;
                    entries.push((k, node.value, key_at));
                    node.height
                }
                Some(Key::Merge(merge_at)) if *merge_seen => {
                    return Err(ParseError::DuplicateKey {
                        at: merge_at,
                        key: "<<".into(),
                    });
                }
                Some(Key::Merge(merge_at)) => match node.value {
                    Value::Object(map) => {
                        *merge_seen = true;
                        let h = node.height.saturating_sub(1);
                        check_depth(depth, h, at)?;
                        merges.push(map);
                        h
                    }
                    Value::Array(items) => {
                        *merge_seen = true;
                        let h = node.height.saturating_sub(2);
                        check_depth(depth, h, at)?;
                        for item in items {
                            match item {
                                Value::Object(map) => merges.push(map),
                                _ => return Err(ParseError::BadMerge { at: merge_at }),
                            }
                        }
                        h
                    }
                    _ => return Err(ParseError::BadMerge { at: merge_at }),
                },
                // Unreachable: a node arriving where a key is expected has been
                // turned into a key (scalars) or refused (containers) already.
                None => {
                    return Err(ParseError::ComplexKey {
                        at,
                        kind: "mapping",
                    });
                }
            },
        };
        frame.height = frame.height.max(child_height);
        Ok(())
    }
}

fn check_depth(
    container_depth: usize,
    child_height: usize,
    at: Position,
) -> Result<(), ParseError> {
    if container_depth + child_height > MAX_DEPTH {
        return Err(ParseError::TooDeep { at });
    }
    Ok(())
}

/// Explicit keys first (a repeated one is an error), then merged mappings in
/// order, each adding only keys not already there: explicit keys win over merged
/// ones and earlier merged mappings over later ones.
fn build_mapping(
    mut entries: Vec<(String, Value, Position)>,
    merges: Vec<Map>,
    at: Position,
) -> Result<Map, ParseError> {
    // Stable, so of two equal keys the later in the document comes second.
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ParseError::DuplicateKey {
            at: w[1].2,
            key: excerpt(&w[1].0),
        });
    }
    let explicit: Vec<(String, Value)> = entries.into_iter().map(|(k, v, _)| (k, v)).collect();
    let mut merged = Vec::new();
    let mut merged_keys = HashSet::new();
    for map in &merges {
        for (k, v) in map.iter() {
            let is_explicit = explicit
                .binary_search_by(|(e, _)| e.as_bytes().cmp(k.as_bytes()))
                .is_ok();
            if !is_explicit && merged_keys.insert(k) {
                merged.push((k.to_owned(), v.clone()));
            }
        }
    }
    let mut all = explicit;
    all.extend(merged);
    Map::from_entries(all).map_err(|DuplicateKey(key)| ParseError::DuplicateKey {
        at,
        key: excerpt(&key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::Format;
    use crate::canon::number::Decimal;
    use crate::canon::parse::parse_document;

    fn yaml(s: &str) -> Result<Value, ParseError> {
        parse_yaml(s, &ParseLimits::default())
    }

    fn doc(s: &str) -> Result<Value, ParseError> {
        parse_document(s.as_bytes(), Format::Yaml, &ParseLimits::default())
    }

    fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
        v.as_object()
            .and_then(|m| m.get(key))
            .unwrap_or_else(|| panic!("no key {key} in {v:?}"))
    }

    fn num(s: &str) -> Value {
        Value::Number(Decimal::parse(s).unwrap())
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn core_schema_resolves_plain_scalars() {
        let v = yaml(
            "n1: null\nn2: Null\nn3: NULL\nn4: ~\nn5:\n\
             b1: true\nb2: True\nb3: TRUE\nb4: false\nb5: False\nb6: FALSE\n\
             i1: 42\ni2: -17\ni3: +5\ni4: 0o17\ni5: 0x1F\ni6: 007\n\
             f1: 1.5\nf2: -.5\nf3: 1e3\nf4: 2.\nf5: +1.25E-2\n",
        )
        .unwrap();
        for k in ["n1", "n2", "n3", "n4", "n5"] {
            assert_eq!(get(&v, k), &Value::Null, "{k}");
        }
        for k in ["b1", "b2", "b3"] {
            assert_eq!(get(&v, k), &Value::Bool(true), "{k}");
        }
        for k in ["b4", "b5", "b6"] {
            assert_eq!(get(&v, k), &Value::Bool(false), "{k}");
        }
        assert_eq!(get(&v, "i1"), &num("42"));
        assert_eq!(get(&v, "i2"), &num("-17"));
        assert_eq!(get(&v, "i3"), &num("5"));
        assert_eq!(get(&v, "i4"), &num("15"));
        assert_eq!(get(&v, "i5"), &num("31"));
        assert_eq!(get(&v, "i6"), &num("7"));
        assert_eq!(get(&v, "f1"), &num("1.5"));
        assert_eq!(get(&v, "f2"), &num("-0.5"));
        assert_eq!(get(&v, "f3"), &num("1000"));
        assert_eq!(get(&v, "f4"), &num("2"));
        assert_eq!(get(&v, "f5"), &num("0.0125"));
    }

    #[test]
    fn yaml_1_1_booleans_and_other_text_are_strings() {
        let v = yaml(
            "a: yes\nb: on\nc: no\nd: off\ne: Yes\nf: y\ng: tRue\nh: 1_000\ni: 0b101\nj: 0O17\nk: 1:30\nl: -.nan\nm: 0x\n",
        )
        .unwrap();
        for (k, text) in [
            ("a", "yes"),
            ("b", "on"),
            ("c", "no"),
            ("d", "off"),
            ("e", "Yes"),
            ("f", "y"),
            ("g", "tRue"),
            ("h", "1_000"),
            ("i", "0b101"),
            ("j", "0O17"),
            ("k", "1:30"),
            ("l", "-.nan"),
            ("m", "0x"),
        ] {
            assert_eq!(get(&v, k), &s(text), "{k}");
        }
    }

    #[test]
    fn quoted_and_block_scalars_are_always_strings() {
        let v = yaml("a: '1'\nb: \"true\"\nc: 'null'\nd: |\n  12\ne: \"\"\n").unwrap();
        assert_eq!(get(&v, "a"), &s("1"));
        assert_eq!(get(&v, "b"), &s("true"));
        assert_eq!(get(&v, "c"), &s("null"));
        assert_eq!(get(&v, "d"), &s("12\n"));
        assert_eq!(get(&v, "e"), &s(""));
    }

    #[test]
    fn numbers_are_exact_decimals() {
        let v = yaml("a: 0.1\nb: 9007199254740993\nc: 10.0\nd: 1e1\n").unwrap();
        assert_eq!(
            get(&v, "a"),
            &Value::Number(Decimal::from_f64(0.1).unwrap())
        );
        assert_eq!(get(&v, "b"), &num("9007199254740993"));
        assert_ne!(get(&v, "b"), &num("9007199254740992"));
        assert_eq!(get(&v, "c"), get(&v, "d"));
    }

    #[test]
    fn infinities_nans_and_huge_numbers_are_refused() {
        for bad in [
            "a: .inf",
            "a: -.inf",
            "a: +.Inf",
            "a: .INF",
            "a: .nan",
            "a: .NaN",
            "a: .NAN",
            "a: !!float .inf",
        ] {
            assert!(
                matches!(yaml(bad), Err(ParseError::NotFinite { .. })),
                "{bad}: {:?}",
                yaml(bad)
            );
        }
        assert!(matches!(
            yaml("a: 1e309"),
            Err(ParseError::NumberOutOfRange { .. })
        ));
        assert!(matches!(
            yaml(&format!("a: 0x1{}", "0".repeat(300))),
            Err(ParseError::NumberOutOfRange { .. })
        ));
    }

    #[test]
    fn large_hex_and_octal_are_converted_exactly() {
        let v =
            yaml("a: 0xFFFFFFFFFFFFFFFFFFFF\nb: 0o7777777777777777777777777\nc: 0x000\n").unwrap();
        assert_eq!(get(&v, "a"), &num("1208925819614629174706175"));
        assert_eq!(get(&v, "b"), &num("37778931862957161709567"));
        assert_eq!(get(&v, "c"), &num("0"));
    }

    #[test]
    fn the_non_specific_tag_makes_a_scalar_a_string() {
        let v = yaml("a: ! 12\nb: ! true\nc: ! {x: 1}\nd: ! [1]\n! 7: k\n").unwrap();
        assert_eq!(get(&v, "a"), &s("12"));
        assert_eq!(get(&v, "b"), &s("true"));
        assert_eq!(get(get(&v, "c"), "x"), &num("1"));
        assert_eq!(get(&v, "d"), &Value::Array(vec![num("1")]));
        assert_eq!(get(&v, "7"), &s("k"));
    }

    #[test]
    fn core_tags_are_honoured_and_others_refused() {
        let v = yaml(
            "a: !!str 12\nb: !!int \"12\"\nc: !!float 3\nd: !!bool 'true'\ne: !!null ''\nf: !!map {x: 1}\ng: !!seq [1]\nh: !<tag:yaml.org,2002:int> 5\n",
        )
        .unwrap();
        assert_eq!(get(&v, "a"), &s("12"));
        assert_eq!(get(&v, "b"), &num("12"));
        assert_eq!(get(&v, "c"), &num("3"));
        assert_eq!(get(&v, "d"), &Value::Bool(true));
        assert_eq!(get(&v, "e"), &Value::Null);
        assert_eq!(get(&v, "g"), &Value::Array(vec![num("1")]));
        assert_eq!(get(&v, "h"), &num("5"));
        for bad in [
            "a: !foo x",
            "a: !!binary aGVsbG8=",
            "a: !!timestamp 2001-12-14",
            "a: !!set {x: null}",
            "a: !!python/object x",
        ] {
            assert!(
                matches!(yaml(bad), Err(ParseError::UnsupportedTag { .. })),
                "{bad}: {:?}",
                yaml(bad)
            );
        }
        for bad in [
            "a: !!int abc",
            "a: !!bool yes",
            "a: !!null x",
            "a: !!float x",
            "a: !!map [1]",
            "a: !!seq {x: 1}",
            "a: !!map x",
        ] {
            assert!(
                matches!(yaml(bad), Err(ParseError::TagMismatch { .. })),
                "{bad}: {:?}",
                yaml(bad)
            );
        }
        let e = yaml("a: !!binary x").unwrap_err();
        assert!(e.to_string().contains("`!!binary`"), "{e}");
    }

    #[test]
    fn exactly_one_document() {
        assert!(matches!(
            yaml("a: 1\n---\nb: 2\n"),
            Err(ParseError::MultipleDocuments { .. })
        ));
        assert!(matches!(
            yaml("---\na: 1\n...\n---\nb: 2\n"),
            Err(ParseError::MultipleDocuments { .. })
        ));
        assert!(yaml("---\na: 1\n...\n").is_ok());
        assert_eq!(yaml(""), Err(ParseError::Empty));
        assert_eq!(yaml("# only a comment\n"), Err(ParseError::Empty));
        assert_eq!(
            doc("---\n"),
            Err(ParseError::RootNotObject { found: "null" })
        );
        assert_eq!(
            doc("- 1\n"),
            Err(ParseError::RootNotObject { found: "array" })
        );
    }

    #[test]
    fn merge_keys_are_honoured_with_explicit_keys_winning() {
        let v = yaml(
            "base: &base {a: 1, b: 2}\n\
             other: &other {b: 20, c: 30}\n\
             one:\n  <<: *base\n  b: 3\n\
             many:\n  <<: [*base, *other]\n  d: 4\n\
             inline:\n  a: 0\n  <<: {a: 9, z: 26}\n",
        )
        .unwrap();
        let one = get(&v, "one");
        assert_eq!(get(one, "a"), &num("1"));
        assert_eq!(get(one, "b"), &num("3"));
        assert!(one.as_object().unwrap().get("<<").is_none());
        let many = get(&v, "many");
        assert_eq!(get(many, "a"), &num("1"));
        assert_eq!(get(many, "b"), &num("2"), "earlier merged mapping wins");
        assert_eq!(get(many, "c"), &num("30"));
        assert_eq!(get(many, "d"), &num("4"));
        let inline = get(&v, "inline");
        assert_eq!(
            get(inline, "a"),
            &num("0"),
            "explicit key wins even before `<<`"
        );
        assert_eq!(get(inline, "z"), &num("26"));
    }

    #[test]
    fn quoted_merge_key_is_an_ordinary_key() {
        let v = yaml("'<<': {a: 1}\n").unwrap();
        assert_eq!(get(get(&v, "<<"), "a"), &num("1"));
    }

    #[test]
    fn merge_of_a_non_mapping_is_refused() {
        for bad in [
            "a:\n  <<: 1\n",
            "a:\n  <<: [1]\n",
            "a:\n  <<: [{x: 1}, 2]\n",
        ] {
            assert!(
                matches!(yaml(bad), Err(ParseError::BadMerge { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn scalar_keys_are_taken_as_their_text() {
        let v = yaml("1: a\ntrue: b\n~: c\nnull: d\n1.50: e\n0x10: f\n? \n: g\n").unwrap();
        assert_eq!(get(&v, "1"), &s("a"));
        assert_eq!(get(&v, "true"), &s("b"));
        assert_eq!(get(&v, "~"), &s("c"));
        assert_eq!(get(&v, "null"), &s("d"));
        assert_eq!(get(&v, "1.50"), &s("e"));
        assert_eq!(get(&v, "0x10"), &s("f"));
        assert_eq!(get(&v, ""), &s("g"));
        // Valid as a key's text even though it would be refused as a value.
        assert!(yaml(".nan: x\n1e999: y\n").is_ok());
    }

    #[test]
    fn complex_keys_are_refused() {
        for bad in ["? [1, 2]\n: x\n", "? {a: 1}\n: x\n", "a: &s [1]\n*s : x\n"] {
            assert!(
                matches!(yaml(bad), Err(ParseError::ComplexKey { .. })),
                "{bad}: {:?}",
                yaml(bad)
            );
        }
    }

    #[test]
    fn duplicate_keys_are_refused_after_resolving_to_text() {
        let e = yaml("a: 1\nb:\n  x: 1\n  x: 2\n").unwrap_err();
        assert_eq!(
            e,
            ParseError::DuplicateKey {
                at: Position { line: 4, column: 3 },
                key: "x".into()
            }
        );
        assert_eq!(e.to_string(), "line 4, column 3: duplicate key `x`");
        for bad in [
            "1: a\n'1': b\n",
            "a: 1\n\"a\": 2\n",
            "<<: {a: 1}\n<<: {b: 2}\n",
        ] {
            assert!(
                matches!(yaml(bad), Err(ParseError::DuplicateKey { .. })),
                "{bad}"
            );
        }
        // A merged key equal to an explicit one is not a duplicate.
        assert!(yaml("b: &b {a: 1}\nc:\n  <<: *b\n  a: 2\n").is_ok());
    }

    #[test]
    fn aliases_expand_to_copies() {
        let v = yaml("a: &x {k: [1, 2]}\nb: *x\nc: &s hello\nd: *s\n*s : key\n").unwrap();
        assert_eq!(get(&v, "a"), get(&v, "b"));
        assert_eq!(get(&v, "d"), &s("hello"));
        assert_eq!(get(&v, "hello"), &s("key"));
    }

    #[test]
    fn alias_inside_its_own_anchor_is_refused() {
        assert!(yaml("a: &x [1, *x]\n").is_err());
    }

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut bomb = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..=9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let e = doc(&bomb).unwrap_err();
        assert!(matches!(e, ParseError::AliasExpansion { .. }), "{e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn empty_node_bombs_are_bounded_too() {
        let mut bomb = String::from("a0: &a0 [[],[],[],[],[],[],[],[],[],[]]\n");
        for i in 1..=12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        assert!(matches!(
            yaml(&bomb),
            Err(ParseError::AliasExpansion { .. })
        ));
    }

    #[test]
    fn modest_alias_use_fits_the_budget() {
        let limits = ParseLimits { max_bytes: 200 };
        let small = "a: &x {k: v}\nb: *x\nc: *x\n";
        assert!(parse_yaml(small, &limits).is_ok());
        let many: String =
            std::iter::once("a: &x \"0123456789012345678901234567890123456789\"\n".to_owned())
                .chain((0..10).map(|i| format!("b{i}: *x\n")))
                .collect();
        assert!(matches!(
            parse_yaml(&many, &limits),
            Err(ParseError::AliasExpansion { .. })
        ));
    }

    #[test]
    fn nesting_deeper_than_128_is_refused() {
        let flow = |n: usize| format!("a: {}{}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(yaml(&flow(MAX_DEPTH)).is_ok());
        assert!(matches!(
            yaml(&flow(MAX_DEPTH + 1)),
            Err(ParseError::TooDeep { .. })
        ));
        let block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(matches!(yaml(&block), Err(ParseError::TooDeep { .. })));
        let huge = format!("a: {}", "[".repeat(100_000));
        assert!(matches!(yaml(&huge), Err(ParseError::TooDeep { .. })));
    }

    #[test]
    fn aliases_cannot_smuggle_nesting_past_128() {
        let inner = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let doc = format!(
            "a: &x {inner}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
        );
        assert!(matches!(yaml(&doc), Err(ParseError::TooDeep { .. })));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let e = yaml("a: 1\n  b: 2\n").unwrap_err();
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
        assert!(e.to_string().starts_with("line 2, column"), "{e}");
    }

    #[test]
    fn byte_order_mark_is_accepted_in_yaml() {
        assert_eq!(get(&doc("\u{feff}a: 1\n").unwrap(), "a"), &num("1"));
    }
}
