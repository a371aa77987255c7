//! Leaf paths (§6.3) and their order (§6.5), and the `ignore_fields` patterns that
//! use the same syntax. Pure: no I/O.
//!
//! `a.b`, `a[3]`, `per_market[id="m2"]`, `tags[="btc"]`, `a["x.y"].b`.

use std::cmp::Ordering;
use std::fmt;

use crate::canon::value::write_json_string;

/// One step of a path. The variant order is the contract's order within one
/// position: a key < an index < a keyed item < a set member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(u64),
    /// An item of an `x-drift-key` array: the key property and its value as
    /// canonical JSON.
    Keyed {
        field: String,
        value: Member,
    },
    /// A member of a `uniqueItems` set, as canonical JSON.
    Member(Member),
}

/// Canonical JSON of a key value or set member, or the token standing for a secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    Json(String),
    /// Full hex HMAC of the canonical value: ordering and equality use all of it,
    /// display shows the first 8 hex digits.
    Redacted(String),
}

impl Member {
    /// The bytes this member sorts by.
    fn sort_key(&self) -> String {
        match self {
            Member::Json(j) => j.clone(),
            Member::Redacted(_) => self.to_string(),
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::Json(j) => f.write_str(j),
            Member::Redacted(hmac) => {
                let mut s = String::new();
                write_json_string(&redaction_token(hmac), &mut s);
                f.write_str(&s)
            }
        }
    }
}

/// `<redacted:hmac-sha256:XXXXXXXX>` for a full hex HMAC.
pub fn redaction_token(hmac_hex: &str) -> String {
    format!(
        "<redacted:hmac-sha256:{}>",
        &hmac_hex[..hmac_hex.len().min(8)]
    )
}

impl Ord for Member {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Member::Json(a), Member::Json(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Member::Redacted(a), Member::Redacted(b)) => self
                .sort_key()
                .cmp(&other.sort_key())
                .then_with(|| a.cmp(b)),
            _ => self.sort_key().as_bytes().cmp(other.sort_key().as_bytes()),
        }
    }
}

impl PartialOrd for Member {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Segment {
    fn cmp(&self, other: &Self) -> Ordering {
        use Segment::*;
        fn rank(s: &Segment) -> u8 {
            match s {
                Key(_) => 0,
                Index(_) => 1,
                Keyed { .. } => 2,
                Member(_) => 3,
            }
        }
        match (self, other) {
            (Key(a), Key(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Index(a), Index(b)) => a.cmp(b),
            (
                Keyed {
                    field: fa,
                    value: va,
                },
                Keyed {
                    field: fb,
                    value: vb,
                },
            ) => va.cmp(vb).then_with(|| fa.as_bytes().cmp(fb.as_bytes())),
            (Member(a), Member(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for Segment {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A leaf's path. Lexicographic by segment, so a prefix sorts first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<Segment>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }

    pub fn child(&self, seg: Segment) -> Path {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend_from_slice(&self.0);
        v.push(seg);
        Path(v)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a key must be written `["…"]`.
fn needs_brackets(key: &str) -> bool {
    key.is_empty() || key.contains(['.', '[', ']', '"'])
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (i, seg) in self.0.iter().enumerate() {
            write_segment(seg, i == 0, &mut out);
        }
        f.write_str(&out)
    }
}

fn write_segment(seg: &Segment, first: bool, out: &mut String) {
    use std::fmt::Write;
    match seg {
        Segment::Key(k) if needs_brackets(k) => {
            out.push('[');
            write_json_string(k, out);
            out.push(']');
        }
        Segment::Key(k) => {
            if !first {
                out.push('.');
            }
            out.push_str(k);
        }
        Segment::Index(i) => {
            let _ = write!(out, "[{i}]");
        }
        Segment::Keyed { field, value } => {
            let _ = write!(out, "[{field}={value}]");
        }
        Segment::Member(m) => {
            let _ = write!(out, "[={m}]");
        }
    }
}

/// One step of an `ignore_fields` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternSegment {
    Key(String),
    Index(u64),
    Keyed {
        field: String,
        value: String,
    },
    Member(String),
    /// `[*]`: any index, key, keyed item or member.
    Any,
}

/// A parsed `ignore_fields` entry: it covers the whole subtree below what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPattern {
    text: String,
    segments: Vec<PatternSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}` is not a field path: {reason} at byte {offset}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
    pub offset: usize,
}

impl FieldPattern {
    pub fn parse(text: &str) -> Result<FieldPattern, PatternError> {
        let err = |reason, offset| PatternError {
            pattern: text.to_owned(),
            reason,
            offset,
        };
        let b = text.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        if b.is_empty() {
            return Err(err("it is empty", 0));
        }
        while i < b.len() {
            if b[i] == b'[' {
                let (seg, next) = parse_bracket(text, i).map_err(|(r, o)| err(r, o))?;
                segments.push(seg);
                i = next;
            } else {
                if !segments.is_empty() {
                    if b[i] != b'.' {
                        return Err(err("expected `.` or `[`", i));
                    }
                    i += 1;
                }
                let start = i;
                while i < b.len() && !matches!(b[i], b'.' | b'[' | b']' | b'"') {
                    i += 1;
                }
                if i == start {
                    return Err(err("expected a key", i));
                }
                segments.push(PatternSegment::Key(text[start..i].to_owned()));
                if i < b.len() && matches!(b[i], b']' | b'"') {
                    return Err(err("unexpected character", i));
                }
            }
        }
        Ok(FieldPattern {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[PatternSegment] {
        &self.segments
    }

    /// Whether `path` lies at or below what this pattern names.
    pub fn covers(&self, path: &Path) -> bool {
        self.segments.len() <= path.0.len()
            && self
                .segments
                .iter()
                .zip(&path.0)
                .all(|(p, s)| pattern_segment_matches(p, s))
    }

    /// Whether `path` is exactly what this pattern names (its first
    /// `path.len()` segments match and it has no more).
    pub fn matches_exactly(&self, path: &Path) -> bool {
        self.segments.len() == path.0.len() && self.covers(path)
    }
}

pub fn pattern_segment_matches(p: &PatternSegment, s: &Segment) -> bool {
    match (p, s) {
        (PatternSegment::Any, _) => true,
        (PatternSegment::Key(a), Segment::Key(b)) => a == b,
        (PatternSegment::Index(a), Segment::Index(b)) => a == b,
        (
            PatternSegment::Keyed { field, value },
            Segment::Keyed {
                field: f,
                value: Member::Json(v),
            },
        ) => field == f && value == v,
        (PatternSegment::Member(a), Segment::Member(Member::Json(b))) => a == b,
        _ => false,
    }
}

/// Parses one `[...]` starting at `start`; returns the segment and the index after `]`.
fn parse_bracket(
    text: &str,
    start: usize,
) -> Result<(PatternSegment, usize), (&'static str, usize)> {
    let b = text.as_bytes();
    let mut i = start + 1;
    if i >= b.len() {
        return Err(("unclosed `[`", start));
    }
    match b[i] {
        b'*' => {
            if b.get(i + 1) != Some(&b']') {
                return Err(("expected `]` after `*`", i + 1));
            }
            Ok((PatternSegment::Any, i + 2))
        }
        b'"' => {
            let (key, next) = parse_json_string(text, i)?;
            if b.get(next) != Some(&b']') {
                return Err(("expected `]` after a quoted key", next));
            }
            Ok((PatternSegment::Key(key), next + 1))
        }
        b'=' => {
            let (json, next) = scan_json_value(text, i + 1)?;
            Ok((PatternSegment::Member(json), next + 1))
        }
        c if c.is_ascii_digit() => {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if b.get(i) != Some(&b']') {
                return Err(("expected `]` after an index", i));
            }
            let n = text[s..i].parse().map_err(|_| ("index too large", s))?;
            Ok((PatternSegment::Index(n), i + 1))
        }
        _ => {
            let s = i;
            while i < b.len() && b[i] != b'=' && b[i] != b']' {
                i += 1;
            }
            if b.get(i) != Some(&b'=') || i == s {
                return Err((
                    "expected `*`, an index, `\"key\"`, `=member` or `field=value`",
                    s,
                ));
            }
            let field = text[s..i].to_owned();
            let (json, next) = scan_json_value(text, i + 1)?;
            Ok((PatternSegment::Keyed { field, value: json }, next + 1))
        }
    }
}

/// Scans a canonical JSON value up to the `]` that closes the bracket; returns the
/// value's text re-written canonically and the index of that `]`.
fn scan_json_value(text: &str, start: usize) -> Result<(String, usize), (&'static str, usize)> {
    let b = text.as_bytes();
    let mut i = start;
    let mut depth = 0usize;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' if depth == 0 => break,
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    if i >= b.len() || i == start {
        return Err(("expected a JSON value and `]`", start));
    }
    let raw = &text[start..i];
    let value = crate::canon::parse::parse_json_value(raw.as_bytes())
        .map_err(|_| ("not valid JSON", start))?;
    Ok((value.to_canonical_json(), i))
}

/// Parses a JSON string literal at `start` (a `"`); returns it and the index after it.
fn parse_json_string(text: &str, start: usize) -> Result<(String, usize), (&'static str, usize)> {
    let b = text.as_bytes();
    let mut i = start + 1;
    while i < b.len() && b[i] != b'"' {
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    if i >= b.len() {
        return Err(("unclosed string", start));
    }
    match crate::canon::parse::parse_json_value(&b[start..=i]) {
        Ok(crate::canon::value::Value::String(s)) => Ok((s, i + 1)),
        _ => Err(("bad string escape", start)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn display_escapes_keys_that_need_it() {
        let p = Path(vec![
            key("a"),
            key("x.y"),
            key("b"),
            Segment::Index(2),
            key(""),
        ]);
        assert_eq!(p.to_string(), r#"a["x.y"].b[2][""]"#);
        let p = Path(vec![
            key("per_market"),
            Segment::Keyed {
                field: "id".into(),
                value: Member::Json("\"m2\"".into()),
            },
            key("max_usd"),
        ]);
        assert_eq!(p.to_string(), r#"per_market[id="m2"].max_usd"#);
        let p = Path(vec![
            key("tags"),
            Segment::Member(Member::Json("\"btc\"".into())),
        ]);
        assert_eq!(p.to_string(), r#"tags[="btc"]"#);
        let p = Path(vec![key("q\"uote")]);
        assert_eq!(p.to_string(), r#"["q\"uote"]"#);
    }

    #[test]
    fn order_follows_the_contract() {
        let a2 = Path(vec![key("a"), Segment::Index(2)]);
        let a10 = Path(vec![key("a"), Segment::Index(10)]);
        assert!(a2 < a10);
        let abc = Path(vec![key("a"), key("b.c")]);
        let az = Path(vec![key("a"), key("z")]);
        assert!(abc < az);
        let a = Path(vec![key("a")]);
        assert!(a < az, "a prefix sorts first");
        let k = Path(vec![key("a"), key("zzz")]);
        let i = Path(vec![key("a"), Segment::Index(0)]);
        let keyed = Path(vec![
            key("a"),
            Segment::Keyed {
                field: "id".into(),
                value: Member::Json("1".into()),
            },
        ]);
        let m = Path(vec![key("a"), Segment::Member(Member::Json("0".into()))]);
        assert!(k < i && i < keyed && keyed < m);
    }

    #[test]
    fn patterns_parse_and_cover_subtrees() {
        let p = FieldPattern::parse("per_market[*].updated_at").unwrap();
        let path = Path(vec![
            key("per_market"),
            Segment::Keyed {
                field: "id".into(),
                value: Member::Json("\"m2\"".into()),
            },
            key("updated_at"),
            key("x"),
        ]);
        assert!(p.covers(&path));
        assert!(
            FieldPattern::parse("runtime.started_at")
                .unwrap()
                .covers(&Path(vec![key("runtime"), key("started_at")]))
        );
        assert!(
            !FieldPattern::parse("runtime.started_at")
                .unwrap()
                .covers(&Path(vec![key("runtime")]))
        );
        let p = FieldPattern::parse(r#"a["x.y"][id="m2"][="btc"][3]"#).unwrap();
        assert_eq!(
            p.segments(),
            &[
                PatternSegment::Key("a".into()),
                PatternSegment::Key("x.y".into()),
                PatternSegment::Keyed {
                    field: "id".into(),
                    value: "\"m2\"".into()
                },
                PatternSegment::Member("\"btc\"".into()),
                PatternSegment::Index(3),
            ]
        );
        assert_eq!(
            FieldPattern::parse("a[id=7.0]").unwrap().segments()[1],
            PatternSegment::Keyed {
                field: "id".into(),
                value: "7".into()
            }
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "", "a..b", "a[", "a[x]", "a]", "a[1", ".a", "a.", "a[=]", "a[*", "a[=\"x]",
        ] {
            assert!(FieldPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
