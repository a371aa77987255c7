//! The latch's pure core: a bot's prior state, one check's report and the time of
//! that check give the new state and the episode transitions (§7, §9).
//!
//! Owns the rules for `since_ts_ms`, `episode_id`, `latched` drifts and
//! `resolved_by`. Must not do I/O, read a clock or emit anything: `now_ms` is an
//! argument (the agent passes the check's `checked_at_ms`, so latch times agree
//! with the reports), storage is `store.rs`'s job and telemetry the caller's.
//!
//! The state it works on is `record.rs`'s (what is stored); the ack rules are
//! `ack.rs`'s, and this file does not use them. `Observed` and `Transition`
//! are this book's input and output, never stored.

use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;

use super::record::{BotState, Episode, LatchedField, ResolvedBy};
use crate::report::{ConfigDriftReport, Drift, Status};

/// How long a bot removed from the registry keeps its entry (and episode) (§9).
pub const REMOVED_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

impl ResolvedBy {
    // A rule of this book (which moves name which end), so it lives here, not
    // with the record.
    fn from_moves(committed: bool, running: bool) -> ResolvedBy {
        match (committed, running) {
            (true, false) => ResolvedBy::Commit,
            (false, true) => ResolvedBy::Revert,
            (true, true) => ResolvedBy::Both,
            (false, false) => ResolvedBy::Config,
        }
    }
}

/// An episode boundary, for the caller to emit after the new state is stored.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    Started {
        episode_id: String,
    },
    Resolved {
        episode_id: String,
        started_ms: i64,
        resolution_minutes: f64,
        resolved_by: ResolvedBy,
    },
}

/// Current canonical values (JSON text) of latched fields on each side, as
/// observed by the check that ran: `(running, committed)`, `None` for an absent
/// side. A field absent from the map could not be observed (e.g. it is ignored
/// now) and counts as neither side having moved. Only fields that are latched but
/// not in the report's drift list are looked up; drifting fields take their
/// values from the report.
pub type Observed = HashMap<String, (Option<String>, Option<String>)>;

/// Applies one check's report to a bot's state.
///
/// Rewrites `report` as the agent emits it: `episode_id` while in an episode,
/// each drift's `since_ts_ms` from the latch, and on UNKNOWN the latched drifts
/// (`latched: true`) in place of whatever the check left. The new state's
/// `last_report_json` is the rewritten report. A report for a bot marked removed
/// means it is back in the registry. `report.bot_slug` names the episode; the
/// agent's reports always carry one.
pub fn advance(
    mut state: BotState,
    report: &mut ConfigDriftReport,
    observed: &Observed,
    now_ms: i64,
) -> (BotState, Vec<Transition>) {
    let mut transitions = Vec::new();
    state.last_seen_ms = now_ms;
    state.removed_at_ms = None;
    state.last_status = Some(report.status);
    match report.status {
        Status::Drift => {
            let episode = state.episode.get_or_insert_with(|| {
                let id = format!("{}-{now_ms}", report.bot_slug.as_deref().unwrap_or(""));
                transitions.push(Transition::Started {
                    episode_id: id.clone(),
                });
                Episode {
                    id,
                    started_ms: now_ms,
                    fields: BTreeMap::new(),
                }
            });
            latch_drifts(episode, &mut report.drifts, observed, now_ms);
            report.episode_id = Some(episode.id.clone());
        }
        Status::InSync => {
            if let Some(episode) = state.episode.take() {
                transitions.push(resolve(episode, observed, now_ms));
            }
            report.episode_id = None;
        }
        Status::Unknown => {
            // UNKNOWN never clears nor extends the latch: the report shows it as is.
            report.drifts.clear();
            report.episode_id = None;
            if let Some(episode) = &state.episode {
                report.drifts.extend(
                    episode
                        .drifting()
                        .map(|(field, latched)| latched_drift(field, latched)),
                );
                report.episode_id = Some(episode.id.clone());
            }
        }
    }
    state.last_report_json = Some(report_json(state.last_report_json.take(), report));
    (state, transitions)
}

/// An admin's force-clear (§9): ends the episode as `cleared`. If the drift is
/// still there at the next check, `advance` starts a new episode.
pub fn clear(mut state: BotState, now_ms: i64) -> (BotState, Option<Transition>) {
    let transition = state.episode.take().map(|episode| Transition::Resolved {
        resolution_minutes: minutes_since(episode.started_ms, now_ms),
        started_ms: episode.started_ms,
        episode_id: episode.id,
        resolved_by: ResolvedBy::Cleared,
    });
    (state, transition)
}

/// The bot left the registry: its entry and episode are kept, without RESOLVED,
/// for `REMOVED_RETENTION_MS`. A bot already removed keeps its first removal time.
pub fn mark_removed(state: &mut BotState, now_ms: i64) {
    state.removed_at_ms.get_or_insert(now_ms);
}

/// The bot is back in the registry: its episode goes on where it was.
pub fn mark_returned(state: &mut BotState) {
    state.removed_at_ms = None;
}

/// True once a removed bot's entry has been kept for `REMOVED_RETENTION_MS`.
pub fn expired(state: &BotState, now_ms: i64) -> bool {
    state
        .removed_at_ms
        .is_some_and(|at| now_ms.saturating_sub(at) >= REMOVED_RETENTION_MS)
}

/// Folds a DRIFT report's drift list into the episode and sets each drift's
/// `since_ts_ms`.
fn latch_drifts(episode: &mut Episode, drifts: &mut [Drift], observed: &Observed, now_ms: i64) {
    // Whatever the report does not list is back in sync; the loop below re-marks
    // the rest.
    for field in episode.fields.values_mut() {
        field.position = u32::MAX;
    }
    for (i, drift) in drifts.iter_mut().enumerate() {
        let running = raw(&drift.running);
        let committed = raw(&drift.committed);
        let position = u32::try_from(i).unwrap_or(u32::MAX - 1);
        match episode.fields.get_mut(drift.field.as_str()) {
            Some(field) => {
                if !field.drifting {
                    // Back in sync earlier in this episode, drifting again: a new
                    // spell with its own start and starting values.
                    field.drifting = true;
                    field.since_ts_ms = now_ms;
                    set(&mut field.first_running, running);
                    set(&mut field.first_committed, committed);
                }
                field.kind = drift.kind;
                set(&mut field.running, running);
                set(&mut field.committed, committed);
                set(&mut field.delta, raw(&drift.delta));
                field.position = position;
                drift.since_ts_ms = field.since_ts_ms;
            }
            None => {
                episode.fields.insert(
                    drift.field.clone(),
                    LatchedField {
                        since_ts_ms: now_ms,
                        kind: drift.kind,
                        running: running.map(str::to_owned),
                        committed: committed.map(str::to_owned),
                        delta: raw(&drift.delta).map(str::to_owned),
                        first_running: running.map(str::to_owned),
                        first_committed: committed.map(str::to_owned),
                        drifting: true,
                        position,
                        committed_moved: false,
                        running_moved: false,
                    },
                );
                drift.since_ts_ms = now_ms;
            }
        }
        drift.latched = false;
    }
    for (name, field) in &mut episode.fields {
        if field.drifting && field.position == u32::MAX {
            settle_field(name, field, observed);
        }
    }
}

/// A field went back in sync: records which sides moved since its drift began.
fn settle_field(name: &str, field: &mut LatchedField, observed: &Observed) {
    field.drifting = false;
    if let Some((running, committed)) = observed.get(name) {
        field.running_moved |= *running != field.first_running;
        field.committed_moved |= *committed != field.first_committed;
        field.running.clone_from(running);
        field.committed.clone_from(committed);
    }
    field.delta = None;
}

fn resolve(mut episode: Episode, observed: &Observed, now_ms: i64) -> Transition {
    let (mut committed, mut running) = (false, false);
    for (name, field) in &mut episode.fields {
        if field.drifting {
            settle_field(name, field, observed);
        }
        committed |= field.committed_moved;
        running |= field.running_moved;
    }
    Transition::Resolved {
        resolution_minutes: minutes_since(episode.started_ms, now_ms),
        started_ms: episode.started_ms,
        episode_id: episode.id,
        resolved_by: ResolvedBy::from_moves(committed, running),
    }
}

/// A drift rebuilt from the latch for an UNKNOWN report.
fn latched_drift(field: &str, latched: &LatchedField) -> Drift {
    // Stored values were canonical JSON when latched (and are checksummed at
    // rest); one that no longer parses is left out rather than shown wrong.
    let value = |v: &Option<String>| {
        v.as_ref()
            .and_then(|s| RawValue::from_string(s.clone()).ok())
    };
    Drift {
        field: field.to_owned(),
        kind: latched.kind,
        running: value(&latched.running),
        committed: value(&latched.committed),
        delta: value(&latched.delta),
        since_ts_ms: latched.since_ts_ms,
        latched: true,
    }
}

fn minutes_since(started_ms: i64, now_ms: i64) -> f64 {
    now_ms.saturating_sub(started_ms) as f64 / 60_000.0
}

fn raw(v: &Option<Box<RawValue>>) -> Option<&str> {
    v.as_deref().map(RawValue::get)
}

/// Overwrites a stored value, reusing its buffer: most checks see the same values
/// again, and this runs for every drifting field of every bot.
fn set(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(old), Some(new)) if old == new => {}
        (Some(old), Some(new)) => {
            old.clear();
            old.push_str(new);
        }
        (_, None) => *slot = None,
        (None, Some(new)) => *slot = Some(new.to_owned()),
    }
}

/// The report as JSON text, written into the previous report's buffer.
fn report_json(previous: Option<String>, report: &ConfigDriftReport) -> String {
    let mut buf = previous.map(String::into_bytes).unwrap_or_default();
    buf.clear();
    match serde_json::to_writer(&mut buf, report) {
        // serde_json writes only UTF-8; the fallback is never taken.
        Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| report.to_json_line()),
        Err(_) => report.to_json_line(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DriftKind, UnknownReason};

    const SLUG: &str = "risk.killswitch";

    fn value(v: Option<&str>) -> Option<Box<RawValue>> {
        v.map(|s| RawValue::from_string(s.to_owned()).unwrap())
    }

    fn drift(field: &str, running: Option<&str>, committed: Option<&str>) -> Drift {
        let kind = match (running, committed) {
            (None, _) => DriftKind::MissingInRunning,
            (_, None) => DriftKind::MissingInCommitted,
            _ => DriftKind::Changed,
        };
        Drift {
            field: field.into(),
            kind,
            running: value(running),
            committed: value(committed),
            delta: None,
            since_ts_ms: -1,
            latched: false,
        }
    }

    fn report(now: i64, drifts: Vec<Drift>) -> ConfigDriftReport {
        let mut r = ConfigDriftReport::new(Some(SLUG.into()), now);
        r.drifts = drifts;
        r.settle();
        r
    }

    fn unknown(now: i64) -> ConfigDriftReport {
        let mut r = ConfigDriftReport::new(Some(SLUG.into()), now);
        r.set_unknown(UnknownReason::RuntimeTimeout, "no answer within 250 ms");
        r
    }

    fn observed(fields: &[(&str, Option<&str>, Option<&str>)]) -> Observed {
        fields
            .iter()
            .map(|(f, r, c)| {
                (
                    (*f).to_owned(),
                    (r.map(str::to_owned), c.map(str::to_owned)),
                )
            })
            .collect()
    }

    /// Runs one check; returns the emitted report and the transitions.
    fn step(
        state: &mut BotState,
        mut r: ConfigDriftReport,
        obs: &Observed,
    ) -> (ConfigDriftReport, Vec<Transition>) {
        let now = r.checked_at_ms;
        let (next, transitions) = advance(std::mem::take(state), &mut r, obs, now);
        *state = next;
        (r, transitions)
    }

    fn since(r: &ConfigDriftReport, field: &str) -> i64 {
        r.drifts
            .iter()
            .find(|d| d.field == field)
            .unwrap()
            .since_ts_ms
    }

    fn resolved_by(transitions: &[Transition]) -> ResolvedBy {
        match transitions {
            [Transition::Resolved { resolved_by, .. }] => *resolved_by,
            other => panic!("expected one Resolved, got {other:?}"),
        }
    }

    /// Drift on `a` (running 10, committed 12) at t=1000, then IN_SYNC at t=61000
    /// observing `a` as given.
    fn resolve_a(running: Option<&str>, committed: Option<&str>) -> ResolvedBy {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("10"), Some("12"))]),
            &Observed::new(),
        );
        let (_, t) = step(
            &mut s,
            report(61_000, vec![]),
            &observed(&[("a", running, committed)]),
        );
        resolved_by(&t)
    }

    #[test]
    fn first_drift_starts_an_episode_named_after_slug_and_time() {
        let mut s = BotState::default();
        let (r, t) = step(
            &mut s,
            report(1000, vec![drift("a", Some("10"), Some("12"))]),
            &Observed::new(),
        );
        let id = format!("{SLUG}-1000");
        assert_eq!(
            t,
            vec![Transition::Started {
                episode_id: id.clone()
            }]
        );
        assert_eq!(r.episode_id.as_deref(), Some(id.as_str()));
        assert_eq!(since(&r, "a"), 1000);
        assert_eq!(s.episode.as_ref().unwrap().started_ms, 1000);
        assert_eq!(s.last_status, Some(Status::Drift));
    }

    #[test]
    fn in_sync_bot_without_episode_has_no_episode_and_no_transition() {
        let mut s = BotState::default();
        let (r, t) = step(&mut s, report(1000, vec![]), &Observed::new());
        assert!(t.is_empty());
        assert_eq!(r.episode_id, None);
        assert_eq!(s.episode, None);
        assert_eq!(s.last_seen_ms, 1000);
    }

    #[test]
    fn since_ts_is_kept_while_the_field_keeps_drifting_with_new_values() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("10"), Some("12"))]),
            &Observed::new(),
        );
        let (r, t) = step(
            &mut s,
            report(2000, vec![drift("a", Some("11"), Some("12"))]),
            &Observed::new(),
        );
        assert!(t.is_empty(), "a continuing drift starts nothing: {t:?}");
        assert_eq!(since(&r, "a"), 1000);
        assert_eq!(r.episode_id.as_deref(), Some("risk.killswitch-1000"));
        let latched = &s.episode.as_ref().unwrap().fields["a"];
        assert_eq!(
            latched.running.as_deref(),
            Some("11"),
            "the latch keeps the latest values"
        );
        assert_eq!(latched.first_running.as_deref(), Some("10"));
    }

    #[test]
    fn field_that_drifts_again_after_sync_starts_anew_within_the_episode() {
        let mut s = BotState::default();
        let both = || {
            vec![
                drift("a", Some("1"), Some("2")),
                drift("b", Some("3"), Some("4")),
            ]
        };
        step(&mut s, report(1000, both()), &Observed::new());
        let (r, _) = step(
            &mut s,
            report(2000, vec![drift("b", Some("3"), Some("4"))]),
            &observed(&[("a", Some("2"), Some("2"))]),
        );
        assert_eq!(r.drifts.len(), 1);
        let (r, t) = step(&mut s, report(3000, both()), &Observed::new());
        assert!(t.is_empty(), "the episode goes on: {t:?}");
        assert_eq!(since(&r, "a"), 3000, "a new drift spell of `a`");
        assert_eq!(since(&r, "b"), 1000);
        assert_eq!(r.episode_id.as_deref(), Some("risk.killswitch-1000"));
    }

    #[test]
    fn field_that_starts_drifting_mid_episode_gets_its_own_since() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("1"), Some("2"))]),
            &Observed::new(),
        );
        let (r, _) = step(
            &mut s,
            report(
                2000,
                vec![
                    drift("a", Some("1"), Some("2")),
                    drift("b", Some("3"), None),
                ],
            ),
            &Observed::new(),
        );
        assert_eq!(since(&r, "a"), 1000);
        assert_eq!(since(&r, "b"), 2000);
    }

    #[test]
    fn in_sync_resolves_the_episode_once_with_its_length() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("10"), Some("12"))]),
            &Observed::new(),
        );
        let obs = observed(&[("a", Some("12"), Some("12"))]);
        let (r, t) = step(&mut s, report(91_000, vec![]), &obs);
        assert_eq!(
            t,
            vec![Transition::Resolved {
                episode_id: format!("{SLUG}-1000"),
                started_ms: 1000,
                resolution_minutes: 1.5,
                resolved_by: ResolvedBy::Revert,
            }]
        );
        assert_eq!(r.episode_id, None);
        assert_eq!(s.episode, None);
        let (_, again) = step(&mut s, report(92_000, vec![]), &obs);
        assert!(again.is_empty(), "RESOLVED once per episode: {again:?}");
    }

    #[test]
    fn resolved_by_commit_when_only_the_committed_side_moved() {
        assert_eq!(resolve_a(Some("10"), Some("10")), ResolvedBy::Commit);
    }

    #[test]
    fn resolved_by_revert_when_only_the_running_side_moved() {
        assert_eq!(resolve_a(Some("12"), Some("12")), ResolvedBy::Revert);
    }

    #[test]
    fn resolved_by_both_when_both_sides_of_one_field_moved() {
        assert_eq!(resolve_a(Some("11"), Some("11")), ResolvedBy::Both);
    }

    #[test]
    fn resolved_by_config_when_neither_side_moved() {
        // Tolerance or schema changed: same values, no longer a drift.
        assert_eq!(resolve_a(Some("10"), Some("12")), ResolvedBy::Config);
    }

    #[test]
    fn unobservable_field_counts_as_neither_side_moving() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("10"), Some("12"))]),
            &Observed::new(),
        );
        // `a` is ignored now: the check could not observe it.
        let (_, t) = step(&mut s, report(2000, vec![]), &Observed::new());
        assert_eq!(resolved_by(&t), ResolvedBy::Config);
    }

    #[test]
    fn resolved_by_commit_when_the_commit_adds_a_missing_field() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("5"), None)]),
            &Observed::new(),
        );
        let (_, t) = step(
            &mut s,
            report(2000, vec![]),
            &observed(&[("a", Some("5"), Some("5"))]),
        );
        assert_eq!(resolved_by(&t), ResolvedBy::Commit);
    }

    #[test]
    fn fields_resolved_mid_episode_count_towards_resolved_by() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(
                1000,
                vec![
                    drift("a", Some("1"), Some("2")),
                    drift("b", Some("3"), Some("4")),
                ],
            ),
            &Observed::new(),
        );
        // `a` adopted by a commit while `b` still drifts.
        step(
            &mut s,
            report(2000, vec![drift("b", Some("3"), Some("4"))]),
            &observed(&[("a", Some("1"), Some("1"))]),
        );
        // `b` reverted on the bot; at this check `a` is observed unchanged since.
        let (_, t) = step(
            &mut s,
            report(3000, vec![]),
            &observed(&[("a", Some("1"), Some("1")), ("b", Some("4"), Some("4"))]),
        );
        assert_eq!(resolved_by(&t), ResolvedBy::Both);
    }

    #[test]
    fn only_commits_across_fields_resolve_by_commit() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(
                1000,
                vec![
                    drift("a", Some("1"), Some("2")),
                    drift("b", Some("3"), Some("4")),
                ],
            ),
            &Observed::new(),
        );
        step(
            &mut s,
            report(2000, vec![drift("b", Some("3"), Some("4"))]),
            &observed(&[("a", Some("1"), Some("1"))]),
        );
        let (_, t) = step(
            &mut s,
            report(3000, vec![]),
            &observed(&[("b", Some("3"), Some("3"))]),
        );
        assert_eq!(resolved_by(&t), ResolvedBy::Commit);
    }

    #[test]
    fn unknown_keeps_the_latched_drifts_with_their_last_values() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("10"), Some("12"))]),
            &Observed::new(),
        );
        step(
            &mut s,
            report(2000, vec![drift("a", Some("11"), Some("12"))]),
            &Observed::new(),
        );
        let before = s.episode.clone();
        let (r, t) = step(&mut s, unknown(3000), &Observed::new());
        assert!(t.is_empty(), "UNKNOWN neither resolves nor starts: {t:?}");
        assert_eq!(r.status, Status::Unknown);
        assert_eq!(r.episode_id.as_deref(), Some("risk.killswitch-1000"));
        assert_eq!(r.drifts.len(), 1);
        let d = &r.drifts[0];
        assert!(d.latched);
        assert_eq!(d.since_ts_ms, 1000);
        assert_eq!(d.running.as_deref().map(RawValue::get), Some("11"));
        assert_eq!(d.committed.as_deref().map(RawValue::get), Some("12"));
        assert_eq!(s.episode, before, "UNKNOWN leaves the latch as it was");
        assert_eq!(s.last_status, Some(Status::Unknown));

        // The drift goes on after the outage with its original since.
        let (r, t) = step(
            &mut s,
            report(4000, vec![drift("a", Some("11"), Some("12"))]),
            &Observed::new(),
        );
        assert!(t.is_empty());
        assert_eq!(since(&r, "a"), 1000);
        assert!(!r.drifts[0].latched);
    }

    #[test]
    fn unknown_bot_without_episode_has_no_drifts() {
        let mut s = BotState::default();
        let mut r = unknown(1000);
        r.drifts.push(drift("a", Some("1"), Some("2")));
        let (r, t) = step(&mut s, r, &Observed::new());
        assert!(t.is_empty());
        assert!(r.drifts.is_empty());
        assert_eq!(r.episode_id, None);
        assert_eq!(s.episode, None);
    }

    #[test]
    fn latched_drifts_keep_the_report_order_not_the_text_order() {
        let mut s = BotState::default();
        // Contract order: a[2] before a[10]; as text, "a[10]" sorts first.
        step(
            &mut s,
            report(
                1000,
                vec![
                    drift("a[2]", Some("1"), Some("2")),
                    drift("a[10]", Some("3"), Some("4")),
                ],
            ),
            &Observed::new(),
        );
        let (r, _) = step(&mut s, unknown(2000), &Observed::new());
        let fields: Vec<&str> = r.drifts.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["a[2]", "a[10]"]);
    }

    #[test]
    fn latched_drifts_leave_out_fields_already_back_in_sync() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(
                1000,
                vec![
                    drift("a", Some("1"), Some("2")),
                    drift("b", Some("3"), Some("4")),
                ],
            ),
            &Observed::new(),
        );
        step(
            &mut s,
            report(2000, vec![drift("b", Some("3"), Some("4"))]),
            &observed(&[("a", Some("2"), Some("2"))]),
        );
        let (r, _) = step(&mut s, unknown(3000), &Observed::new());
        assert_eq!(r.drifts.len(), 1);
        assert_eq!(r.drifts[0].field, "b");
        assert_eq!(s.episode.as_ref().unwrap().drifting_count(), 1);
    }

    #[test]
    fn clear_resolves_as_cleared_and_a_lasting_drift_starts_a_new_episode() {
        let mut s = BotState::default();
        let drifting = || report(1000, vec![drift("a", Some("1"), Some("2"))]);
        step(&mut s, drifting(), &Observed::new());
        let (cleared, t) = clear(s, 31_000);
        assert_eq!(
            t,
            Some(Transition::Resolved {
                episode_id: format!("{SLUG}-1000"),
                started_ms: 1000,
                resolution_minutes: 0.5,
                resolved_by: ResolvedBy::Cleared,
            })
        );
        assert_eq!(ResolvedBy::Cleared.as_str(), "cleared");
        let mut s = cleared;
        let mut again = drifting();
        again.checked_at_ms = 40_000;
        let (r, t) = step(&mut s, again, &Observed::new());
        assert_eq!(
            t,
            vec![Transition::Started {
                episode_id: format!("{SLUG}-40000")
            }]
        );
        assert_eq!(since(&r, "a"), 40_000);
    }

    #[test]
    fn clear_without_an_episode_resolves_nothing() {
        let (s, t) = clear(BotState::default(), 5);
        assert_eq!(t, None);
        assert_eq!(s, BotState::default());
    }

    #[test]
    fn removed_bot_keeps_its_episode_for_a_day_then_expires() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("1"), Some("2"))]),
            &Observed::new(),
        );
        mark_removed(&mut s, 10_000);
        mark_removed(&mut s, 20_000);
        assert_eq!(s.removed_at_ms, Some(10_000), "the first removal counts");
        assert!(s.episode.is_some());
        assert!(!expired(&s, 10_000 + REMOVED_RETENTION_MS - 1));
        assert!(expired(&s, 10_000 + REMOVED_RETENTION_MS));
    }

    #[test]
    fn returning_bot_resumes_its_episode() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(1000, vec![drift("a", Some("1"), Some("2"))]),
            &Observed::new(),
        );
        mark_removed(&mut s, 10_000);
        mark_returned(&mut s);
        assert!(!expired(&s, 10_000 + 2 * REMOVED_RETENTION_MS));
        let (r, t) = step(
            &mut s,
            report(50_000, vec![drift("a", Some("1"), Some("2"))]),
            &Observed::new(),
        );
        assert!(t.is_empty());
        assert_eq!(since(&r, "a"), 1000);
        assert_eq!(r.episode_id.as_deref(), Some("risk.killswitch-1000"));
    }

    #[test]
    fn a_report_for_a_removed_bot_means_it_returned() {
        let mut s = BotState::default();
        mark_removed(&mut s, 10);
        step(&mut s, report(20, vec![]), &Observed::new());
        assert_eq!(s.removed_at_ms, None);
    }

    #[test]
    fn last_report_is_the_report_as_emitted() {
        let mut s = BotState::default();
        let (r, _) = step(
            &mut s,
            report(1000, vec![drift("a", Some("1"), Some("2"))]),
            &Observed::new(),
        );
        assert_eq!(
            s.last_report_json.as_deref(),
            Some(r.to_json_line().as_str())
        );
        let (r, _) = step(&mut s, unknown(2000), &Observed::new());
        assert_eq!(
            s.last_report_json.as_deref(),
            Some(r.to_json_line().as_str())
        );
        assert!(r.to_json_line().contains(r#""latched":true"#));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = BotState::default();
        step(
            &mut s,
            report(
                1000,
                vec![drift("a", None, Some("2")), drift("b", Some("\"x\""), None)],
            ),
            &Observed::new(),
        );
        let text = serde_json::to_string(&s).unwrap();
        let back: BotState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.episode.unwrap().fields["a"].kind,
            DriftKind::MissingInRunning
        );
    }
}
