//! The contract's shapes (§7): `ConfigDriftReport`, its status and reason codes.
//! Pure data: no I/O, no clock. Field order follows the contract's example so
//! `--format json` reads the way the documentation shows it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const REPORT_KIND: &str = "ConfigDriftReport";
pub const REPORT_SCHEMA_VERSION: &str = "1.0.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "IN_SYNC")]
    InSync,
    #[serde(rename = "DRIFT")]
    Drift,
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InSync => "IN_SYNC",
            Status::Drift => "DRIFT",
            Status::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    GovConfigDriftDetected,
    GovConfigDriftUnknown,
    GovConfigDriftResolved,
    GovConfigDriftAck,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::GovConfigDriftDetected => "GOV_CONFIG_DRIFT_DETECTED",
            ReasonCode::GovConfigDriftUnknown => "GOV_CONFIG_DRIFT_UNKNOWN",
            ReasonCode::GovConfigDriftResolved => "GOV_CONFIG_DRIFT_RESOLVED",
            ReasonCode::GovConfigDriftAck => "GOV_CONFIG_DRIFT_ACK",
        }
    }
}

/// How many reports of a check have each status: the one place a check's
/// reports are counted (exit code, summaries, the check record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub in_sync: usize,
    pub drift: usize,
    pub unknown: usize,
}

impl Tally {
    pub fn of(reports: &[ConfigDriftReport]) -> Tally {
        let mut t = Tally::default();
        for r in reports {
            match r.status {
                Status::InSync => t.in_sync += 1,
                Status::Drift => t.drift += 1,
                Status::Unknown => t.unknown += 1,
            }
        }
        t
    }
}

/// Why a bot is UNKNOWN, highest precedence first (§7): when several apply, the
/// first in this order is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    RepoUnreachable,
    RepoStale,
    BranchNotFound,
    CommittedUnverified,
    CommittedConfigMissing,
    CommittedConfigInvalid,
    RuntimeUnreachable,
    RuntimeTimeout,
    RuntimeBadResponse,
    RuntimeTooLarge,
}

impl UnknownReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::RepoUnreachable => "repo_unreachable",
            UnknownReason::RepoStale => "repo_stale",
            UnknownReason::BranchNotFound => "branch_not_found",
            UnknownReason::CommittedUnverified => "committed_unverified",
            UnknownReason::CommittedConfigMissing => "committed_config_missing",
            UnknownReason::CommittedConfigInvalid => "committed_config_invalid",
            UnknownReason::RuntimeUnreachable => "runtime_unreachable",
            UnknownReason::RuntimeTimeout => "runtime_timeout",
            UnknownReason::RuntimeBadResponse => "runtime_bad_response",
            UnknownReason::RuntimeTooLarge => "runtime_too_large",
        }
    }

    /// Reasons that apply to every bot of a check at once.
    pub fn is_repo_wide(self) -> bool {
        self <= UnknownReason::CommittedUnverified
    }
}

/// The state of a commit's signature (§5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureState {
    Verified,
    Unverified,
    Bad,
    Unsigned,
}

impl SignatureState {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureState::Verified => "verified",
            SignatureState::Unverified => "unverified",
            SignatureState::Bad => "bad",
            SignatureState::Unsigned => "unsigned",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Changed,
    MissingInRunning,
    MissingInCommitted,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Changed => "changed",
            DriftKind::MissingInRunning => "missing_in_running",
            DriftKind::MissingInCommitted => "missing_in_committed",
        }
    }
}

/// One drifted field. Values are canonical JSON text (exact numbers, secrets
/// already replaced by their redaction token).
#[derive(Clone, Debug, Serialize)]
pub struct Drift {
    pub field: String,
    pub kind: DriftKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Box<RawValue>>,
    pub since_ts_ms: i64,
    /// Set on an UNKNOWN report for drifts kept from the latch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub latched: bool,
}

impl PartialEq for Drift {
    fn eq(&self, other: &Self) -> bool {
        fn raw(v: &Option<Box<RawValue>>) -> Option<&str> {
            v.as_deref().map(RawValue::get)
        }
        self.field == other.field
            && self.kind == other.kind
            && raw(&self.running) == raw(&other.running)
            && raw(&self.committed) == raw(&other.committed)
            && raw(&self.delta) == raw(&other.delta)
            && self.since_ts_ms == other.since_ts_ms
            && self.latched == other.latched
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Running,
    Committed,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Running => "running",
            Side::Committed => "committed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SchemaError {
    pub side: Side,
    pub path: String,
    pub message: String,
}

/// Which revision of the branch the running config equals, or is closest to (§7).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MatchesCommit {
    Found {
        commit: String,
        committed_at_ms: i64,
        author: String,
        summary: String,
        commits_behind: u64,
        exact: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        differing_fields: Option<u64>,
    },
    Skipped {
        skipped: MatchSkipped,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchSkipped {
    Budget,
    HistoryUnreadable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Fleet {
    A,
    B,
}

/// One bot's result of one check. `Option` fields that the contract says are
/// "always present" serialise as `null`; the others are left out when `None`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigDriftReport {
    pub kind: &'static str,
    pub schema_version: &'static str,
    pub bot_slug: Option<String>,
    pub status: Status,
    pub reason_code: Option<ReasonCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub checked_at_ms: i64,
    pub committed_ref: Option<String>,
    pub committed_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_signature: Option<SignatureState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_signature: Option<SignatureState>,
    /// `Some(None)` when a diff ran without a schema: written as `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode_id: Option<String>,
    pub drifts: Vec<Drift>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_errors: Vec<SchemaError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_loaded_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches_commit: Option<MatchesCommit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_in: Option<Fleet>,
}

impl ConfigDriftReport {
    /// A report with only the always-present fields set; status IN_SYNC.
    pub fn new(bot_slug: Option<String>, checked_at_ms: i64) -> ConfigDriftReport {
        ConfigDriftReport {
            kind: REPORT_KIND,
            schema_version: REPORT_SCHEMA_VERSION,
            bot_slug,
            status: Status::InSync,
            reason_code: None,
            unknown_reason: None,
            detail: None,
            checked_at_ms,
            committed_ref: None,
            committed_commit: None,
            committed_signature: None,
            content_signature: None,
            schema: None,
            ignored: None,
            episode_id: None,
            drifts: Vec::new(),
            schema_errors: Vec::new(),
            running_loaded_at_ms: None,
            matches_commit: None,
            running_source: None,
            committed_source: None,
            only_in: None,
        }
    }

    /// Sets status and reason code from the drift list (IN_SYNC or DRIFT).
    pub fn settle(&mut self) {
        if self.drifts.is_empty() {
            self.status = Status::InSync;
            self.reason_code = None;
        } else {
            self.status = Status::Drift;
            self.reason_code = Some(ReasonCode::GovConfigDriftDetected);
        }
        self.unknown_reason = None;
        self.detail = None;
    }

    /// Marks the report UNKNOWN; the drift list stays as the caller left it.
    pub fn set_unknown(&mut self, reason: UnknownReason, detail: impl Into<String>) {
        self.status = Status::Unknown;
        self.reason_code = Some(ReasonCode::GovConfigDriftUnknown);
        self.unknown_reason = Some(reason);
        self.detail = Some(detail.into());
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_sync_report_has_exactly_the_always_present_fields() {
        let r = ConfigDriftReport::new(Some("risk.killswitch".into()), 5);
        assert_eq!(
            r.to_json_line(),
            r#"{"kind":"ConfigDriftReport","schema_version":"1.0.0","bot_slug":"risk.killswitch","status":"IN_SYNC","reason_code":null,"checked_at_ms":5,"committed_ref":null,"committed_commit":null,"drifts":[]}"#
        );
    }

    #[test]
    fn unknown_report_carries_reason_and_detail() {
        let mut r = ConfigDriftReport::new(Some("a".into()), 1);
        r.set_unknown(UnknownReason::RuntimeTimeout, "no answer within 250 ms");
        let v: serde_json::Value = serde_json::from_str(&r.to_json_line()).unwrap();
        assert_eq!(v["status"], "UNKNOWN");
        assert_eq!(v["reason_code"], "GOV_CONFIG_DRIFT_UNKNOWN");
        assert_eq!(v["unknown_reason"], "runtime_timeout");
        assert_eq!(v["detail"], "no answer within 250 ms");
    }

    #[test]
    fn tally_counts_each_status() {
        let mut drifting = ConfigDriftReport::new(Some("b".into()), 1);
        drifting.status = Status::Drift;
        let mut unknown = ConfigDriftReport::new(Some("c".into()), 1);
        unknown.set_unknown(UnknownReason::RepoStale, "stale");
        let in_sync = ConfigDriftReport::new(Some("a".into()), 1);
        let reports = [in_sync.clone(), drifting, unknown, in_sync];
        assert_eq!(
            Tally::of(&reports),
            Tally {
                in_sync: 2,
                drift: 1,
                unknown: 1
            }
        );
        assert_eq!(Tally::of(&[]), Tally::default());
    }

    #[test]
    fn repo_wide_reasons_precede_per_bot_ones() {
        assert!(UnknownReason::RepoUnreachable.is_repo_wide());
        assert!(UnknownReason::CommittedUnverified.is_repo_wide());
        assert!(!UnknownReason::CommittedConfigMissing.is_repo_wide());
        assert!(UnknownReason::RepoStale < UnknownReason::RuntimeTooLarge);
    }
}
