//! The stored per-bot record (§9): what the agent remembers about one bot
//! between checks (its drift episode with the latched fields, its last report,
//! its unemitted resolutions and its acks), exactly as it is persisted.
//!
//! Owns the record's shape and the plain queries on it. Must not hold rules:
//! how an episode advances is `episode.rs`, how an ack lives and ends is
//! `ack.rs`; both import this file and neither imports the other. No I/O.
//!
//! Every type here is stored (inside `envelope.rs`'s versioned envelope). A field
//! added later (acks, pauses) must be `#[serde(default)]` so records written
//! before it still load; a change older binaries must not misread bumps the
//! envelope's version instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{DriftKind, Status};

/// Everything the agent remembers about one bot between checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BotState {
    /// The open drift episode, if any.
    #[serde(default)]
    pub episode: Option<Episode>,
    #[serde(default)]
    pub last_status: Option<Status>,
    /// The last report as emitted (after latching), for the admin API after a restart.
    #[serde(default)]
    pub last_report_json: Option<String>,
    /// `now_ms` of the last check that reported on this bot.
    #[serde(default)]
    pub last_seen_ms: i64,
    /// When the bot left the registry; `None` while it is registered.
    #[serde(default)]
    pub removed_at_ms: Option<i64>,
    /// Episodes ended but whose RESOLVED record is not known to be emitted yet:
    /// stored with the state that ended them and cleared once emitted, so a crash
    /// in between re-emits rather than loses it (§9: at least once).
    #[serde(default)]
    pub unemitted: Vec<Resolution>,
    /// Two-person acks (§9): pending and active ones, and those ended within a
    /// day (see `ack.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<Ack>,
}

/// An ended episode, as its RESOLVED record tells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub episode_id: String,
    pub started_ms: i64,
    pub resolution_minutes: f64,
    pub resolved_by: ResolvedBy,
    /// The commit that last changed the bot's file, when the committed side moved.
    #[serde(default)]
    pub commit: Option<CommitRef>,
}

/// A commit as RESOLVED names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    pub sha: String,
    pub author: String,
    pub summary: String,
}

/// One drift episode: from a bot's first drift until every field is back in sync.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// `{slug}-{started_ms}`, as in the contract's example.
    pub id: String,
    pub started_ms: i64,
    /// Every field latched during the episode, including those already back in
    /// sync: `resolved_by` looks at all of them.
    pub fields: BTreeMap<String, LatchedField>,
}

impl Episode {
    /// Fields drifting now (as of the last DRIFT report), in report order.
    pub fn drifting(&self) -> impl Iterator<Item = (&String, &LatchedField)> {
        let mut now: Vec<(&String, &LatchedField)> =
            self.fields.iter().filter(|(_, f)| f.drifting).collect();
        now.sort_by_key(|(_, f)| f.position);
        now.into_iter()
    }

    /// How many fields drift now (the latched count while UNKNOWN).
    pub fn drifting_count(&self) -> usize {
        self.fields.values().filter(|f| f.drifting).count()
    }
}

/// One field's drift within an episode. Values are canonical JSON text, secrets
/// already redacted (tokens of one key compare like the values they hide).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatchedField {
    /// When this field's current drift was first seen.
    pub since_ts_ms: i64,
    pub kind: DriftKind,
    /// The latest observed values.
    pub running: Option<String>,
    pub committed: Option<String>,
    pub delta: Option<String>,
    /// The values when this field's current drift started, to tell at resolution
    /// which side moved.
    pub first_running: Option<String>,
    pub first_committed: Option<String>,
    /// False once the field is back in sync while others still drift.
    pub drifting: bool,
    /// Index in the last DRIFT report, so latched drifts keep the contract's
    /// path order (§6.5) without re-parsing paths.
    pub position: u32,
    /// Sides that moved in earlier drift spells of this field in this episode.
    #[serde(default)]
    pub committed_moved: bool,
    #[serde(default)]
    pub running_moved: bool,
}

/// What ended an episode (`resolved_by`, §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    /// Only committed sides changed.
    Commit,
    /// Only running sides changed.
    Revert,
    Both,
    /// Neither side changed: ignore rules, schema or tolerance did.
    Config,
    /// An admin force-cleared the latch.
    Cleared,
}

impl ResolvedBy {
    /// True when the committed side changed, so a resolving commit is named.
    pub fn committed_moved(self) -> bool {
        matches!(self, ResolvedBy::Commit | ResolvedBy::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedBy::Commit => "commit",
            ResolvedBy::Revert => "revert",
            ResolvedBy::Both => "both",
            ResolvedBy::Config => "config",
            ResolvedBy::Cleared => "cleared",
        }
    }
}

/// One ack as stored (inside the bot's versioned state record) and as the admin
/// API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub id: String,
    pub bot_slug: String,
    pub status: AckStatus,
    pub requested_by: String,
    pub requested_at_ms: i64,
    pub reason: String,
    /// The episode the ack was requested in.
    pub episode_id: String,
    /// Pending: when it lapses unapproved. Active: the latest it can end
    /// (approval + one interval). Lapsed: when it was due, kept for the record.
    pub expires_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<AckEnd>,
    /// The drift the ack is bound to (see [`fingerprint`]); internal.
    #[serde(rename = "drift_fingerprint")]
    pub drift: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Requested, waiting for a second person.
    Pending,
    /// Approved: `drift_acknowledged` is 1.
    Active,
    /// Over, for the reason in `ended_by`.
    Lapsed,
}

impl AckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Pending => "pending",
            AckStatus::Active => "active",
            AckStatus::Lapsed => "lapsed",
        }
    }
}

/// Why an ack is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckEnd {
    /// Pending for one interval without approval.
    Unapproved,
    /// The first scheduled check that started after the approval completed.
    ScheduledCheck,
    /// Approval + one interval passed first (e.g. checks ran late).
    Expired,
    /// The bot's drift is no longer the one the ack was requested for.
    DriftChanged,
    /// An admin cleared the bot's episode.
    Cleared,
}

impl AckEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            AckEnd::Unapproved => "unapproved",
            AckEnd::ScheduledCheck => "scheduled_check",
            AckEnd::Expired => "expired",
            AckEnd::DriftChanged => "drift_changed",
            AckEnd::Cleared => "cleared",
        }
    }
}

impl Ack {
    /// Pending or active.
    pub fn is_open(&self) -> bool {
        self.status != AckStatus::Lapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_drift_kind_in_a_stored_state_is_an_error() {
        let text = r#"{"since_ts_ms":1,"kind":"sideways","running":null,"committed":null,"delta":null,"first_running":null,"first_committed":null,"drifting":true,"position":0}"#;
        let err = serde_json::from_str::<LatchedField>(text).unwrap_err();
        assert!(err.to_string().contains("sideways"), "{err}");
    }
}
