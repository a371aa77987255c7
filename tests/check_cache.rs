//! One long-lived `Checker` (as the agent holds it) across several checks: the
//! per-blob caches must never answer for a revision they were not built from.

mod support;

use std::sync::Arc;

use config_drift_detector::canon::secret::SecretKey;
use config_drift_detector::check::Checker;
use config_drift_detector::report::Status;
use support::bots::{BotServer, Reply};
use support::origin::FixtureRepo;

fn statuses(outcome: &config_drift_detector::check::CheckOutcome) -> Vec<(String, Status, usize)> {
    outcome
        .reports
        .iter()
        .map(|r| {
            (
                r.bot_slug.clone().unwrap_or_default(),
                r.status,
                r.drifts.len(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_under_an_unchanged_config_is_seen_by_a_warm_checker() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let repo = FixtureRepo::new();
    repo.write("bots/a.json", r#"{"limit": 5}"#);
    repo.write(
        "schemas/a.schema.json",
        r#"{"properties": {"limit": {"type": "integer"}}}"#,
    );
    repo.commit("initial");
    let bots = BotServer::start();
    bots.set("/a", Reply::Json(r#"{"limit": 5, "max_usd": 1000}"#.into()));
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = support::write_config(dir.path(), repo.path(), &[("a", bots.url("/a"))], "", "");
    let (config, _) = config_drift_detector::config::load(&cfg).expect("config loads");
    let fleet = config.bots.clone();
    let mut checker = Checker::new(Arc::new(config), SecretKey::random()).expect("checker");

    let first = checker.run(&fleet, 1).await;
    assert_eq!(
        statuses(&first),
        [("a".to_owned(), Status::Drift, 1)],
        "{:?}",
        first.reports
    );

    // Same config blob, new schema blob: a default now fills the running-only field.
    repo.write(
        "schemas/a.schema.json",
        r#"{"properties": {"limit": {"type": "integer"}, "max_usd": {"type": "integer", "default": 1000}}}"#,
    );
    repo.commit("default for max_usd");
    let second = checker.run(&fleet, 2).await;
    assert_eq!(
        statuses(&second),
        [("a".to_owned(), Status::InSync, 0)],
        "{:?}",
        second.reports
    );

    // And back: the old pair is recomputed, not served stale.
    repo.write(
        "schemas/a.schema.json",
        r#"{"properties": {"limit": {"type": "integer"}}}"#,
    );
    repo.commit("no default");
    let third = checker.run(&fleet, 3).await;
    assert_eq!(
        statuses(&third),
        [("a".to_owned(), Status::Drift, 1)],
        "{:?}",
        third.reports
    );

    // A live edit on the running side with nothing committed: seen at once.
    bots.set("/a", Reply::Json(r#"{"limit": 6, "max_usd": 1000}"#.into()));
    let fourth = checker.run(&fleet, 4).await;
    assert_eq!(
        statuses(&fourth),
        [("a".to_owned(), Status::Drift, 2)],
        "{:?}",
        fourth.reports
    );
}
