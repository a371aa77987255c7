//! What `load` accepts but an operator should hear about (§2), as values a
//! caller can match. `Display` is the sentence alone, exactly as CONTRACT.md
//! words it; print it with [`Warning::line`].

use std::fmt;

use crate::canon::Decimal;

/// Something legal but worth an operator's attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// `check_interval_minutes` above `above` (30): drift is seen late.
    LongCheckInterval { minutes: u64, above: u64 },
    /// A tolerance above 0 hides numeric differences up to it.
    NonZeroTolerance { tolerance: Decimal },
    /// `[runtime].timeout_ms` above `latency_budget_ms`, which cuts it short.
    TimeoutAboveBudget {
        timeout_ms: u64,
        latency_budget_ms: u64,
    },
}

impl Warning {
    /// The line to print on stderr: `warning: <sentence>`.
    pub fn line(&self) -> String {
        format!("warning: {self}")
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::LongCheckInterval { minutes, above } => write!(
                f,
                "check_interval_minutes = {minutes} is above {above}: a drift may go unseen for up to {minutes} minutes"
            ),
            Warning::NonZeroTolerance { tolerance } => write!(
                f,
                "tolerance_for_numeric_drift = {tolerance}: numeric differences up to {tolerance} are not reported as drift"
            ),
            Warning::TimeoutAboveBudget {
                timeout_ms,
                latency_budget_ms,
            } => write!(
                f,
                "timeout_ms = {timeout_ms} in [runtime] is above latency_budget_ms = {latency_budget_ms}: a slow bot is cut off by the check's budget first"
            ),
        }
    }
}
