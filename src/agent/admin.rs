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
use crate::latch::ack;
use crate::latch::store::PauseChange;
use crate::latch::{Ack, AckEnd, AckError};
use crate::latch::{
    AuditAction, AuditDraft, AuditEntry, BotState, Pause, Resolution, ResolvedBy, StateError,
    Transition,
};
use crate::report::ConfigDriftReport;
use crate::telemetry::events::{
    AckLapsed, AdminActionRecorded, AuditEntryKind, AuditNotRecorded, AuditPruneFailed,
    AuditPruned, DriftAcknowledged, DriftResolved, PauseRanOut, Paused, Resumed, TimersNotStored,
};

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

/// What a carried-out admin request did; the API writes it as its answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminOutcome {
    /// An ack requested or approved, as it now stands.
    Ack(Ack),
    /// A drift episode cleared.
    Cleared(Cleared),
    /// The detector's pause after a pause or a resume (`None`: not paused).
    Pause(Option<Pause>),
}

/// The episode a clear resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Cleared {
    pub bot_slug: String,
    pub episode_id: String,
    pub resolved_by: ResolvedBy,
    pub resolution_minutes: f64,
}

/// Why an admin request was not carried out (the API maps each to its status).
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

/// The last report of each bot of this agent, as JSON, by slug: what
/// `GET /api/v1/bots` answers without waiting for a check.
pub type ReportSnapshot = Arc<std::collections::BTreeMap<String, String>>;

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
    ) -> Result<AdminOutcome, AdminError> {
        let now = crate::time::now_ms();
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
        let mut draft = draft(actor, AuditAction::Check, crate::time::now_ms());
        draft.detail = serde_json::to_value(result).ok();
        if let Err(e) = self.write_admin(Vec::new(), PauseChange::Keep, draft).await {
            AuditNotRecorded {
                kind: AuditEntryKind::ManualCheck,
                error: &e,
            }
            .emit();
        }
    }

    /// Denied requests of one source and minute: one audit entry.
    pub async fn record_denied(&mut self, denied: DeniedMinute) {
        let draft = AuditDraft {
            at_ms: crate::time::now_ms(),
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
            AuditNotRecorded {
                kind: AuditEntryKind::Denied,
                error: &e,
            }
            .emit();
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
            Ok(Ok(Some(anchor))) => AuditPruned {
                anchor_seq: anchor.seq,
                anchor_hash: &anchor.hash,
                anchor_at_ms: anchor.at_ms,
                retention_days: days,
            }
            .emit(),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => AuditPruneFailed::Write(&e).emit(&self.telemetry),
            Err(_) => AuditPruneFailed::Interrupted.emit(&self.telemetry),
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
                AckLapsed { ack: a }.emit();
            }
            updates.push((slug.clone(), state.clone()));
        }
        let mut pause = PauseChange::Keep;
        if self.pause.as_ref().is_some_and(|p| p.is_over(now)) {
            self.pause = None;
            self.set_paused(false);
            PauseRanOut::Now.emit();
            pause = PauseChange::Remove;
        }
        if updates.is_empty() && pause == PauseChange::Keep {
            return;
        }
        if let Err(e) = self.write(updates, pause, None).await {
            TimersNotStored { error: &e }.emit();
        }
    }

    /// Loads the stored pause at start (one that ran out while the agent was
    /// down is removed).
    pub(super) fn restore_pause(&mut self) -> Result<(), StateError> {
        let Some(p) = self.store.pause()? else {
            return Ok(());
        };
        if p.is_over(crate::time::now_ms()) {
            self.store.write_admin(&[], &PauseChange::Remove, None)?;
            PauseRanOut::WhileDown.emit();
            return Ok(());
        }
        Paused { pause: &p }.emit();
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
    ) -> Result<AdminOutcome, AdminError> {
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
        let answer = AdminOutcome::Ack(new.clone());
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
    ) -> Result<AdminOutcome, AdminError> {
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
        Ok(AdminOutcome::Ack(approved))
    }

    async fn clear_bot(
        &mut self,
        actor: &Actor,
        slug: String,
        reason: String,
        now: i64,
    ) -> Result<AdminOutcome, AdminError> {
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
            AckLapsed { ack: a }.emit();
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
        Ok(AdminOutcome::Cleared(Cleared {
            bot_slug: slug,
            episode_id: resolution.episode_id,
            resolved_by,
            resolution_minutes,
        }))
    }

    async fn pause(
        &mut self,
        actor: &Actor,
        reason: String,
        duration: Option<Duration>,
        now: i64,
    ) -> Result<AdminOutcome, AdminError> {
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
        Paused { pause: &pause }.emit();
        self.pause = Some(pause.clone());
        self.set_paused(true);
        Ok(AdminOutcome::Pause(Some(pause)))
    }

    async fn resume(&mut self, actor: &Actor, now: i64) -> Result<AdminOutcome, AdminError> {
        let mut d = draft(actor, AuditAction::Resume, now);
        d.detail = Some(json!({ "was_paused": self.pause.is_some() }));
        self.write_admin(Vec::new(), PauseChange::Remove, d).await?;
        if self.pause.take().is_some() {
            Resumed { by: &actor.name }.emit();
        }
        self.set_paused(false);
        Ok(AdminOutcome::Pause(None))
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
            AdminActionRecorded { entry: &entry }.emit();
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
