//! One check of the agent, in the order §9 requires: evaluate (the only part a
//! shutdown may cut short), latch every report, store the new states (flushed),
//! then emit metrics, log records and the check span, and only then forget the
//! RESOLVED records just emitted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{Agent, Trigger};
use crate::check::{CheckOutcome, Watched};
use crate::config::Bot;
use crate::latch::{BotState, Observed, Resolution, Transition};
use crate::report::{ConfigDriftReport, Status, Tally};
use crate::telemetry::events::{
    AckLapsed, BotChecked, BotLeftRegistry, CheckCompleted, DriftDetected, DriftResolved,
    DriftUnknown, RepoUnreadable, RepoWarning, SeverityClass, StateNotFlushed,
};
use crate::telemetry::metrics::{BotSeries, CheckSummary, RepoFetch};
use crate::telemetry::spans::CheckSpan;

/// What one check found: the answer of a manual check (§12 `POST /check`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub checked_at_ms: i64,
    pub bots: usize,
    pub drifting: usize,
    pub unknown: usize,
    pub commit: Option<String>,
    pub duration_ms: u64,
    /// §8, the state flush included.
    #[serde(skip)]
    pub successful: bool,
}

/// A finished check as the rest of the process sees it (the admin API's last
/// reports, the demo's narration): published after its telemetry went out.
#[derive(Debug)]
pub struct CheckView {
    pub result: CheckResult,
    /// As emitted (latched), in slug order.
    pub reports: Vec<ConfigDriftReport>,
    /// Episodes this check ended: (bot slug, resolution).
    pub resolved: Vec<(String, Resolution)>,
}

/// A check evaluated but not yet latched, stored or emitted.
pub struct Evaluation {
    outcome: CheckOutcome,
    bots: Vec<Bot>,
}

impl Agent {
    /// One whole check, start to end.
    pub async fn check(&mut self, trigger: Trigger) -> CheckResult {
        let evaluation = self.evaluate(crate::time::now_ms()).await;
        self.settle(evaluation, trigger).await
    }

    /// Re-reads the registry and evaluates every bot: no state is touched and
    /// nothing is emitted, so dropping this future (on shutdown) loses nothing.
    pub async fn evaluate(&mut self, now_ms: i64) -> Evaluation {
        self.reread_registry();
        let watched: Watched = self
            .bots
            .iter()
            .filter_map(|bot| {
                let episode = self.states.get(bot.slug.as_str())?.episode.as_ref()?;
                Some((
                    bot.slug.to_string(),
                    episode.fields.keys().cloned().collect(),
                ))
            })
            .collect();
        let bots = self.bots.clone();
        let outcome = self
            .checker
            .run_watching(&bots, now_ms, Arc::new(watched))
            .await;
        Evaluation { outcome, bots }
    }

    /// Latches, stores and emits an evaluated check. Runs to the end once begun:
    /// state and telemetry are never cut off mid-write (§8).
    pub async fn settle(&mut self, evaluation: Evaluation, trigger: Trigger) -> CheckResult {
        let Evaluation { outcome, bots } = evaluation;
        let evaluated_ok = outcome.successful();
        let CheckOutcome {
            checked_at_ms: now_ms,
            mut reports,
            commit,
            repo_failure,
            budget_exhausted,
            fetch_durations,
            duration: eval_duration,
            observed,
            warnings,
        } = outcome;
        for warning in &warnings {
            RepoWarning { warning }.emit();
        }
        let started = std::time::Instant::now();

        let no_observation = Observed::new();
        let mut updates: Vec<(String, BotState)> = Vec::with_capacity(reports.len());
        let mut needs_commit: Vec<Bot> = Vec::new();
        let mut ended_acks = Vec::new();
        for (report, bot) in reports.iter_mut().zip(&bots) {
            let slug = bot.slug.to_string();
            let prior = self.states.remove(&slug).unwrap_or_default();
            let seen = observed.get(&slug).unwrap_or(&no_observation);
            let (mut state, transitions) = crate::latch::advance(prior, report, seen, now_ms);
            // Acks (§9): a changed drift ends them at any check, a scheduled
            // check that started after the approval ends an active one.
            let ended = crate::latch::ack::after_check(
                &mut state,
                trigger == Trigger::Scheduled,
                now_ms,
                crate::time::now_ms(),
            );
            ended_acks.extend(ended);
            crate::latch::ack::prune(&mut state, now_ms);
            for t in transitions {
                match t {
                    Transition::Started { episode_id } => {
                        tracing::debug!(bot_slug = %slug, episode_id, "Drift episode started.");
                    }
                    Transition::Resolved {
                        episode_id,
                        started_ms,
                        resolution_minutes,
                        resolved_by,
                    } => {
                        if resolved_by.committed_moved() {
                            needs_commit.push(bot.clone());
                        }
                        state.unemitted.push(Resolution {
                            episode_id,
                            started_ms,
                            resolution_minutes,
                            resolved_by,
                            commit: None,
                        });
                    }
                }
            }
            updates.push((slug.clone(), state.clone()));
            self.states.insert(slug, state);
        }
        if let (false, Some(commit)) = (needs_commit.is_empty(), commit.as_deref()) {
            let found = self.checker.last_changes(&needs_commit, commit).await;
            for (slug, state) in &mut updates {
                let Some(change) = found.get(slug.as_str()) else {
                    continue;
                };
                for r in state
                    .unemitted
                    .iter_mut()
                    .filter(|r| r.commit.is_none() && r.resolved_by.committed_moved())
                {
                    r.commit = Some(change.clone());
                }
                if let Some(kept) = self.states.get_mut(slug.as_str()) {
                    kept.unemitted.clone_from(&state.unemitted);
                }
            }
        }
        let deletes = self.retire_removed(&bots, now_ms, &mut updates);

        let stored = self.store_states(updates, deletes).await;
        let successful = evaluated_ok && stored;
        let duration = eval_duration + started.elapsed();
        let ended_at_ms = now_ms + duration.as_millis() as i64;

        self.emit(
            &reports,
            &bots,
            &EmitCheck {
                now_ms,
                ended_at_ms,
                duration,
                successful,
                budget_exhausted,
                repo: match &repo_failure {
                    None => RepoFetch::Fetched { at_ms: now_ms },
                    Some(f) if f.is_fetch_error() => RepoFetch::Failed,
                    Some(_) => RepoFetch::Skipped,
                },
                fetch_durations: &fetch_durations,
                commit: commit.as_deref(),
            },
        );
        // Logged once stored and emitted, so the record and the gauge agree.
        for a in &ended_acks {
            AckLapsed { ack: a }.emit();
        }
        let resolved: Vec<(String, Resolution)> = bots
            .iter()
            .filter_map(|b| Some((b.slug.as_str(), self.states.get(b.slug.as_str())?)))
            .flat_map(|(slug, state)| {
                state
                    .unemitted
                    .iter()
                    .map(move |r| (slug.to_owned(), r.clone()))
            })
            .collect();
        self.forget_emitted(&bots).await;
        if successful {
            self.status.record_success(ended_at_ms);
        }
        if let Some(f) = &repo_failure {
            RepoUnreadable {
                reason: f.reason.as_str(),
                detail: &f.detail,
            }
            .emit();
        }
        let tally = Tally::of(&reports);
        let result = CheckResult {
            checked_at_ms: now_ms,
            bots: reports.len(),
            drifting: tally.drift,
            unknown: tally.unknown,
            commit,
            duration_ms: duration.as_millis() as u64,
            successful,
        };
        tracing::debug!(?trigger, ?result, "Check done.");
        self.reports.send_replace(Arc::new(
            reports
                .iter()
                .filter_map(|r| Some((r.bot_slug.clone()?, r.to_json_line())))
                .collect(),
        ));
        self.checked = true;
        self.views.send_replace(Some(Arc::new(CheckView {
            result: result.clone(),
            reports,
            resolved,
        })));
        result
    }

    /// Bots no longer in the registry keep their state 24 h (§9), then expire.
    fn retire_removed(
        &mut self,
        bots: &[Bot],
        now_ms: i64,
        updates: &mut Vec<(String, BotState)>,
    ) -> Vec<String> {
        let registered: HashSet<&str> = bots.iter().map(|b| b.slug.as_str()).collect();
        let mut deletes = Vec::new();
        for (slug, state) in self.states.iter_mut() {
            if registered.contains(slug.as_str()) {
                continue;
            }
            if crate::latch::expired(state, now_ms) {
                deletes.push(slug.clone());
            } else if state.removed_at_ms.is_none() {
                crate::latch::mark_removed(state, now_ms);
                BotLeftRegistry { bot_slug: slug }.emit();
                updates.push((slug.clone(), state.clone()));
            }
        }
        for slug in &deletes {
            self.states.remove(slug);
        }
        deletes
    }

    /// Writes and flushes; a failure is counted and logged, and the check is
    /// then unsuccessful (§9), but its telemetry still goes out.
    async fn store_states(&self, updates: Vec<(String, BotState)>, deletes: Vec<String>) -> bool {
        let store = Arc::clone(&self.store);
        let written =
            tokio::task::spawn_blocking(move || store.write_check(&updates, &deletes)).await;
        let error = match written {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the state write did not finish: {e}"),
        };
        self.telemetry.metrics().inc_state_write_errors();
        StateNotFlushed { error: &error }.emit();
        false
    }

    fn emit(&self, reports: &[ConfigDriftReport], bots: &[Bot], check: &EmitCheck<'_>) {
        let t = &self.telemetry;
        let series: Vec<BotSeries> = reports
            .iter()
            .zip(bots)
            .map(|(report, bot)| {
                let state = self.states.get(bot.slug.as_str());
                let since = state.and_then(|s| s.episode.as_ref()).map(|e| e.started_ms);
                let acknowledged = state.is_some_and(crate::latch::ack::acknowledged);
                BotSeries::from_report(report, since, acknowledged)
            })
            .collect();
        t.metrics().publish_check(&CheckSummary {
            bots: &series,
            duration: check.duration,
            ended_at_ms: check.ended_at_ms,
            successful: check.successful,
            budget_exceeded: check.budget_exhausted,
            repo: check.repo,
            fetch_durations: check.fetch_durations,
        });

        let interval_ms = self.interval().as_millis() as i64;
        for ((report, bot), series) in reports.iter().zip(bots).zip(&series) {
            match report.status {
                Status::Drift => DriftDetected {
                    report,
                    severity_class: SeverityClass::for_detected(
                        self.mode(),
                        series.episode_since_ms.unwrap_or(check.now_ms),
                        check.now_ms,
                        interval_ms,
                    ),
                }
                .emit(t),
                Status::Unknown => DriftUnknown { report }.emit(t),
                Status::InSync => {}
            }
            BotChecked { report }.emit();
            let Some(state) = self.states.get(bot.slug.as_str()) else {
                continue;
            };
            for r in &state.unemitted {
                DriftResolved {
                    report,
                    episode_id: &r.episode_id,
                    resolution_minutes: r.resolution_minutes,
                    resolved_by: r.resolved_by,
                    commit: r.commit.as_ref(),
                }
                .emit(t);
            }
        }

        let committed_ref = self.config.repo.branch.as_str();
        CheckSpan {
            checked_at_ms: check.now_ms,
            duration: check.duration,
            reports,
            committed_ref: Some(committed_ref),
            commit: check.commit,
            chain_head: None,
        }
        .emit(t);
        let tally = Tally::of(reports);
        CheckCompleted {
            bots: reports.len(),
            drifting: tally.drift,
            unknown: tally.unknown,
            commit: check.commit,
            chain_head: None,
            duration_ms: check.duration.as_millis() as u64,
            successful: check.successful,
        }
        .emit(t);
    }

    /// RESOLVED records just emitted are dropped from the state. Should this
    /// write fail, the next check emits them again: at least once, as §9 asks.
    pub(super) async fn forget_emitted(&mut self, bots: &[Bot]) {
        let mut updates = Vec::new();
        for bot in bots {
            if let Some(state) = self.states.get_mut(bot.slug.as_str())
                && !state.unemitted.is_empty()
            {
                state.unemitted.clear();
                updates.push((bot.slug.to_string(), state.clone()));
            }
        }
        if !updates.is_empty() {
            self.store_states(updates, Vec::new()).await;
        }
    }
}

/// Check-level facts `emit` needs beside the reports.
struct EmitCheck<'a> {
    now_ms: i64,
    ended_at_ms: i64,
    duration: Duration,
    successful: bool,
    budget_exhausted: bool,
    repo: RepoFetch,
    fetch_durations: &'a [Duration],
    commit: Option<&'a str>,
}
