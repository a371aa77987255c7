//! Two-person acknowledgements (§9): the rules for requesting, approving and
//! ending an ack, over a bot's stored state and explicit times.
//!
//! An ack is bound to the bot's drift at request time (its `fingerprint`:
//! the episode and every drifting field with its values). A different identity
//! approves it; it is then active until the first *scheduled* check that started
//! after the approval completes, or at once when the drift changes, and never
//! longer than approval + one interval. A pending ack lapses after one interval.
//! Must not do I/O, read a clock or emit anything: the agent passes `now_ms`, the
//! interval and the check's trigger, stores the acks inside `BotState` and emits.
//! The stored shapes (`Ack`, `AckStatus`, `AckEnd`) are `record.rs`'s; this file
//! does not use the episode rules.

use sha2::{Digest, Sha256};

use super::record::{Ack, AckEnd, AckStatus, BotState, Episode};
use crate::report::Status;

/// Ended acks stay in the state this long, so approving one answers "lapsed"
/// (409) rather than "unknown" (404), and the digest can list it.
pub const ENDED_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// Why a request or an approval is refused (all answered 409 by the API).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("bot `{slug}` is {status}, not in DRIFT: only a drift can be acknowledged")]
    NotInDrift { slug: String, status: String },
    #[error("ack `{id}` was requested by `{who}`; a different person must approve it")]
    SameIdentity { id: String, who: String },
    #[error("ack `{id}` has lapsed ({why}); request a new one")]
    Lapsed { id: String, why: &'static str },
    #[error("the drift of bot `{slug}` changed since ack `{id}` was requested; request a new one")]
    DriftChanged { id: String, slug: String },
    #[error("ack `{id}` is already approved")]
    AlreadyActive { id: String },
}

/// What an ack is bound to: the episode and each drifting field with its kind
/// and values, as SHA-256 hex. Equal drifts give equal fingerprints across
/// restarts (it is computed from stored canonical values only).
pub fn fingerprint(episode: &Episode) -> String {
    let mut h = Sha256::new();
    h.update(episode.id.as_bytes());
    for (field, latched) in &episode.fields {
        if !latched.drifting {
            continue;
        }
        // Length-prefixed parts, so no two different drifts hash the same text.
        for part in [
            Some(field.as_str()),
            Some(latched.kind.as_str()),
            latched.running.as_deref(),
            latched.committed.as_deref(),
        ] {
            match part {
                Some(p) => {
                    h.update((p.len() as u64).to_be_bytes());
                    h.update(p.as_bytes());
                }
                None => h.update(u64::MAX.to_be_bytes()),
            }
        }
    }
    hex::encode(h.finalize())
}

/// The fingerprint of the bot's drift now, if it is in DRIFT.
fn current(state: &BotState) -> Option<String> {
    match (state.last_status, &state.episode) {
        (Some(Status::Drift), Some(episode)) => Some(fingerprint(episode)),
        _ => None,
    }
}

/// A new pending ack for `slug`, bound to its drift now.
pub fn request(
    state: &BotState,
    slug: &str,
    id: String,
    requested_by: &str,
    reason: &str,
    now_ms: i64,
    interval_ms: i64,
) -> Result<Ack, AckError> {
    let (Some(drift), Some(episode)) = (current(state), &state.episode) else {
        return Err(AckError::NotInDrift {
            slug: slug.to_owned(),
            status: state
                .last_status
                .map_or("not checked yet", |s| s.as_str())
                .to_owned(),
        });
    };
    Ok(Ack {
        id,
        bot_slug: slug.to_owned(),
        status: AckStatus::Pending,
        requested_by: requested_by.to_owned(),
        requested_at_ms: now_ms,
        reason: reason.to_owned(),
        episode_id: episode.id.clone(),
        expires_at_ms: now_ms.saturating_add(interval_ms),
        approved_by: None,
        approved_at_ms: None,
        ended_at_ms: None,
        ended_by: None,
        drift,
    })
}

/// Approves `ack` (of the bot whose state is `state`) as `approved_by`. On
/// error nothing changes; a pending ack past its time is refused as lapsed even
/// before the agent's timer marks it so.
pub fn approve(
    ack: &mut Ack,
    state: &BotState,
    approved_by: &str,
    now_ms: i64,
    interval_ms: i64,
) -> Result<(), AckError> {
    let id = ack.id.clone();
    match ack.status {
        AckStatus::Active => return Err(AckError::AlreadyActive { id }),
        AckStatus::Lapsed => {
            return Err(match ack.ended_by {
                Some(AckEnd::DriftChanged | AckEnd::Cleared) => AckError::DriftChanged {
                    id,
                    slug: ack.bot_slug.clone(),
                },
                other => AckError::Lapsed {
                    id,
                    why: other.map_or("over", AckEnd::as_str),
                },
            });
        }
        AckStatus::Pending => {}
    }
    if now_ms >= ack.expires_at_ms {
        return Err(AckError::Lapsed {
            id,
            why: AckEnd::Unapproved.as_str(),
        });
    }
    if current(state).as_deref() != Some(ack.drift.as_str()) {
        return Err(AckError::DriftChanged {
            id,
            slug: ack.bot_slug.clone(),
        });
    }
    if approved_by == ack.requested_by {
        return Err(AckError::SameIdentity {
            id,
            who: ack.requested_by.clone(),
        });
    }
    ack.status = AckStatus::Active;
    ack.approved_by = Some(approved_by.to_owned());
    ack.approved_at_ms = Some(now_ms);
    ack.expires_at_ms = now_ms.saturating_add(interval_ms);
    Ok(())
}

/// A check of this bot finished: `state` is its new (latched) state,
/// `scheduled` whether the check was a scheduled one and `check_started_ms` its
/// start. Ends what this check ends; returns the acks that ended now.
pub fn after_check(
    state: &mut BotState,
    scheduled: bool,
    check_started_ms: i64,
    now_ms: i64,
) -> Vec<Ack> {
    let drift = current(state);
    let mut ended = Vec::new();
    for ack in state.acks.iter_mut().filter(|a| a.is_open()) {
        let end = if state.last_status == Some(Status::Unknown) && state.episode.is_some() {
            // UNKNOWN observes nothing: the latched drift is unchanged.
            match_time(ack, scheduled, check_started_ms, now_ms)
        } else if drift.as_deref() != Some(ack.drift.as_str()) {
            Some(AckEnd::DriftChanged)
        } else {
            match_time(ack, scheduled, check_started_ms, now_ms)
        };
        if let Some(end) = end {
            ack.end(end, now_ms);
            ended.push(ack.clone());
        }
    }
    ended
}

fn match_time(ack: &Ack, scheduled: bool, check_started_ms: i64, now_ms: i64) -> Option<AckEnd> {
    match ack.status {
        AckStatus::Active
            if scheduled && ack.approved_at_ms.is_some_and(|at| check_started_ms >= at) =>
        {
            Some(AckEnd::ScheduledCheck)
        }
        _ => due(ack, now_ms),
    }
}

fn due(ack: &Ack, now_ms: i64) -> Option<AckEnd> {
    (now_ms >= ack.expires_at_ms).then_some(match ack.status {
        AckStatus::Pending => AckEnd::Unapproved,
        _ => AckEnd::Expired,
    })
}

/// Between checks: ends every open ack whose time is up. Returns those ended.
pub fn expire(state: &mut BotState, now_ms: i64) -> Vec<Ack> {
    let mut ended = Vec::new();
    for ack in state.acks.iter_mut().filter(|a| a.is_open()) {
        if let Some(end) = due(ack, now_ms) {
            ack.end(end, now_ms);
            ended.push(ack.clone());
        }
    }
    ended
}

/// An admin cleared the bot's episode: every open ack ends with it.
pub fn end_all(state: &mut BotState, end: AckEnd, now_ms: i64) -> Vec<Ack> {
    let mut ended = Vec::new();
    for ack in state.acks.iter_mut().filter(|a| a.is_open()) {
        ack.end(end, now_ms);
        ended.push(ack.clone());
    }
    ended
}

/// Forgets acks that ended more than [`ENDED_RETENTION_MS`] ago.
pub fn prune(state: &mut BotState, now_ms: i64) {
    state.acks.retain(|a| {
        a.ended_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) < ENDED_RETENTION_MS)
    });
}

/// `drift_acknowledged`: some ack of the bot is active.
pub fn acknowledged(state: &BotState) -> bool {
    state.acks.iter().any(|a| a.status == AckStatus::Active)
}

/// The earliest time an open ack of the bot falls due, for the agent's timer.
pub fn next_due(state: &BotState) -> Option<i64> {
    state
        .acks
        .iter()
        .filter(|a| a.is_open())
        .map(|a| a.expires_at_ms)
        .min()
}

// How an ack ends is a rule of this book, so the method lives here, not with
// the record.
impl Ack {
    fn end(&mut self, end: AckEnd, now_ms: i64) {
        self.status = AckStatus::Lapsed;
        self.ended_by = Some(end);
        self.ended_at_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::latch::record::LatchedField;
    use crate::report::DriftKind;

    const MIN: i64 = 60_000;
    const INTERVAL: i64 = 15 * MIN;
    const SLUG: &str = "risk.killswitch";

    fn drifting(running: &str) -> BotState {
        let mut fields = BTreeMap::new();
        fields.insert(
            "limit".to_owned(),
            LatchedField {
                since_ts_ms: 1000,
                kind: DriftKind::Changed,
                running: Some(running.to_owned()),
                committed: Some("10".into()),
                delta: None,
                first_running: Some(running.to_owned()),
                first_committed: Some("10".into()),
                drifting: true,
                position: 0,
                committed_moved: false,
                running_moved: false,
            },
        );
        BotState {
            episode: Some(Episode {
                id: format!("{SLUG}-1000"),
                started_ms: 1000,
                fields,
            }),
            last_status: Some(Status::Drift),
            ..BotState::default()
        }
    }

    fn requested(state: &mut BotState, at: i64) -> String {
        let ack = request(state, SLUG, "ack-1".into(), "alice", "known", at, INTERVAL).unwrap();
        assert_eq!(ack.status, AckStatus::Pending);
        assert_eq!(ack.expires_at_ms, at + INTERVAL);
        state.acks.push(ack);
        "ack-1".into()
    }

    fn approve_as(state: &mut BotState, who: &str, at: i64) -> Result<(), AckError> {
        let snapshot = state.clone();
        approve(&mut state.acks[0], &snapshot, who, at, INTERVAL)
    }

    #[test]
    fn only_a_bot_in_drift_can_be_acknowledged() {
        for status in [Status::InSync, Status::Unknown] {
            let mut s = drifting("12");
            s.last_status = Some(status);
            let err = request(&s, SLUG, "a".into(), "alice", "r", 0, INTERVAL).unwrap_err();
            assert!(matches!(err, AckError::NotInDrift { .. }), "{status:?}");
        }
        let err = request(
            &BotState::default(),
            SLUG,
            "a".into(),
            "alice",
            "r",
            0,
            INTERVAL,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not checked yet"), "{err}");
    }

    #[test]
    fn the_requester_cannot_approve_their_own_ack() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        let err = approve_as(&mut s, "alice", MIN).unwrap_err();
        assert!(matches!(err, AckError::SameIdentity { .. }));
        assert_eq!(
            s.acks[0].status,
            AckStatus::Pending,
            "a refusal changes nothing"
        );
        approve_as(&mut s, "bob", MIN).unwrap();
        assert_eq!(s.acks[0].status, AckStatus::Active);
        assert_eq!(s.acks[0].approved_by.as_deref(), Some("bob"));
        assert_eq!(s.acks[0].expires_at_ms, MIN + INTERVAL);
        assert!(acknowledged(&s));
        assert!(matches!(
            approve_as(&mut s, "carol", MIN + 1).unwrap_err(),
            AckError::AlreadyActive { .. }
        ));
    }

    #[test]
    fn a_pending_ack_lapses_after_one_interval() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        assert!(expire(&mut s, INTERVAL - 1).is_empty());
        let err = approve_as(&mut s, "bob", INTERVAL).unwrap_err();
        assert!(matches!(err, AckError::Lapsed { .. }), "{err}");
        let ended = expire(&mut s, INTERVAL);
        assert_eq!(ended.len(), 1);
        assert_eq!(s.acks[0].status, AckStatus::Lapsed);
        assert_eq!(s.acks[0].ended_by, Some(AckEnd::Unapproved));
        assert!(matches!(
            approve_as(&mut s, "bob", INTERVAL + 1).unwrap_err(),
            AckError::Lapsed { .. }
        ));
    }

    #[test]
    fn approval_after_the_drift_changed_is_refused() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        // The running value moved on to 13: a different drift.
        let mut now = drifting("13");
        now.acks = s.acks.clone();
        let err = approve_as(&mut now, "bob", MIN).unwrap_err();
        assert!(matches!(err, AckError::DriftChanged { .. }), "{err}");
        // At the check that saw it, the pending ack ends as drift_changed.
        let ended = after_check(&mut now, false, MIN, MIN);
        assert_eq!(ended[0].ended_by, Some(AckEnd::DriftChanged));
        assert!(matches!(
            approve_as(&mut now, "bob", MIN).unwrap_err(),
            AckError::DriftChanged { .. }
        ));
    }

    #[test]
    fn the_first_scheduled_check_started_after_approval_ends_an_active_ack() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", 5 * MIN).unwrap();
        // A scheduled check that started before the approval does not end it.
        assert!(after_check(&mut s, true, 5 * MIN - 1, 5 * MIN + 10).is_empty());
        // Startup and manual checks do not end it.
        assert!(after_check(&mut s, false, 6 * MIN, 6 * MIN + 10).is_empty());
        assert!(acknowledged(&s));
        let ended = after_check(&mut s, true, 7 * MIN, 7 * MIN + 10);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].ended_by, Some(AckEnd::ScheduledCheck));
        assert_eq!(ended[0].ended_at_ms, Some(7 * MIN + 10));
        assert!(!acknowledged(&s));
    }

    #[test]
    fn an_active_ack_never_outlives_approval_plus_one_interval() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", MIN).unwrap();
        assert_eq!(next_due(&s), Some(MIN + INTERVAL));
        assert!(expire(&mut s, MIN + INTERVAL - 1).is_empty());
        let ended = expire(&mut s, MIN + INTERVAL);
        assert_eq!(ended[0].ended_by, Some(AckEnd::Expired));
        // A manual check running late ends it too.
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", MIN).unwrap();
        let ended = after_check(&mut s, false, MIN + 2, MIN + INTERVAL + 5);
        assert_eq!(ended[0].ended_by, Some(AckEnd::Expired));
        assert_eq!(next_due(&s), None);
    }

    #[test]
    fn a_drift_change_ends_an_active_ack_at_any_check() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", MIN).unwrap();
        let mut changed = drifting("14");
        changed.acks = s.acks.clone();
        let ended = after_check(&mut changed, false, 2 * MIN, 2 * MIN);
        assert_eq!(ended[0].ended_by, Some(AckEnd::DriftChanged));
        // Back in sync is a change of drift as well.
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", MIN).unwrap();
        s.episode = None;
        s.last_status = Some(Status::InSync);
        assert_eq!(
            after_check(&mut s, false, 2 * MIN, 2 * MIN)[0].ended_by,
            Some(AckEnd::DriftChanged)
        );
    }

    #[test]
    fn an_unknown_check_keeps_the_ack_of_a_latched_drift() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", MIN).unwrap();
        s.last_status = Some(Status::Unknown);
        assert!(after_check(&mut s, false, 2 * MIN, 2 * MIN).is_empty());
        assert!(acknowledged(&s));
    }

    #[test]
    fn the_same_drift_has_the_same_fingerprint_and_values_matter() {
        let a = drifting("12");
        let b = drifting("12");
        let c = drifting("13");
        let fp = |s: &BotState| fingerprint(s.episode.as_ref().unwrap());
        assert_eq!(fp(&a), fp(&b));
        assert_ne!(fp(&a), fp(&c));
        let mut other_episode = drifting("12");
        other_episode.episode.as_mut().unwrap().id = format!("{SLUG}-2000");
        assert_ne!(fp(&a), fp(&other_episode));
    }

    #[test]
    fn ended_acks_are_kept_for_a_day_then_forgotten() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        end_all(&mut s, AckEnd::Cleared, 10);
        prune(&mut s, 10 + ENDED_RETENTION_MS - 1);
        assert_eq!(s.acks.len(), 1);
        prune(&mut s, 10 + ENDED_RETENTION_MS);
        assert!(s.acks.is_empty());
    }

    #[test]
    fn acks_round_trip_through_json() {
        let mut s = drifting("12");
        requested(&mut s, 0);
        approve_as(&mut s, "bob", MIN).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        let back: BotState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        // A state written before acks existed still loads.
        let old: BotState = serde_json::from_str(r#"{"last_seen_ms":5}"#).unwrap();
        assert!(old.acks.is_empty());
    }
}
