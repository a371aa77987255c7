//! The admin audit log's hash chain (§10, §12): what an entry holds, how an
//! entry links to the one before it, and how a stored chain is verified.
//!
//! Each entry is stored as the state database's sealed envelope
//! `{"v":1,"sha256":H,"data":ENTRY}`; `H`, the SHA-256 of the entry's exact
//! bytes, is the entry's hash, and the next entry's `prev` holds it (the first
//! entry's `prev` is [`GENESIS`]). So one changed byte anywhere breaks either the
//! entry's own checksum or its successor's link, and verification names the first
//! entry that does not hold. Pure: the store hands the raw stored entries in
//! key order; no I/O, no clock.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::store::{open_envelope, seal_bytes};

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
        entries: u64,
        head: String,
    },
    Broken {
        /// The first entry that does not hold.
        entry: u64,
        problem: String,
        /// Entries before it that did.
        intact_before: u64,
    },
}

/// Walks `entries` (in key order) from the genesis and names the first entry
/// whose bytes, number or link to its predecessor do not hold.
pub fn verify(entries: impl IntoIterator<Item = RawEntry>) -> Verdict {
    let mut head = Head::empty();
    for raw in entries {
        let expected = head.seq + 1;
        let broken = |entry: u64, problem: String| Verdict::Broken {
            entry,
            problem,
            intact_before: expected - 1,
        };
        let Ok(key) = <[u8; 8]>::try_from(raw.key.as_slice()) else {
            return broken(
                expected,
                "a record with a malformed key sits in its place".into(),
            );
        };
        let seq = u64::from_be_bytes(key);
        if seq != expected {
            return broken(
                expected,
                format!("it is missing (entry {seq} follows entry {})", head.seq),
            );
        }
        let data = match open_envelope(&raw.value) {
            Ok(data) => data,
            Err(problem) => return broken(seq, problem),
        };
        // Every stored byte counts, the envelope's too: an entry is exactly the
        // sealed form of its data.
        if seal_bytes(data.as_bytes()) != raw.value {
            return broken(seq, "its envelope was altered".into());
        }
        let entry: AuditEntry = match serde_json::from_str(data) {
            Ok(e) => e,
            Err(e) => return broken(seq, format!("its data does not parse ({e})")),
        };
        if entry.seq != seq {
            return broken(seq, format!("it says it is entry {}", entry.seq));
        }
        if entry.prev != head.hash {
            return broken(
                seq,
                format!(
                    "it does not link to entry {} (its prev hash differs)",
                    head.seq
                ),
            );
        }
        head = Head {
            seq,
            hash: hash(data.as_bytes()),
        };
    }
    Verdict::Intact {
        entries: head.seq,
        head: head.hash,
    }
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
        let Verdict::Intact { entries: n, head } = verify(entries.clone()) else {
            panic!("intact expected");
        };
        assert_eq!(n, 4);
        let last = open_envelope(&entries[3].value).unwrap();
        assert_eq!(head, hash(last.as_bytes()));
        assert_eq!(
            verify(Vec::new()),
            Verdict::Intact {
                entries: 0,
                head: GENESIS.into()
            }
        );
    }

    #[test]
    fn any_flipped_byte_names_that_entry_or_its_successor() {
        let entries = chain(3);
        for i in 0..entries[1].value.len() {
            let mut bad = entries.clone();
            bad[1].value[i] ^= if i % 2 == 0 { 0x01 } else { 0x20 };
            match verify(bad) {
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
        let Verdict::Broken { entry, problem, .. } = verify(entries) else {
            panic!("broken expected");
        };
        assert_eq!(entry, 3);
        assert!(problem.contains("does not link to entry 2"), "{problem}");
    }

    #[test]
    fn a_removed_entry_is_named_as_missing() {
        let mut entries = chain(3);
        entries.remove(1);
        let Verdict::Broken { entry, problem, .. } = verify(entries) else {
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
}
