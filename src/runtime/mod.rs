//! The running side (the `runtime =` key, §4): fetch every bot's running config
//! over `http(s)://` or `file://` (`grpc(s)://` comes later) within the check's
//! latency budget. Every failure becomes an UNKNOWN reason, never an error that
//! unwinds the check.

pub mod file;
pub mod http;

use std::time::{Duration, Instant};

use crate::canon::Format;
use crate::config::{Bot, RuntimeConfig};
use crate::report::UnknownReason;

/// A running config as the bot sent it, not yet parsed.
#[derive(Clone, Debug)]
pub struct RunningDoc {
    pub bytes: Vec<u8>,
    /// JSON for http(s) and gRPC; by extension for file://.
    pub format: Format,
    /// `loaded_at_ms` from the gRPC source, when it gives one.
    pub loaded_at_ms: Option<i64>,
}

/// Why a bot's running config could not be had: its UNKNOWN reason and a human
/// sentence (never holding a header value or URL credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchFailure {
    pub reason: UnknownReason,
    pub detail: String,
}

/// One bot's fetch: the outcome and how long it took (for
/// `drift_bot_fetch_duration_seconds`; `None` when it never started).
#[derive(Debug)]
pub struct Fetched {
    pub result: Result<RunningDoc, FetchFailure>,
    pub duration: Option<Duration>,
}

/// A problem building the fetcher (bad CA file, key), as one sentence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeSetupError(pub String);

/// Holds the HTTP client (connections kept alive and reused across checks).
pub struct Fetcher {
    _private: (),
}

impl Fetcher {
    pub fn new(cfg: &RuntimeConfig) -> Result<Fetcher, RuntimeSetupError> {
        let _ = cfg;
        todo!("runtime::Fetcher::new")
    }

    /// Fetches every bot, at most `max_in_flight` at once. A fetch not started by
    /// `budget_deadline` is `runtime_timeout` with detail "check budget exhausted".
    /// Results are in the order of `bots`.
    pub async fn fetch_all(&self, bots: &[Bot], budget_deadline: Instant) -> Vec<Fetched> {
        let _ = (bots, budget_deadline);
        todo!("runtime::Fetcher::fetch_all")
    }
}
