//! The process's records: the agent started, a signal asked for a reload or a
//! stop, the server and telemetry stopped (or not in time). Each is one
//! `tracing` event whose fields are the record's attributes; the bridge makes
//! the OTel record from that same event while telemetry is up.

use std::fmt::Display;
use std::time::Duration;

use super::PROCESS_TARGET;

/// The agent listens and checks.
#[derive(Debug)]
pub struct AgentStarted<'a> {
    /// `http://…` or `https://…` and the bound address.
    pub listen: &'a str,
    pub mode: &'a str,
    pub interval: Duration,
    pub bots: usize,
}

impl AgentStarted<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: PROCESS_TARGET,
            listen = %self.listen,
            mode = self.mode,
            interval = %humantime::format_duration(self.interval),
            bots = self.bots,
            "Agent started."
        );
    }
}

/// `--check-interval` overrides the config's interval.
#[derive(Debug)]
pub struct IntervalOverridden {
    pub interval: Duration,
    pub configured: Duration,
}

impl IntervalOverridden {
    pub fn emit(&self) {
        tracing::warn!(
            target: PROCESS_TARGET,
            "--check-interval {} overrides check_interval_minutes = {}; meant for demos and tests.",
            humantime::format_duration(self.interval),
            self.configured.as_secs() / 60
        );
    }
}

/// The process's lifecycle, in the order it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// SIGHUP.
    ReloadRequested,
    /// SIGTERM or SIGINT.
    ShuttingDown,
    /// The agent's loop and its server have stopped.
    ShutDown,
    /// Telemetry is delivered; the process exits.
    Stopped,
}

impl Lifecycle {
    pub fn emit(self) {
        match self {
            Lifecycle::ReloadRequested => {
                tracing::info!(target: PROCESS_TARGET, "SIGHUP: reloading the config.")
            }
            Lifecycle::ShuttingDown => tracing::info!(target: PROCESS_TARGET, "Shutting down."),
            Lifecycle::ShutDown => tracing::info!(target: PROCESS_TARGET, "Shut down."),
            Lifecycle::Stopped => tracing::info!(target: PROCESS_TARGET, "Stopped."),
        }
    }
}

/// The HTTP server did not stop cleanly.
pub enum ServerStop<'a> {
    Failed(&'a dyn Display),
    /// Not within the bound (seconds).
    TimedOut(u64),
    /// Connections still open after the drain (HTTPS: `open` is how many).
    Drained {
        open: Option<usize>,
        drain: Duration,
    },
}

impl ServerStop<'_> {
    pub fn emit(&self) {
        match self {
            ServerStop::Failed(e) => {
                tracing::warn!(target: PROCESS_TARGET, error = %e, "The HTTP server stopped with an error.")
            }
            ServerStop::TimedOut(s) => {
                tracing::warn!(target: PROCESS_TARGET, "The HTTP server did not stop within {s} s.")
            }
            ServerStop::Drained { open: None, drain } => tracing::warn!(
                target: PROCESS_TARGET,
                drain_s = drain.as_secs(),
                "Shutdown stops waiting for connections still open after the drain."
            ),
            ServerStop::Drained {
                open: Some(open),
                drain,
            } => tracing::warn!(
                target: PROCESS_TARGET,
                open,
                drain_s = drain.as_secs(),
                "Connections still open after the shutdown drain are closed."
            ),
        }
    }
}

/// Accepting an HTTPS connection failed; the server retries.
pub struct AcceptFailed<'a> {
    pub error: &'a dyn Display,
}

impl AcceptFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: PROCESS_TARGET, error = %self.error, "Accepting a connection failed; retrying in a second.");
    }
}

/// Telemetry could not deliver everything before exit.
pub struct TelemetryUndelivered<'a> {
    pub error: &'a dyn Display,
}

impl TelemetryUndelivered<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: PROCESS_TARGET, error = %self.error, "Telemetry was not all delivered before exit.");
    }
}

/// A warning about the telemetry environment (`OTEL_*`).
pub struct TelemetryWarning<'a> {
    pub warning: &'a dyn Display,
}

impl TelemetryWarning<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: PROCESS_TARGET, "{}", self.warning);
    }
}

/// `/metrics` could not be rendered.
pub struct MetricsUnrendered<'a> {
    pub error: &'a dyn Display,
}

impl MetricsUnrendered<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: PROCESS_TARGET, error = %self.error, "Cannot render /metrics.");
    }
}

/// No system CA certificate could be loaded: https bots need `ca_file`.
pub struct SystemRootsMissing<'a> {
    pub error: &'a str,
}

impl SystemRootsMissing<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            target: PROCESS_TARGET,
            error = %self.error,
            "System CA certificates could not be loaded; https bots need ca_file."
        );
    }
}

/// The demo's agent did not stop within its bound; the runtime drops it.
pub struct AgentNotStopped {
    pub bound: Duration,
}

impl AgentNotStopped {
    pub fn emit(&self) {
        tracing::warn!(target: PROCESS_TARGET, "The agent did not stop within {:?}.", self.bound);
    }
}
