//! Admin actions (§9, §12) as the agent's loop carries them out: ack requests
//! and approvals, clear, pause and resume, the audit entries of manual checks and
//! of denied requests, and the timers that end acks and pauses.
//!
//! Everything here runs inside the scheduler's loop, between checks, so no state
//! changes while a check latches. Each action writes its state change and its
//! audit entry in one flushed transaction *before* anything is emitted or
//! answered: an action the API confirmed is one the next start remembers. Must
//! not authenticate anyone (the API did) nor decide ack lifetimes (`latch::ack`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Agent, CheckResult};
use crate::config::{Mode, Role};
use crate::latch::ack::{self, Ack, AckEnd, AckError};
use crate::latch::store::PauseChange;
use crate::latch::{
    AuditAction, AuditDraft, AuditEntry, BotState, Pause, Resolution, StateError, Transition,
};
use crate::report::ConfigDriftReport;
use crate::telemetry::events::{DriftAcknowledged, DriftResolved};

/// Who asks: a token's name and role, and the client's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub source: IpAddr,
}

/// The state-changing requests of the admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    RequestAck {
        slug: String,
        reason: String,
    },
    Approve {
        id: String,
    },
    Clear {
        slug: String,
        reason: String,
    },
    Pause {
        reason: String,
        duration: Option<Duration>,
    },
    Resume,
}

/// Refused requests (401/403) from one source within one minute (§12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeniedMinute {
    pub source: IpAddr,
    pub minute_start_ms: i64,
    pub unauthorized: u64,
    pub forbidden: u64,
}

/// Why an admin request was not carried out; `status` is the HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("bot `{0}` is not in this agent's registry")]
    UnknownBot(String),
    #[error("no ack has id `{0}`")]
    UnknownAck(String),
    #[error(transparent)]
    Ack(#[from] AckError),
    #[error("bot `{0}` has no drift episode to clear")]
    NoEpisode(String),
    #[error("bot `{0}` has not been checked since the agent started; retry after the next check")]
    NotChecked(String),
    #[error("the agent's mode is off: it runs no checks")]
    Off,
    #[error("the action was not recorded: {0}")]
    State(#[from] StateError),
    #[error("the action was not recorded: the state write did not finish")]
    Interrupted,
}

impl AdminError {
    pub fn status(&self) -> u16 {
        match self {
            AdminError::UnknownBot(_) | AdminError::UnknownAck(_) => 404,
            AdminError::Ack(_)
            | AdminError::NoEpisode(_)
            | AdminError::NotChecked(_)
            | AdminError::Off => 409,
            AdminError::State(_) | AdminError::Interrupted => 500,
        }
    }
}

/// The last report of each bot of this agent, as JSON, by slug: what
/// `GET /api/v1/bots` answers without waiting for a check.
pub type ReportSnapshot = Arc<std::collections::BTreeMap<String, String>>;

/// The `tracing` target of audit records (through the OTel bridge as log records).
pub const AUDIT_TARGET: &str = "config_drift::audit";

/// How often audit retention runs. Retention is counted in days, so an hour is
/// fine-grained enough, and it keeps the walk over the chain off every check.
const AUDIT_PRUNE_EVERY_MS: i64 = 3_600_000;

impl Agent {
    /// Admin requests wait until the first check after start has settled: acks
    /// and clears need the bot's current report (mode `off` has none to wait for).
    pub fn ready(&self) -> bool {
        self.checked || self.mode() == Mode::Off
    }

    /// Carries out one admin request; the answer is the API's JSON body.
    pub async fn admin(
        &mut self,
        actor: &Actor,
        request: AdminRequest,
    ) -> Result<serde_json::Value, AdminError> {
        let now = crate::cli::now_ms();
        match request {
            AdminRequest::RequestAck { slug, reason } => {
                self.request_ack(actor, slug, reason, now).await
            }
            AdminRequest::Approve { id } => self.approve_ack(actor, &id, now).await,
            AdminRequest::Clear { slug, reason } => self.clear_bot(actor, slug, reason, now).await,
            AdminRequest::Pause { reason, duration } => {
                self.pause(actor, reason, duration, now).await
            }
            AdminRequest::Resume => self.resume(actor, now).await,
        }
    }

    /// A manual check ran for `actor`: its audit entry.
    pub async fn record_check(&mut self, actor: &Actor, result: &CheckResult) {
        let mut draft = draft(actor, AuditAction::Check, crate::cli::now_ms());
        draft.detail = serde_json::to_value(result).ok();
        if let Err(e) = self.write_admin(Vec::new(), PauseChange::Keep, draft).await {
            tracing::error!(error = %e, "The manual check's audit entry was not recorded.");
        }
    }

    /// Denied requests of one source and minute: one audit entry.
    pub async fn record_denied(&mut self, denied: DeniedMinute) {
        let draft = AuditDraft {
            at_ms: crate::cli::now_ms(),
            action: AuditAction::Denied,
            actor: String::new(),
            role: None,
            source: denied.source.to_string(),
            bot_slug: None,
            ack_id: None,
            reason: None,
            detail: Some(json!({
                "minute_start_ms": denied.minute_start_ms,
                "unauthorized": denied.unauthorized,
                "forbidden": denied.forbidden,
            })),
        };
        if let Err(e) = self.write_admin(Vec::new(), PauseChange::Keep, draft).await {
            tracing::error!(error = %e, "Denied requests were not recorded in the audit log.");
        }
    }

    /// `audit_retention_days` (§10): removes the entries past it, keeping an
    /// anchor, and logs the anchor so that a copy of it lives outside the
    /// database. Runs from the timer, at start and then hourly, in every mode.
    async fn prune_audit(&mut self, now_ms: i64) {
        let days = self.config().state.audit_retention_days;
        // Also after a failure: the next try is an hour away, not a spin.
        self.next_audit_prune_ms = now_ms.saturating_add(AUDIT_PRUNE_EVERY_MS);
        let cutoff_ms = now_ms.saturating_sub(i64::from(days) * 86_400_000);
        let store = Arc::clone(&self.store);
        let pruned =
            tokio::task::spawn_blocking(move || store.prune_audit(cutoff_ms, now_ms)).await;
        match pruned {
            Ok(Ok(Some(anchor))) => tracing::info!(
                target: AUDIT_TARGET,
                anchor_seq = anchor.seq,
                anchor_hash = %anchor.hash,
                anchor_at_ms = anchor.at_ms,
                retention_days = days,
                "Audit entries past retention were removed; the chain now verifies from this anchor."
            ),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                self.telemetry.metrics().inc_state_write_errors();
                tracing::error!(error = %e, "Audit entries past retention could not be removed; they are kept.");
            }
            Err(_) => {
                tracing::error!("Pruning the audit log did not finish; the entries are kept.")
            }
        }
    }

    /// When the loop must wake next for an ack or a pause falling due, or for
    /// audit retention (ms).
    pub fn next_timer_ms(&self) -> Option<i64> {
        let acks = self.states.values().filter_map(ack::next_due);
        let pause = self.pause.as_ref().and_then(|p| p.until_ms);
        let prune = self
            .audit_retention_on()
            .then_some(self.next_audit_prune_ms);
        acks.chain(pause).chain(prune).min()
    }

    fn audit_retention_on(&self) -> bool {
        self.config().state.audit_retention_days > 0
    }

    /// Ends whatever fell due: acks past their time, a pause past its `--for`;
    /// and prunes the audit log when that is due. Memory changes first, so a
    /// failed write cannot make the loop spin; the next check writes the states
    /// again.
    pub async fn on_timer(&mut self, now: i64) {
        if self.audit_retention_on() && now >= self.next_audit_prune_ms {
            self.prune_audit(now).await;
        }
        let mut updates = Vec::new();
        for (slug, state) in self.states.iter_mut() {
            let ended = ack::expire(state, now);
            if ended.is_empty() {
                continue;
            }
            // The gauge first: whoever reads the record must see the gauge agree.
            self.telemetry
                .metrics()
                .set_acknowledged(slug, ack::acknowledged(state));
            for a in &ended {
                log_ack_ended(a);
            }
            updates.push((slug.clone(), state.clone()));
        }
        let mut pause = PauseChange::Keep;
        if self.pause.as_ref().is_some_and(|p| p.is_over(now)) {
            self.pause = None;
            self.set_paused(false);
            tracing::info!("The pause ran out; the detector pages again.");
            pause = PauseChange::Remove;
        }
        if updates.is_empty() && pause == PauseChange::Keep {
            return;
        }
        if let Err(e) = self.write(updates, pause, None).await {
            tracing::error!(error = %e, "Ended acks or pause were not stored; the next check stores them.");
        }
    }

    /// Loads the stored pause at start (one that ran out while the agent was
    /// down is removed).
    pub(super) fn restore_pause(&mut self) -> Result<(), StateError> {
        let Some(p) = self.store.pause()? else {
            return Ok(());
        };
        if p.is_over(crate::cli::now_ms()) {
            self.store.write_admin(&[], &PauseChange::Remove, None)?;
            tracing::info!("The stored pause ran out while the agent was down.");
            return Ok(());
        }
        tracing::warn!(
            by = %p.by,
            reason = %p.reason,
            until_ms = p.until_ms,
            "The detector is paused: checks go on, alerts page nothing."
        );
        self.pause = Some(p);
        self.set_paused(true);
        Ok(())
    }

    async fn request_ack(
        &mut self,
        actor: &Actor,
        slug: String,
        reason: String,
        now: i64,
    ) -> Result<serde_json::Value, AdminError> {
        self.registered(&slug)?;
        let mut state = self.states.get(&slug).cloned().unwrap_or_default();
        let id = format!("ack-{}", hex::encode(rand::random::<[u8; 8]>()));
        let new = ack::request(
            &state,
            &slug,
            id,
            &actor.name,
            &reason,
            now,
            self.interval_ms(),
        )?;
        let answer = ack_json(&new);
        let mut d = draft(actor, AuditAction::AckRequest, now);
        d.bot_slug = Some(slug.clone());
        d.ack_id = Some(new.id.clone());
        d.reason = Some(reason);
        d.detail =
            Some(json!({ "episode_id": new.episode_id, "expires_at_ms": new.expires_at_ms }));
        state.acks.push(new);
        self.write_admin(vec![(slug.clone(), state.clone())], PauseChange::Keep, d)
            .await?;
        self.states.insert(slug, state);
        Ok(answer)
    }

    async fn approve_ack(
        &mut self,
        actor: &Actor,
        id: &str,
        now: i64,
    ) -> Result<serde_json::Value, AdminError> {
        let Some((slug, mut state)) = self
            .states
            .iter()
            .find(|(_, s)| s.acks.iter().any(|a| a.id == id))
            .map(|(slug, s)| (slug.clone(), s.clone()))
        else {
            return Err(AdminError::UnknownAck(id.to_owned()));
        };
        let snapshot = state.clone();
        let interval_ms = self.interval_ms();
        let Some(target) = state.acks.iter_mut().find(|a| a.id == id) else {
            return Err(AdminError::UnknownAck(id.to_owned()));
        };
        ack::approve(target, &snapshot, &actor.name, now, interval_ms)?;
        let approved = target.clone();
        let report = self
            .last_report(&slug)
            .ok_or_else(|| AdminError::NotChecked(slug.clone()))?;
        let mut d = draft(actor, AuditAction::AckApprove, now);
        d.bot_slug = Some(slug.clone());
        d.ack_id = Some(approved.id.clone());
        d.reason = Some(approved.reason.clone());
        d.detail = Some(json!({
            "requested_by": approved.requested_by,
            "expires_at_ms": approved.expires_at_ms,
        }));
        self.write_admin(vec![(slug.clone(), state.clone())], PauseChange::Keep, d)
            .await?;
        self.states.insert(slug.clone(), state);
        self.telemetry.metrics().set_acknowledged(&slug, true);
        DriftAcknowledged {
            report: &report,
            ack_id: &approved.id,
            requested_by: &approved.requested_by,
            approved_by: &actor.name,
            reason: &approved.reason,
            expires_at_ms: approved.expires_at_ms,
        }
        .emit(&self.telemetry);
        Ok(ack_json(&approved))
    }

    async fn clear_bot(
        &mut self,
        actor: &Actor,
        slug: String,
        reason: String,
        now: i64,
    ) -> Result<serde_json::Value, AdminError> {
        let bot = self.registered(&slug)?;
        let prior = self.states.get(&slug).cloned().unwrap_or_default();
        if prior.episode.is_none() {
            return Err(AdminError::NoEpisode(slug));
        }
        let report = self
            .last_report(&slug)
            .ok_or_else(|| AdminError::NotChecked(slug.clone()))?;
        let (mut state, transition) = crate::latch::clear(prior, now);
        let Some(Transition::Resolved {
            episode_id,
            started_ms,
            resolution_minutes,
            resolved_by,
        }) = transition
        else {
            return Err(AdminError::NoEpisode(slug));
        };
        let resolution = Resolution {
            episode_id: episode_id.clone(),
            started_ms,
            resolution_minutes,
            resolved_by,
            commit: None,
        };
        // Stored with the clear and forgotten once emitted, like a check's
        // RESOLVED (§9: at least once).
        state.unemitted.push(resolution.clone());
        let ended = ack::end_all(&mut state, AckEnd::Cleared, now);
        let mut d = draft(actor, AuditAction::Clear, now);
        d.bot_slug = Some(slug.clone());
        d.reason = Some(reason);
        d.detail = Some(json!({
            "episode_id": episode_id,
            "resolution_minutes": resolution_minutes,
        }));
        self.write_admin(vec![(slug.clone(), state.clone())], PauseChange::Keep, d)
            .await?;
        self.states.insert(slug.clone(), state);
        self.telemetry.metrics().set_acknowledged(&slug, false);
        for a in &ended {
            log_ack_ended(a);
        }
        DriftResolved {
            report: &report,
            episode_id: &resolution.episode_id,
            resolution_minutes,
            resolved_by,
            commit: None,
        }
        .emit(&self.telemetry);
        self.forget_emitted(std::slice::from_ref(&bot)).await;
        Ok(json!({
            "bot_slug": slug,
            "episode_id": resolution.episode_id,
            "resolved_by": resolved_by.as_str(),
            "resolution_minutes": resolution_minutes,
        }))
    }

    async fn pause(
        &mut self,
        actor: &Actor,
        reason: String,
        duration: Option<Duration>,
        now: i64,
    ) -> Result<serde_json::Value, AdminError> {
        let until_ms =
            duration.map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        let pause = Pause {
            reason: reason.clone(),
            by: actor.name.clone(),
            since_ms: now,
            until_ms,
        };
        let mut d = draft(actor, AuditAction::Pause, now);
        d.reason = Some(reason);
        d.detail = Some(json!({ "until_ms": until_ms }));
        self.write_admin(Vec::new(), PauseChange::Set(pause.clone()), d)
            .await?;
        tracing::warn!(
            by = %pause.by,
            reason = %pause.reason,
            until_ms = pause.until_ms,
            "The detector is paused: checks go on, alerts page nothing."
        );
        let answer = pause_json(Some(&pause));
        self.pause = Some(pause);
        self.set_paused(true);
        Ok(answer)
    }

    async fn resume(&mut self, actor: &Actor, now: i64) -> Result<serde_json::Value, AdminError> {
        let mut d = draft(actor, AuditAction::Resume, now);
        d.detail = Some(json!({ "was_paused": self.pause.is_some() }));
        self.write_admin(Vec::new(), PauseChange::Remove, d).await?;
        if self.pause.take().is_some() {
            tracing::info!(by = %actor.name, "The detector was resumed; alerts page again.");
        }
        self.set_paused(false);
        Ok(pause_json(None))
    }

    fn set_paused(&self, paused: bool) {
        self.status.set_paused(paused);
        self.telemetry.metrics().set_paused(paused);
    }

    fn registered(&self, slug: &str) -> Result<crate::config::Bot, AdminError> {
        self.bots
            .iter()
            .find(|b| b.slug.as_str() == slug)
            .cloned()
            .ok_or_else(|| AdminError::UnknownBot(slug.to_owned()))
    }

    fn interval_ms(&self) -> i64 {
        i64::try_from(self.interval().as_millis()).unwrap_or(i64::MAX)
    }

    /// The bot's report in the last finished check.
    fn last_report(&self, slug: &str) -> Option<ConfigDriftReport> {
        let view = self.views.borrow();
        view.as_ref()?
            .reports
            .iter()
            .find(|r| r.bot_slug.as_deref() == Some(slug))
            .cloned()
    }

    /// Writes an action with its audit entry, then emits the entry's record.
    async fn write_admin(
        &self,
        updates: Vec<(String, BotState)>,
        pause: PauseChange,
        draft: AuditDraft,
    ) -> Result<(), AdminError> {
        if let Some(entry) = self.write(updates, pause, Some(draft)).await? {
            emit_audit(&entry);
        }
        Ok(())
    }

    async fn write(
        &self,
        updates: Vec<(String, BotState)>,
        pause: PauseChange,
        draft: Option<AuditDraft>,
    ) -> Result<Option<AuditEntry>, AdminError> {
        let store = Arc::clone(&self.store);
        let written =
            tokio::task::spawn_blocking(move || store.write_admin(&updates, &pause, draft)).await;
        let result = match written {
            Ok(Ok(entry)) => return Ok(entry),
            Ok(Err(e)) => AdminError::State(e),
            Err(_) => AdminError::Interrupted,
        };
        self.telemetry.metrics().inc_state_write_errors();
        Err(result)
    }
}

fn draft(actor: &Actor, action: AuditAction, now: i64) -> AuditDraft {
    AuditDraft {
        at_ms: now,
        action,
        actor: actor.name.clone(),
        role: Some(actor.role.as_str().to_owned()),
        source: actor.source.to_string(),
        bot_slug: None,
        ack_id: None,
        reason: None,
        detail: None,
    }
}

/// The audit entry as a log record (§12): what, who, from where.
fn emit_audit(entry: &AuditEntry) {
    let d = &entry.draft;
    tracing::info!(
        target: AUDIT_TARGET,
        audit_seq = entry.seq,
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

pub(super) fn log_ack_ended(a: &Ack) {
    tracing::info!(
        bot_slug = %a.bot_slug,
        ack_id = %a.id,
        ended_by = a.ended_by.map_or("", AckEnd::as_str),
        "Ack lapsed."
    );
}

/// An ack as the API shows it (without its internal fingerprint).
pub fn ack_json(a: &Ack) -> serde_json::Value {
    let mut v = json!({
        "id": a.id,
        "bot_slug": a.bot_slug,
        "status": a.status.as_str(),
        "requested_by": a.requested_by,
        "requested_at_ms": a.requested_at_ms,
        "reason": a.reason,
        "episode_id": a.episode_id,
        "expires_at_ms": a.expires_at_ms,
    });
    if let (Some(by), Some(at)) = (&a.approved_by, a.approved_at_ms) {
        v["approved_by"] = json!(by);
        v["approved_at_ms"] = json!(at);
    }
    v
}

fn pause_json(p: Option<&Pause>) -> serde_json::Value {
    match p {
        Some(p) => json!({
            "paused": true,
            "reason": p.reason,
            "by": p.by,
            "since_ms": p.since_ms,
            "until_ms": p.until_ms,
        }),
        None => json!({ "paused": false }),
    }
}
