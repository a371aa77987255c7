//! The four `GOV_CONFIG_DRIFT_*` records of §11 (DETECTED, UNKNOWN, RESOLVED,
//! ACK): attributes plus the report as a structured body through the OTel Logs
//! API, and the same fields with the report as JSON on stderr, from one field
//! list (`gov_record!`). Must not decide when a record is due: the latch does.

use super::{GOV_TARGET, ReportJson, field_list, report_body, slug};
use crate::config::Mode;
use crate::report::{ConfigDriftReport, ReasonCode};
use crate::telemetry::Telemetry;

pub const DETECTED_MESSAGE: &str = "The running configuration of one of the system's safeties differs from the version on file. Operators must reconcile.";
pub const UNKNOWN_MESSAGE: &str = "Whether the running configuration of one of the system's safeties matches the version on file cannot be determined.";
pub const RESOLVED_MESSAGE: &str =
    "The running configuration of one of the system's safeties matches the version on file again.";
pub const ACK_MESSAGE: &str = "A drift was acknowledged by two people until the next check.";
/// RESOLVED with `resolved_by: "cleared"`: the latch was cleared by hand, which
/// says nothing about whether the configurations match again.
pub const CLEARED_MESSAGE: &str = "A drift episode of one of the system's safeties was cleared by an administrator; the running configuration may still differ from the version on file.";

/// `P3` normally; `P2` for DETECTED in enforced mode past one interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityClass {
    P2,
    P3,
}

impl SeverityClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityClass::P2 => "P2",
            SeverityClass::P3 => "P3",
        }
    }

    /// The class of a DETECTED record: P2 once an enforced-mode episode has been
    /// open longer than one check interval.
    pub fn for_detected(mode: Mode, episode_since_ms: i64, now_ms: i64, interval_ms: i64) -> Self {
        if mode == Mode::Enforced && now_ms.saturating_sub(episode_since_ms) > interval_ms {
            SeverityClass::P2
        } else {
            SeverityClass::P3
        }
    }
}

/// The commit that changed the committed side, when it did (stored with the
/// resolution, so a re-emitted RESOLVED names the same commit).
pub use crate::latch::CommitRef as ResolvingCommit;
pub use crate::latch::ResolvedBy;

/// One GOV record (§11): the reason code is its event name, and `reason_code`,
/// `user_message` and the given fields its attributes; the report is the OTel
/// body and, on stderr, JSON under `report`.
macro_rules! gov_record {
    ($t:expr, $level:ident, $code:expr, $report:expr, $message:expr,
     { $($name:ident = $value:expr),* $(,)? }) => {{
        let code: ReasonCode = $code;
        let report: &ConfigDriftReport = $report;
        let message: &'static str = $message;
        record!($t.logs(), GOV_TARGET, $level, code.as_str(), message, body = report_body(report), {
            reason_code = code.as_str(),
            user_message = message,
            $($name = $value,)*
        }, line { report = %ReportJson(report) });
    }};
}

/// `GOV_CONFIG_DRIFT_DETECTED`: every check while a bot is in drift.
#[derive(Debug)]
pub struct DriftDetected<'a> {
    pub report: &'a ConfigDriftReport,
    pub severity_class: SeverityClass,
}

impl DriftDetected<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        gov_record!(t, WARN, ReasonCode::GovConfigDriftDetected, r, DETECTED_MESSAGE, {
            bot_slug = slug(r),
            severity_class = self.severity_class.as_str(),
            drifts_count = r.drifts.len() as i64,
            fields_drifted = field_list(r),
            episode_id = r.episode_id.as_deref(),
        });
    }
}

/// `GOV_CONFIG_DRIFT_UNKNOWN`: every check while a bot is UNKNOWN.
#[derive(Debug)]
pub struct DriftUnknown<'a> {
    pub report: &'a ConfigDriftReport,
}

impl DriftUnknown<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        gov_record!(t, WARN, ReasonCode::GovConfigDriftUnknown, r, UNKNOWN_MESSAGE, {
            bot_slug = slug(r),
            severity_class = SeverityClass::P3.as_str(),
            unknown_reason = r.unknown_reason.map(|u| u.as_str()),
            detail = r.detail.as_deref(),
            drifts_count = r.drifts.len() as i64,
            episode_id = r.episode_id.as_deref(),
        });
    }
}

/// `GOV_CONFIG_DRIFT_RESOLVED`: once per episode. Also records the episode's
/// length in `drift_resolution_minutes`, so the two never disagree.
#[derive(Debug)]
pub struct DriftResolved<'a> {
    /// The bot's report of the check that resolved it (its last one when cleared).
    pub report: &'a ConfigDriftReport,
    pub episode_id: &'a str,
    pub resolution_minutes: f64,
    pub resolved_by: ResolvedBy,
    pub commit: Option<&'a ResolvingCommit>,
}

impl DriftResolved<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        let message = if self.resolved_by == ResolvedBy::Cleared {
            CLEARED_MESSAGE
        } else {
            RESOLVED_MESSAGE
        };
        gov_record!(t, INFO, ReasonCode::GovConfigDriftResolved, r, message, {
            bot_slug = slug(r),
            severity_class = SeverityClass::P3.as_str(),
            episode_id = self.episode_id,
            resolution_minutes = self.resolution_minutes,
            resolved_by = self.resolved_by.as_str(),
            commit_sha = self.commit.map(|c| c.sha.as_str()),
            commit_author = self.commit.map(|c| c.author.as_str()),
            commit_summary = self.commit.map(|c| c.summary.as_str()),
        });
        t.metrics()
            .record_resolution(slug(r), self.resolution_minutes);
    }
}

/// `GOV_CONFIG_DRIFT_ACK`: an ack was approved.
#[derive(Debug)]
pub struct DriftAcknowledged<'a> {
    pub report: &'a ConfigDriftReport,
    pub ack_id: &'a str,
    pub requested_by: &'a str,
    pub approved_by: &'a str,
    pub reason: &'a str,
    /// The latest the ack can end: approval + one interval (§9).
    pub expires_at_ms: i64,
}

impl DriftAcknowledged<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        gov_record!(t, INFO, ReasonCode::GovConfigDriftAck, r, ACK_MESSAGE, {
            bot_slug = slug(r),
            severity_class = SeverityClass::P3.as_str(),
            ack_id = self.ack_id,
            requested_by = self.requested_by,
            approved_by = self.approved_by,
            ack_reason = self.reason,
            expires_at_ms = self.expires_at_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_is_p2_only_in_enforced_mode_past_one_interval() {
        let i = 900_000;
        assert_eq!(
            SeverityClass::for_detected(Mode::Enforced, 0, i + 1, i),
            SeverityClass::P2
        );
        assert_eq!(
            SeverityClass::for_detected(Mode::Enforced, 0, i, i),
            SeverityClass::P3
        );
        assert_eq!(
            SeverityClass::for_detected(Mode::Advisory, 0, 10 * i, i),
            SeverityClass::P3
        );
    }
}
