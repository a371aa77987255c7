//! The records of a check as a whole (§11): one per check carrying the chain
//! head, `mass_drift` when more than half of the fleet drifts at once, and the
//! per-bot developer line. Must not decide what a check found: `check` does.

use super::{GOV_TARGET, field_list, s, slug};
use crate::report::{ConfigDriftReport, Status};
use crate::telemetry::Telemetry;

/// One record per check; carries the evidence chain head so it has witnesses
/// outside the database (§10).
#[derive(Debug)]
pub struct CheckCompleted<'a> {
    pub bots: usize,
    pub drifting: usize,
    pub unknown: usize,
    pub commit: Option<&'a str>,
    pub chain_head: Option<&'a str>,
    pub duration_ms: u64,
    pub successful: bool,
}

impl CheckCompleted<'_> {
    pub fn emit(&self, t: &Telemetry) {
        record!(t.logs(), GOV_TARGET, INFO, "config_drift.check", CHECK_MESSAGE,
            body = s(CHECK_MESSAGE), {
            bots = self.bots,
            drifting = self.drifting,
            unknown = self.unknown,
            commit = self.commit.unwrap_or(""),
            chain_head = self.chain_head.unwrap_or(""),
            duration_ms = self.duration_ms,
            successful = self.successful,
        });
    }
}

/// More than half of the evaluated bots (at least 3) drift in one check: likely
/// a bad commit or a mass edit rather than many separate edits.
#[derive(Debug)]
pub struct MassDrift<'a> {
    pub drifting: usize,
    pub evaluated: usize,
    pub committed_ref: Option<&'a str>,
    pub commit: Option<&'a str>,
}

pub const CHECK_MESSAGE: &str = "Check completed.";

pub const MASS_DRIFT_MESSAGE: &str =
    "More than half of the evaluated bots drift from the committed configuration at once.";

impl MassDrift<'_> {
    /// The rule: more than half of the evaluated bots, and at least 3.
    pub fn applies(drifting: usize, evaluated: usize) -> bool {
        drifting >= 3 && drifting * 2 > evaluated
    }

    pub fn emit(&self, t: &Telemetry) {
        record!(t.logs(), GOV_TARGET, WARN, "config_drift.mass_drift", MASS_DRIFT_MESSAGE,
            body = s(MASS_DRIFT_MESSAGE), {
            mass_drift = true,
            drifting = self.drifting,
            evaluated = self.evaluated,
            committed_ref = self.committed_ref.unwrap_or(""),
            committed_commit = self.commit.unwrap_or(""),
        });
    }
}

/// The per-bot per-check developer line (tracing only): INFO when drifting or
/// UNKNOWN, DEBUG when in sync.
#[derive(Debug)]
pub struct BotChecked<'a> {
    pub report: &'a ConfigDriftReport,
}

impl BotChecked<'_> {
    pub fn emit(&self) {
        let r = self.report;
        let fields = field_list(r);
        if r.status == Status::InSync {
            tracing::debug!(bot_slug = slug(r), status = r.status.as_str(), drifts_count = r.drifts.len(), fields_drifted = %fields, "Bot checked.");
        } else {
            tracing::info!(bot_slug = slug(r), status = r.status.as_str(), drifts_count = r.drifts.len(), fields_drifted = %fields, "Bot checked.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_drift_needs_three_bots_and_more_than_half() {
        assert!(!MassDrift::applies(2, 2));
        assert!(MassDrift::applies(3, 5));
        assert!(!MassDrift::applies(3, 6));
        assert!(MassDrift::applies(3, 3));
    }
}
