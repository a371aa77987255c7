//! One bot's verdict: its committed side and its running side, as the check read
//! them, become its report: IN_SYNC, DRIFT, or UNKNOWN with the reason of
//! highest precedence (§7: repo-wide, then the bot's committed file, then its
//! runtime).
//!
//! Pure: no I/O, no clock (`now_ms` is an argument), no threads. It must not
//! read the repo or fetch: both sides arrive as values, failures included, so
//! the precedence is decided in one place and tested here.

use std::sync::Arc;

use crate::canon::canonical::Canonical;
use crate::config::{Bot, Config};
use crate::diff::{DiffOptions, DiffOutcome, diff, observe};
use crate::latch::Observed;
use crate::repo::{RepoFailure, Snapshot, TreeEntry};
use crate::report::{ConfigDriftReport, Drift, SignatureState, Status, UnknownReason};
use crate::runtime::FetchFailure;

use super::committed::CommittedSide;
use super::running::RunningSide;

/// The check-wide settings every verdict of one check applies.
pub(super) struct Rules<'a> {
    /// The pinned branch: every report's `committed_ref`.
    pub branch: &'a str,
    pub require_signed_commits: bool,
    pub diff: DiffOptions,
    /// The check's start: every report's `checked_at_ms` and drifts' `since_ts_ms`.
    pub now_ms: i64,
}

impl Rules<'_> {
    pub(super) fn of(config: &Config, now_ms: i64) -> Rules<'_> {
        Rules {
            branch: &config.repo.branch,
            require_signed_commits: config.repo.require_signed_commits,
            diff: DiffOptions {
                tolerance: config.tolerance.clone(),
            },
            now_ms,
        }
    }

    /// An UNKNOWN report for `bot` that names no commit: what every bot gets when
    /// the committed side failed for the whole check.
    pub(super) fn unknown(
        &self,
        bot: &Bot,
        reason: UnknownReason,
        detail: impl Into<String>,
    ) -> ConfigDriftReport {
        let mut r = ConfigDriftReport::new(Some(bot.slug.to_string()), self.now_ms);
        r.committed_ref = Some(self.branch.to_owned());
        r.set_unknown(reason, detail);
        r
    }
}

/// One bot's committed side in a check whose branch resolved.
pub(super) struct Committed<'a> {
    pub snapshot: &'a Snapshot,
    /// The signature of the commit that last changed the bot's file.
    pub content_signature: SignatureState,
    /// The bot's config path in the commit's tree; `None` when absent.
    pub entry: Option<&'a TreeEntry>,
    /// Its document canonicalised, when the entry is a file that was read.
    pub side: Option<&'a CommittedSide>,
}

/// A bot's report and what the rest of the check needs from its evaluation.
pub(super) struct Verdict {
    pub report: ConfigDriftReport,
    /// The running canonical form, kept only when the bot drifts: for `matches_commit`.
    pub running: Option<Arc<Canonical>>,
    /// The current values of the `watched` fields that do not drift now.
    pub observed: Observed,
}

impl Verdict {
    fn unknown(report: ConfigDriftReport) -> Verdict {
        Verdict {
            report,
            running: None,
            observed: Observed::new(),
        }
    }
}

/// One bot's report from its two sides. A repo-wide failure wins over anything
/// the bot's sides say; then committed-side reasons come before running-side
/// ones (§7). `watched` are the latched fields whose current values the latch
/// wants when they stop drifting.
pub(super) fn evaluate_bot(
    rules: &Rules<'_>,
    bot: &Bot,
    committed: Result<Committed<'_>, &RepoFailure>,
    running: Option<RunningSide>,
    watched: &[String],
) -> Verdict {
    let committed = match committed {
        Ok(c) => c,
        Err(failure) => {
            return Verdict::unknown(rules.unknown(bot, failure.reason, &failure.detail));
        }
    };
    let mut r = ConfigDriftReport::new(Some(bot.slug.to_string()), rules.now_ms);
    r.committed_ref = Some(rules.branch.to_owned());
    r.committed_commit = Some(committed.snapshot.commit.clone());
    r.committed_signature = Some(committed.snapshot.committed_signature);
    let content = committed.content_signature;
    r.content_signature = Some(content);
    // Reported whenever the bot gave it, even if the committed side then fails.
    if let Some(RunningSide::Ready(_, loaded_at_ms)) = &running {
        r.running_loaded_at_ms = *loaded_at_ms;
    }

    if rules.require_signed_commits
        && (committed.snapshot.committed_signature != SignatureState::Verified
            || content != SignatureState::Verified)
    {
        r.set_unknown(
            UnknownReason::CommittedUnverified,
            format!(
                "require_signed_commits is set and the head commit is {} and the commit that last changed {} is {}",
                committed.snapshot.committed_signature.as_str(),
                bot.config_path,
                content.as_str()
            ),
        );
        return Verdict::unknown(r);
    }

    let (canonical_committed, schema) = match (committed.entry, committed.side) {
        (None, _) => {
            r.set_unknown(
                UnknownReason::CommittedConfigMissing,
                format!(
                    "{} does not exist on branch {}",
                    bot.config_path, rules.branch
                ),
            );
            return Verdict::unknown(r);
        }
        (Some(TreeEntry::NotAFile(kind)), _) => {
            r.set_unknown(
                UnknownReason::CommittedConfigInvalid,
                format!("{} is a {kind} in the repo, not a file", bot.config_path),
            );
            return Verdict::unknown(r);
        }
        (Some(TreeEntry::Blob(_)), Some(CommittedSide::Ready { canonical, schema })) => {
            (canonical, schema)
        }
        (Some(TreeEntry::Blob(_)), Some(CommittedSide::Invalid(why))) => {
            r.set_unknown(UnknownReason::CommittedConfigInvalid, why.clone());
            return Verdict::unknown(r);
        }
        (Some(TreeEntry::Blob(_)), None) => {
            r.set_unknown(
                UnknownReason::CommittedConfigInvalid,
                format!("{} could not be read", bot.config_path),
            );
            return Verdict::unknown(r);
        }
    };

    let running = match running {
        Some(RunningSide::Ready(canonical, _)) => canonical,
        Some(RunningSide::Failed(FetchFailure { reason, detail })) => {
            r.set_unknown(reason, detail);
            return Verdict::unknown(r);
        }
        Some(RunningSide::NoSchema) | None => {
            r.set_unknown(
                UnknownReason::RuntimeTimeout,
                "the running config was not evaluated within the check",
            );
            return Verdict::unknown(r);
        }
    };
    let outcome = diff(&running, canonical_committed, &rules.diff);
    fill_from_diff(
        &mut r,
        outcome,
        schema_path_used(bot, schema.is_some()),
        rules.now_ms,
    );
    let settling: Vec<&str> = watched
        .iter()
        .map(String::as_str)
        .filter(|f| !r.drifts.iter().any(|d| d.field == *f))
        .collect();
    let observed = observe(&running, canonical_committed, &settling);
    // Only drifting bots need their running form later (matches_commit).
    let keep = (r.status == Status::Drift).then(|| Arc::from(running));
    Verdict {
        report: r,
        running: keep,
        observed,
    }
}

fn schema_path_used(bot: &Bot, has_schema: bool) -> Option<String> {
    if has_schema {
        bot.schema_path.clone()
    } else {
        None
    }
}

/// Copies a diff's result into a report and settles IN_SYNC or DRIFT. Every drift
/// is stamped `since` = `now_ms`; the agent's latch replaces it with the time the
/// drift was first seen.
pub fn fill_from_diff(
    r: &mut ConfigDriftReport,
    outcome: DiffOutcome,
    schema: Option<String>,
    now_ms: i64,
) {
    r.schema = Some(schema);
    r.ignored = Some(outcome.ignored);
    r.schema_errors = outcome.schema_errors;
    r.drifts = outcome
        .drifts
        .into_iter()
        .map(|d| Drift {
            field: d.path.to_string(),
            kind: d.kind,
            running: d.running.and_then(raw_json),
            committed: d.committed.and_then(raw_json),
            delta: d.delta.and_then(raw_json),
            since_ts_ms: now_ms,
            latched: false,
        })
        .collect();
    r.settle();
}

fn raw_json(text: String) -> Option<Box<serde_json::value::RawValue>> {
    serde_json::value::RawValue::from_string(text).ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::canon::canonical::{CanonOptions, canonicalise};
    use crate::canon::number::Decimal;
    use crate::canon::secret::SecretKey;
    use crate::canon::{Format, ParseLimits, parse_document};
    use crate::check::committed::{committed_side, compile_schema};
    use crate::config::{BotSlug, RuntimeSource};
    use crate::report::{DriftKind, Side};

    const NOW: i64 = 1_715_260_900_000;
    const LIMITS: ParseLimits = ParseLimits { max_bytes: 1 << 20 };

    fn rules(require_signed_commits: bool) -> Rules<'static> {
        Rules {
            branch: "main",
            require_signed_commits,
            diff: DiffOptions {
                tolerance: Decimal::ZERO,
            },
            now_ms: NOW,
        }
    }

    fn bot(schema_path: Option<&str>) -> Bot {
        Bot {
            slug: BotSlug::parse("risk.killswitch").expect("slug"),
            runtime: RuntimeSource::File(PathBuf::from("/run/killswitch.json")),
            config_path: "bots/risk.killswitch.json".into(),
            schema_path: schema_path.map(str::to_owned),
            headers: Vec::new(),
        }
    }

    fn snapshot(signature: SignatureState) -> Snapshot {
        Snapshot {
            commit: "9fceb02d0ae598e95dc970b74767f19372d61af8".into(),
            committed_signature: signature,
        }
    }

    fn blob() -> TreeEntry {
        TreeEntry::Blob("b10b".into())
    }

    fn committed_doc(json: &str) -> CommittedSide {
        let key = SecretKey::random();
        let opts = CanonOptions {
            ignore_fields: &[],
            secret_key: &key,
        };
        committed_side(
            "bots/risk.killswitch.json",
            Some(json.as_bytes()),
            None,
            &LIMITS,
            &opts,
        )
    }

    fn running_doc(json: &str, loaded_at_ms: Option<i64>) -> RunningSide {
        let key = SecretKey::random();
        let opts = CanonOptions {
            ignore_fields: &[],
            secret_key: &key,
        };
        let value = parse_document(json.as_bytes(), Format::Json, &LIMITS).expect("json");
        RunningSide::Ready(
            Box::new(canonicalise(value, None, Side::Running, &opts)),
            loaded_at_ms,
        )
    }

    fn unreachable_runtime() -> RunningSide {
        RunningSide::Failed(FetchFailure::new(
            UnknownReason::RuntimeUnreachable,
            "connection refused",
        ))
    }

    fn committed<'a>(
        snapshot: &'a Snapshot,
        entry: Option<&'a TreeEntry>,
        side: Option<&'a CommittedSide>,
    ) -> Committed<'a> {
        Committed {
            snapshot,
            content_signature: snapshot.committed_signature,
            entry,
            side,
        }
    }

    fn reason(v: &Verdict) -> (Status, Option<UnknownReason>, Option<&str>) {
        (
            v.report.status,
            v.report.unknown_reason,
            v.report.detail.as_deref(),
        )
    }

    #[test]
    fn repo_wide_failure_wins_over_a_running_failure_and_names_no_commit() {
        let failure = RepoFailure {
            reason: UnknownReason::RepoStale,
            detail: "last fetched 20 min ago".into(),
        };
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Err(&failure),
            Some(unreachable_runtime()),
            &[],
        );
        assert_eq!(
            reason(&v),
            (
                Status::Unknown,
                Some(UnknownReason::RepoStale),
                Some("last fetched 20 min ago")
            )
        );
        assert_eq!(v.report.committed_ref.as_deref(), Some("main"));
        assert_eq!(v.report.committed_commit, None);
        assert_eq!(v.report.committed_signature, None);
        assert!(v.running.is_none());
    }

    #[test]
    fn unverified_commit_wins_over_a_missing_config_and_a_running_failure() {
        let snap = snapshot(SignatureState::Unsigned);
        let v = evaluate_bot(
            &rules(true),
            &bot(None),
            Ok(committed(&snap, None, None)),
            Some(unreachable_runtime()),
            &[],
        );
        assert_eq!(
            v.report.unknown_reason,
            Some(UnknownReason::CommittedUnverified)
        );
        assert_eq!(
            v.report.detail.as_deref(),
            Some(
                "require_signed_commits is set and the head commit is unsigned and the commit that last changed bots/risk.killswitch.json is unsigned"
            )
        );
        assert_eq!(
            v.report.committed_commit.as_deref(),
            Some(snap.commit.as_str())
        );
    }

    #[test]
    fn a_verified_head_with_an_unverified_content_commit_is_unverified() {
        let snap = snapshot(SignatureState::Verified);
        let side = committed_doc(r#"{"a": 1}"#);
        let entry = blob();
        let mut c = committed(&snap, Some(&entry), Some(&side));
        c.content_signature = SignatureState::Bad;
        let v = evaluate_bot(
            &rules(true),
            &bot(None),
            Ok(c),
            Some(running_doc(r#"{"a": 1}"#, None)),
            &[],
        );
        assert_eq!(
            v.report.unknown_reason,
            Some(UnknownReason::CommittedUnverified)
        );
        assert_eq!(v.report.content_signature, Some(SignatureState::Bad));
    }

    #[test]
    fn signatures_are_not_required_unless_configured() {
        let snap = snapshot(SignatureState::Unsigned);
        let side = committed_doc(r#"{"a": 1}"#);
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            Some(running_doc(r#"{"a": 1}"#, None)),
            &[],
        );
        assert_eq!(reason(&v), (Status::InSync, None, None));
    }

    #[test]
    fn missing_committed_config_wins_over_a_running_failure() {
        let snap = snapshot(SignatureState::Unsigned);
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, None, None)),
            Some(unreachable_runtime()),
            &[],
        );
        assert_eq!(
            reason(&v),
            (
                Status::Unknown,
                Some(UnknownReason::CommittedConfigMissing),
                Some("bots/risk.killswitch.json does not exist on branch main")
            )
        );
    }

    #[test]
    fn a_folder_at_the_config_path_is_invalid() {
        let snap = snapshot(SignatureState::Unsigned);
        let entry = TreeEntry::NotAFile("folder");
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), None)),
            Some(running_doc("{}", None)),
            &[],
        );
        assert_eq!(
            reason(&v),
            (
                Status::Unknown,
                Some(UnknownReason::CommittedConfigInvalid),
                Some("bots/risk.killswitch.json is a folder in the repo, not a file")
            )
        );
    }

    #[test]
    fn committed_parse_error_wins_over_a_running_failure() {
        let snap = snapshot(SignatureState::Unsigned);
        let side = committed_doc("{not json");
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            Some(unreachable_runtime()),
            &[],
        );
        assert_eq!(
            v.report.unknown_reason,
            Some(UnknownReason::CommittedConfigInvalid)
        );
        let detail = v.report.detail.as_deref().unwrap_or_default();
        assert!(
            detail.starts_with("bots/risk.killswitch.json is not a valid config: "),
            "{detail}"
        );
    }

    #[test]
    fn a_schema_that_does_not_parse_is_reported_on_the_committed_side_not_as_a_timeout() {
        let key = SecretKey::random();
        let opts = CanonOptions {
            ignore_fields: &[],
            secret_key: &key,
        };
        let schema = compile_schema("schemas/risk.json", Some(b"{broken"), &LIMITS);
        assert!(schema.is_err());
        let side = committed_side(
            "bots/risk.killswitch.json",
            Some(br#"{"a": 1}"#),
            Some(&schema),
            &LIMITS,
            &opts,
        );
        let snap = snapshot(SignatureState::Unsigned);
        let entry = blob();
        // The running side of a bot whose schema fails is never canonicalised.
        let v = evaluate_bot(
            &rules(false),
            &bot(Some("schemas/risk.json")),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            Some(RunningSide::NoSchema),
            &[],
        );
        assert_eq!(
            v.report.unknown_reason,
            Some(UnknownReason::CommittedConfigInvalid)
        );
        let detail = v.report.detail.as_deref().unwrap_or_default();
        assert!(
            detail.starts_with("schema schemas/risk.json is not valid: "),
            "{detail}"
        );
    }

    #[test]
    fn an_unread_committed_blob_is_invalid() {
        let snap = snapshot(SignatureState::Unsigned);
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), None)),
            Some(unreachable_runtime()),
            &[],
        );
        assert_eq!(
            reason(&v),
            (
                Status::Unknown,
                Some(UnknownReason::CommittedConfigInvalid),
                Some("bots/risk.killswitch.json could not be read")
            )
        );
    }

    #[test]
    fn running_failure_is_reported_when_the_committed_side_is_fine() {
        let snap = snapshot(SignatureState::Unsigned);
        let side = committed_doc(r#"{"a": 1}"#);
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            Some(unreachable_runtime()),
            &[],
        );
        assert_eq!(
            reason(&v),
            (
                Status::Unknown,
                Some(UnknownReason::RuntimeUnreachable),
                Some("connection refused")
            )
        );
        assert_eq!(v.report.schema, None, "no diff ran");
    }

    #[test]
    fn a_bot_never_evaluated_is_a_runtime_timeout() {
        let snap = snapshot(SignatureState::Unsigned);
        let side = committed_doc(r#"{"a": 1}"#);
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            None,
            &[],
        );
        assert_eq!(
            reason(&v),
            (
                Status::Unknown,
                Some(UnknownReason::RuntimeTimeout),
                Some("the running config was not evaluated within the check")
            )
        );
    }

    #[test]
    fn running_loaded_at_is_kept_even_when_the_committed_side_fails() {
        let snap = snapshot(SignatureState::Unsigned);
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, None, None)),
            Some(running_doc("{}", Some(42))),
            &[],
        );
        assert_eq!(v.report.status, Status::Unknown);
        assert_eq!(v.report.running_loaded_at_ms, Some(42));
    }

    #[test]
    fn drifting_bot_keeps_its_running_form_and_stamps_since_now() {
        let snap = snapshot(SignatureState::Unsigned);
        let side = committed_doc(r#"{"a": 12, "b": true}"#);
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            Some(running_doc(r#"{"a": 10, "b": true}"#, None)),
            &["a".to_owned(), "b".to_owned()],
        );
        assert_eq!(v.report.status, Status::Drift);
        assert_eq!(v.report.schema, Some(None));
        assert_eq!(v.report.drifts.len(), 1);
        let d = &v.report.drifts[0];
        assert_eq!((d.field.as_str(), d.kind), ("a", DriftKind::Changed));
        assert_eq!(d.since_ts_ms, NOW);
        assert_eq!(d.delta.as_deref().map(|r| r.get()), Some("-2"));
        assert!(v.running.is_some());
        // Only the watched field that no longer drifts is observed.
        assert_eq!(v.observed.keys().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn in_sync_bot_drops_its_running_form() {
        let snap = snapshot(SignatureState::Unsigned);
        let side = committed_doc(r#"{"a": 10.0}"#);
        let entry = blob();
        let v = evaluate_bot(
            &rules(false),
            &bot(None),
            Ok(committed(&snap, Some(&entry), Some(&side))),
            Some(running_doc(r#"{"a": 10}"#, None)),
            &[],
        );
        assert_eq!(reason(&v), (Status::InSync, None, None));
        assert_eq!(v.report.ignored, Some(0));
        assert!(v.running.is_none());
    }
}
