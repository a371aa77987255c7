//! The agent's own records: config reloads and registry re-reads, the pause,
//! acks that end, the admin audit log (§12) and its retention anchor (§10),
//! bots that leave the registry, state writes that fail, checks that overrun.
//! Each is one `tracing` event whose fields are the record's attributes; the
//! bridge makes the OTel record from that same event. A record with a metric
//! (a failed state write) counts it in `emit`, so the two cannot disagree.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use super::{AGENT_TARGET, AUDIT_TARGET};
use crate::latch::{Ack, AckEnd, AuditEntry, Pause};
use crate::telemetry::Telemetry;

/// A re-read config file was refused; the running config stays.
pub struct ConfigReloadRefused<'a> {
    pub error: &'a dyn Display,
}

impl ConfigReloadRefused<'_> {
    pub fn emit(&self) {
        tracing::error!(target: AGENT_TARGET, error = %self.error, "Config reload refused; the running config stays in force.");
    }
}

/// A warning about a config file the agent read (at start or on reload).
pub struct ConfigWarning<'a> {
    pub warning: &'a dyn Display,
}

impl ConfigWarning<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: AGENT_TARGET, "{}", self.warning);
    }
}

/// A reload changed `state.path`, which only a restart applies.
#[derive(Debug)]
pub struct StatePathNotReloaded<'a> {
    pub running: &'a Path,
    pub configured: &'a Path,
}

impl StatePathNotReloaded<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            target: AGENT_TARGET,
            "state.path changed from {} to {}; it takes effect after a restart.",
            self.running.display(),
            self.configured.display()
        );
    }
}

/// A reload changed `[server]`, which only a restart applies.
#[derive(Debug)]
pub struct ServerNotReloaded;

impl ServerNotReloaded {
    pub fn emit(&self) {
        tracing::warn!(target: AGENT_TARGET, "[server] changed; it takes effect after a restart.");
    }
}

/// A re-read config file is in force.
#[derive(Debug)]
pub struct ConfigReloaded<'a> {
    pub mode: &'a str,
    pub bots: usize,
    pub interval: Duration,
}

impl ConfigReloaded<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: AGENT_TARGET,
            mode = self.mode,
            bots = self.bots,
            interval_s = self.interval.as_secs(),
            "Config reloaded."
        );
    }
}

/// The registry file, re-read before a check, lists other bots.
#[derive(Debug)]
pub struct RegistryChanged {
    pub before: usize,
    pub after: usize,
}

impl RegistryChanged {
    pub fn emit(&self) {
        tracing::info!(
            target: AGENT_TARGET,
            before = self.before,
            after = self.after,
            "Registry changed."
        );
    }
}

/// The re-read registry file was refused; the previous registry stays.
pub struct RegistryRefused<'a> {
    pub error: &'a dyn Display,
}

impl RegistryRefused<'_> {
    pub fn emit(&self) {
        tracing::error!(target: AGENT_TARGET, error = %self.error, "Registry re-read refused; the previous registry stays in force.");
    }
}

/// The config repo could not be read this check (every bot is UNKNOWN).
#[derive(Debug)]
pub struct RepoUnreadable<'a> {
    pub reason: &'a str,
    pub detail: &'a str,
}

impl RepoUnreadable<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: AGENT_TARGET, reason = self.reason, detail = %self.detail, "The config repo could not be read; every bot is UNKNOWN this check.");
    }
}

/// The config repo was read, but something beside it went wrong (a fetch
/// record not saved): said so, the check goes on.
pub struct RepoWarning<'a> {
    pub warning: &'a str,
}

impl RepoWarning<'_> {
    pub fn emit(&self) {
        tracing::warn!(target: AGENT_TARGET, "{}", self.warning);
    }
}

/// A bot left the registry; its state is kept a while (§9).
#[derive(Debug)]
pub struct BotLeftRegistry<'a> {
    pub bot_slug: &'a str,
}

impl BotLeftRegistry<'_> {
    pub fn emit(&self) {
        tracing::info!(target: AGENT_TARGET, bot_slug = %self.bot_slug, "Bot left the registry; its state is kept for 24 h.");
    }
}

/// A check's state was not flushed, so the check is unsuccessful (§8).
pub struct StateNotFlushed<'a> {
    pub error: &'a dyn Display,
}

impl StateNotFlushed<'_> {
    pub fn emit(&self) {
        tracing::error!(target: AGENT_TARGET, error = %self.error, "State not flushed; this check is unsuccessful.");
    }
}

/// A check took longer than the check interval.
#[derive(Debug)]
pub struct CheckOverran {
    pub duration: Duration,
    pub interval: Duration,
}

impl CheckOverran {
    pub fn emit(&self) {
        tracing::warn!(
            target: AGENT_TARGET,
            duration = ?self.duration,
            interval = ?self.interval,
            "The check took longer than the check interval; the next one starts at once."
        );
    }
}

/// The detector is paused (by an admin now, or as stored at start).
#[derive(Debug)]
pub struct Paused<'a> {
    pub pause: &'a Pause,
}

impl Paused<'_> {
    pub fn emit(&self) {
        let p = self.pause;
        tracing::warn!(
            target: AGENT_TARGET,
            by = %p.by,
            reason = %p.reason,
            until_ms = p.until_ms,
            "The detector is paused: checks go on, alerts page nothing."
        );
    }
}

/// An admin resumed the detector.
#[derive(Debug)]
pub struct Resumed<'a> {
    pub by: &'a str,
}

impl Resumed<'_> {
    pub fn emit(&self) {
        tracing::info!(target: AGENT_TARGET, by = %self.by, "The detector was resumed; alerts page again.");
    }
}

/// A pause ended by its own time limit.
#[derive(Debug)]
pub enum PauseRanOut {
    /// While the agent ran.
    Now,
    /// While the agent was down (found at start).
    WhileDown,
}

impl PauseRanOut {
    pub fn emit(&self) {
        match self {
            PauseRanOut::Now => {
                tracing::info!(target: AGENT_TARGET, "The pause ran out; the detector pages again.")
            }
            PauseRanOut::WhileDown => tracing::info!(
                target: AGENT_TARGET,
                "The stored pause ran out while the agent was down."
            ),
        }
    }
}

/// An ack ended (lapsed, ended by a check, or by a clear).
#[derive(Debug)]
pub struct AckLapsed<'a> {
    pub ack: &'a Ack,
}

impl AckLapsed<'_> {
    pub fn emit(&self) {
        let a = self.ack;
        tracing::info!(
            target: AGENT_TARGET,
            bot_slug = %a.bot_slug,
            ack_id = %a.id,
            ended_by = a.ended_by.map_or("", AckEnd::as_str),
            "Ack lapsed."
        );
    }
}

/// Acks or a pause that fell due were not stored; the next check stores them.
pub struct TimersNotStored<'a> {
    pub error: &'a dyn Display,
}

impl TimersNotStored<'_> {
    pub fn emit(&self) {
        tracing::error!(target: AGENT_TARGET, error = %self.error, "Ended acks or pause were not stored; the next check stores them.");
    }
}

/// An admin action's audit entry, as a log record (§12): what, who, from where.
#[derive(Debug)]
pub struct AdminActionRecorded<'a> {
    pub entry: &'a AuditEntry,
}

impl AdminActionRecorded<'_> {
    pub fn emit(&self) {
        let d = &self.entry.draft;
        tracing::info!(
            target: AUDIT_TARGET,
            audit_seq = self.entry.seq,
            action = d.action.as_str(),
            actor = %d.actor,
            role = d.role.as_deref().unwrap_or(""),
            source = %d.source,
            bot_slug = d.bot_slug.as_deref().unwrap_or(""),
            ack_id = d.ack_id.as_deref().unwrap_or(""),
            reason = d.reason.as_deref().unwrap_or(""),
            "Admin action recorded."
        );
    }
}

/// Which audit entry could not be written.
#[derive(Clone, Copy, Debug)]
pub enum AuditEntryKind {
    ManualCheck,
    Denied,
}

/// An audit entry could not be written.
pub struct AuditNotRecorded<'a> {
    pub kind: AuditEntryKind,
    pub error: &'a dyn Display,
}

impl AuditNotRecorded<'_> {
    pub fn emit(&self) {
        match self.kind {
            AuditEntryKind::ManualCheck => {
                tracing::error!(target: AGENT_TARGET, error = %self.error, "The manual check's audit entry was not recorded.")
            }
            AuditEntryKind::Denied => {
                tracing::error!(target: AGENT_TARGET, error = %self.error, "Denied requests were not recorded in the audit log.")
            }
        }
    }
}

/// Audit retention removed entries; the anchor is logged so that a copy of it
/// lives outside the database (§10).
#[derive(Debug)]
pub struct AuditPruned<'a> {
    pub anchor_seq: u64,
    pub anchor_hash: &'a str,
    pub anchor_at_ms: i64,
    pub retention_days: u32,
}

impl AuditPruned<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: AUDIT_TARGET,
            anchor_seq = self.anchor_seq,
            anchor_hash = %self.anchor_hash,
            anchor_at_ms = self.anchor_at_ms,
            retention_days = self.retention_days,
            "Audit entries past retention were removed; the chain now verifies from this anchor."
        );
    }
}

/// Audit retention could not remove its entries; they are kept.
pub enum AuditPruneFailed<'a> {
    /// The state write failed (counted in `drift_state_write_errors_total`).
    Write(&'a dyn Display),
    /// The blocking task did not finish.
    Interrupted,
}

impl AuditPruneFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        match self {
            AuditPruneFailed::Write(e) => {
                t.metrics().inc_state_write_errors();
                tracing::error!(target: AGENT_TARGET, error = %e, "Audit entries past retention could not be removed; they are kept.");
            }
            AuditPruneFailed::Interrupted => tracing::error!(
                target: AGENT_TARGET,
                "Pruning the audit log did not finish; the entries are kept."
            ),
        }
    }
}
