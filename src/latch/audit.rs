//! The admin audit log's hash chain (§10, §12): what an entry holds, how an
//! entry links to the one before it, and how a stored chain is verified.
//!
//! Each entry is stored in `envelope.rs`'s sealed envelope
//! `{"v":1,"sha256":H,"data":ENTRY}`; `H`, the SHA-256 of the entry's exact
//! bytes, is the entry's hash, and the next entry's `prev` holds it (the first
//! entry's `prev` is [`GENESIS`]). So one changed byte anywhere breaks either the
//! entry's own checksum or its successor's link, and verification names the first
//! entry that does not hold. Pure: the store hands the raw stored entries in
//! key order; no I/O, no clock.
//!
//! Retention (`audit_retention_days`) removes a prefix of the chain and keeps
//! an [`Anchor`]: the number and hash of the last entry removed, from which the
//! rest still verifies. Only entries that verify are ever removed, so pruning
//! cannot launder a damaged entry; and the anchor is also emitted as a log
//! record when it is set, so a copy of it lives outside the database.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::envelope::{open_envelope, seal_bytes};

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an admin (or a denied caller) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    AckRequest,
    AckApprove,
    Clear,
    Pause,
    Resume,
    Check,
    /// Refused requests (401/403) from one source within one minute, counted.
    Denied,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AckRequest => "ack_request",
            AuditAction::AckApprove => "ack_approve",
            AuditAction::Clear => "clear",
            AuditAction::Pause => "pause",
            AuditAction::Resume => "resume",
            AuditAction::Check => "check",
            AuditAction::Denied => "denied",
        }
    }
}

/// An entry before it is chained: what happened, by whom, from where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub at_ms: i64,
    pub action: AuditAction,
    /// The token's name; empty for denied requests (no identity was proven).
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client's IP address.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Facts particular to the action (a check's result, a pause's end, a
    /// denied count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// A chained entry, as stored and as `GET /api/v1/audit` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … with no gap; also the entry's key.
    pub seq: u64,
    /// The hash of entry `seq - 1` ([`GENESIS`] for the first).
    pub prev: String,
    #[serde(flatten)]
    pub draft: AuditDraft,
}

/// The hash of an entry's stored bytes (hex SHA-256).
pub fn hash(entry_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(entry_bytes))
}

/// The chain's end: the last entry's number (0 when empty) and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    pub fn empty() -> Head {
        Head {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }

    /// The entry that follows this head.
    pub fn next(&self, draft: AuditDraft) -> AuditEntry {
        AuditEntry {
            seq: self.seq + 1,
            prev: self.hash.clone(),
            draft,
        }
    }
}

/// Where a pruned chain starts: the last removed entry's number and hash, and
/// when that entry was written and when it was removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
    pub at_ms: i64,
    pub pruned_at_ms: i64,
}

impl Anchor {
    fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Where a walk starts: after the anchor, or at the genesis.
pub fn start(anchor: Option<&Anchor>) -> Head {
    anchor.map_or_else(Head::empty, Anchor::head)
}

/// One stored entry as read back: its key and its stored value.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// The key of entry `seq`: big-endian, so sled's order is the chain's order.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The outcome of walking a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Intact {
        /// Entries stored (after the anchor, if any).
        entries: u64,
        head: String,
        /// The last entry removed by retention; the walk started from its anchor.
        #[serde(skip_serializing_if = "Option::is_none")]
        pruned_through: Option<u64>,
    },
    Broken {
        /// The first entry that does not hold.
        entry: u64,
        problem: String,
        /// Entries before it that did (after the anchor, if any).
        intact_before: u64,
    },
}

/// Checks one stored entry against the head before it: the entry and the head
/// it makes, or the entry's number and what is wrong with it.
fn step(head: &Head, raw: &RawEntry) -> Result<(AuditEntry, Head), (u64, String)> {
    let expected = head.seq + 1;
    let Ok(key) = <[u8; 8]>::try_from(raw.key.as_slice()) else {
        return Err((
            expected,
            "a record with a malformed key sits in its place".into(),
        ));
    };
    let seq = u64::from_be_bytes(key);
    if seq != expected {
        return Err((
            expected,
            format!("it is missing (entry {seq} follows entry {})", head.seq),
        ));
    }
    let data = open_envelope(&raw.value).map_err(|problem| (seq, problem))?;
    // Every stored byte counts, the envelope's too: an entry is exactly the
    // sealed form of its data.
    if seal_bytes(data.as_bytes()) != raw.value {
        return Err((seq, "its envelope was altered".into()));
    }
    let entry: AuditEntry =
        serde_json::from_str(data).map_err(|e| (seq, format!("its data does not parse ({e})")))?;
    if entry.seq != seq {
        return Err((seq, format!("it says it is entry {}", entry.seq)));
    }
    if entry.prev != head.hash {
        return Err((
            seq,
            format!(
                "it does not link to entry {} (its prev hash differs)",
                head.seq
            ),
        ));
    }
    let next = Head {
        seq,
        hash: hash(data.as_bytes()),
    };
    Ok((entry, next))
}

/// Walks `entries` (in key order) from the anchor, or the genesis without one,
/// and names the first entry whose bytes, number or link to its predecessor do
/// not hold.
pub fn verify(anchor: Option<&Anchor>, entries: impl IntoIterator<Item = RawEntry>) -> Verdict {
    let mut head = start(anchor);
    let from = head.seq;
    for raw in entries {
        match step(&head, &raw) {
            Ok((_, next)) => head = next,
            Err((entry, problem)) => {
                return Verdict::Broken {
                    entry,
                    problem,
                    intact_before: head.seq - from,
                };
            }
        }
    }
    Verdict::Intact {
        entries: head.seq - from,
        head: head.hash,
        pruned_through: anchor.map(|a| a.seq),
    }
}

/// The anchor after removing every entry written before `cutoff_ms`: the
/// longest prefix of such entries that verifies from the current anchor (a
/// damaged entry and all after it stay, for `audit verify` to name). `None`
/// when nothing is to go.
pub fn prune_point(
    anchor: Option<&Anchor>,
    entries: impl IntoIterator<Item = RawEntry>,
    cutoff_ms: i64,
    now_ms: i64,
) -> Option<Anchor> {
    let mut head = start(anchor);
    let mut last: Option<Anchor> = None;
    for raw in entries {
        let Ok((entry, next)) = step(&head, &raw) else {
            break;
        };
        if entry.draft.at_ms >= cutoff_ms {
            break;
        }
        last = Some(Anchor {
            seq: next.seq,
            hash: next.hash.clone(),
            at_ms: entry.draft.at_ms,
            pruned_at_ms: now_ms,
        });
        head = next;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(i: i64) -> AuditDraft {
        AuditDraft {
            at_ms: i,
            action: AuditAction::Pause,
            actor: "alice".into(),
            role: Some("admin".into()),
            source: "127.0.0.1".into(),
            bot_slug: None,
            ack_id: None,
            reason: Some(format!("window {i}")),
            detail: None,
        }
    }

    fn chain(n: u64) -> Vec<RawEntry> {
        let mut head = Head::empty();
        let mut out = Vec::new();
        for i in 0..n {
            let entry = head.next(draft(i as i64));
            let data = serde_json::to_vec(&entry).unwrap();
            head = Head {
                seq: entry.seq,
                hash: hash(&data),
            };
            out.push(RawEntry {
                key: key(entry.seq).to_vec(),
                value: seal_bytes(&data),
            });
        }
        out
    }

    #[test]
    fn an_untouched_chain_is_intact_with_its_head() {
        let entries = chain(4);
        let Verdict::Intact {
            entries: n, head, ..
        } = verify(None, entries.clone())
        else {
            panic!("intact expected");
        };
        assert_eq!(n, 4);
        let last = open_envelope(&entries[3].value).unwrap();
        assert_eq!(head, hash(last.as_bytes()));
        assert_eq!(
            verify(None, Vec::new()),
            Verdict::Intact {
                entries: 0,
                head: GENESIS.into(),
                pruned_through: None,
            }
        );
    }

    #[test]
    fn any_flipped_byte_names_that_entry_or_its_successor() {
        let entries = chain(3);
        for i in 0..entries[1].value.len() {
            let mut bad = entries.clone();
            bad[1].value[i] ^= if i % 2 == 0 { 0x01 } else { 0x20 };
            match verify(None, bad) {
                Verdict::Broken {
                    entry,
                    intact_before,
                    ..
                } => {
                    assert_eq!(entry, 2, "flip at byte {i}");
                    assert_eq!(intact_before, 1);
                }
                Verdict::Intact { .. } => panic!("flip at byte {i} went unnoticed"),
            }
        }
    }

    #[test]
    fn a_rewritten_entry_with_a_fresh_checksum_breaks_the_next_link() {
        let mut entries = chain(3);
        let mut forged: AuditEntry =
            serde_json::from_str(open_envelope(&entries[1].value).unwrap()).unwrap();
        forged.draft.reason = Some("nothing to see".into());
        entries[1].value = seal_bytes(&serde_json::to_vec(&forged).unwrap());
        let Verdict::Broken { entry, problem, .. } = verify(None, entries) else {
            panic!("broken expected");
        };
        assert_eq!(entry, 3);
        assert!(problem.contains("does not link to entry 2"), "{problem}");
    }

    #[test]
    fn a_removed_entry_is_named_as_missing() {
        let mut entries = chain(3);
        entries.remove(1);
        let Verdict::Broken { entry, problem, .. } = verify(None, entries) else {
            panic!("broken expected");
        };
        assert_eq!(entry, 2);
        assert!(problem.contains("missing"), "{problem}");
    }

    #[test]
    fn entries_serialise_flat_with_their_link() {
        let e = Head::empty().next(draft(5));
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            text.starts_with(&format!(
                r#"{{"seq":1,"prev":"{GENESIS}","at_ms":5,"action":"pause""#
            )),
            "{text}"
        );
        let back: AuditEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }

    fn chain_at(times: &[i64]) -> Vec<RawEntry> {
        let mut head = Head::empty();
        times
            .iter()
            .map(|&t| {
                let entry = head.next(draft(t));
                let data = serde_json::to_vec(&entry).unwrap();
                head = Head {
                    seq: entry.seq,
                    hash: hash(&data),
                };
                RawEntry {
                    key: key(entry.seq).to_vec(),
                    value: seal_bytes(&data),
                }
            })
            .collect()
    }

    #[test]
    fn pruning_keeps_an_anchor_from_which_the_rest_verifies() {
        let entries = chain_at(&[10, 20, 30, 40]);
        let anchor = prune_point(None, entries.clone(), 35, 99).expect("three go");
        assert_eq!((anchor.seq, anchor.at_ms, anchor.pruned_at_ms), (3, 30, 99));
        let kept = entries[3..].to_vec();
        assert_eq!(
            verify(Some(&anchor), kept.clone()),
            Verdict::Intact {
                entries: 1,
                head: match verify(None, entries.clone()) {
                    Verdict::Intact { head, .. } => head,
                    v => panic!("{v:?}"),
                },
                pruned_through: Some(3),
            }
        );
        // Without its anchor the rest does not verify: the anchor is the trust point.
        assert!(matches!(
            verify(None, kept.clone()),
            Verdict::Broken { entry: 1, .. }
        ));
        // A later prune goes on from the anchor.
        assert_eq!(prune_point(Some(&anchor), kept.clone(), 35, 100), None);
        let all = prune_point(Some(&anchor), kept, 41, 100).expect("the last goes");
        assert_eq!(all.seq, 4);
        assert_eq!(
            verify(Some(&all), Vec::new()),
            Verdict::Intact {
                entries: 0,
                head: all.hash.clone(),
                pruned_through: Some(4),
            }
        );
    }

    #[test]
    fn pruning_stops_before_a_damaged_entry_so_verify_still_names_it() {
        let mut entries = chain_at(&[10, 20, 30, 40]);
        entries[2].value[20] ^= 0x01;
        let anchor = prune_point(None, entries.clone(), 1_000, 99).expect("two go");
        assert_eq!(anchor.seq, 2);
        let Verdict::Broken {
            entry,
            intact_before,
            ..
        } = verify(Some(&anchor), entries[2..].to_vec())
        else {
            panic!("broken expected");
        };
        assert_eq!((entry, intact_before), (3, 0));
    }
}
