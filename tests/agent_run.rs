//! The agent through its binary (`run`): live edits found within one interval,
//! latches that survive SIGKILL, RESOLVED once with what resolved it, repo
//! outages and recovery, health, reloads, registry re-reads, modes, startup
//! errors and clean shutdown. Real parts only: fixture repos with real commits,
//! bots on loopback HTTP with an admin endpoint, a real sled database.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use config_drift_detector::latch::StateStore;
use support::agent::{AgentProcess, field, field_f64, series_value};
use support::fleet_agent::{Fleet, with_limit};

/// Generous bound for anything that should take one or two 1 s intervals: a
/// busy 2-core CI machine must not make these flaky.
const SOON: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

fn episode_started(episode_id: &str) -> i64 {
    episode_id
        .rsplit('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("episode id {episode_id} ends in its start ms"))
}

#[test]
fn live_edit_through_the_admin_endpoint_is_reported_within_one_interval() {
    let slugs = ["mm.spread", "risk.killswitch"];
    let fleet = Fleet::new(&slugs);
    let config = fleet.config(&slugs, "", "");
    let agent = fleet.start(&config, "2s");
    agent.wait_series(r#"bots_in_drift{bot_id="risk.killswitch"}"#, 0.0, SOON);
    agent.wait_series(r#"bots_in_drift{bot_id="mm.spread"}"#, 0.0, SOON);

    let edited_at = now_ms();
    fleet.edit("risk.killswitch", &with_limit(12));

    let record = agent.wait_gov(
        "GOV_CONFIG_DRIFT_DETECTED",
        Some("risk.killswitch"),
        SOON,
        |_| true,
    );
    assert_eq!(field(&record, "fields_drifted"), Some("limit"));
    assert_eq!(field(&record, "severity_class"), Some("P3"));
    assert_eq!(record["level"], "WARN");
    let started = episode_started(field(&record, "episode_id").expect("episode_id"));
    // The check that saw it started about one interval after the edit, since
    // checks start every interval; the slack is several checks' worth, so a busy
    // machine that delays one cannot fail this, while "never seen" still does.
    assert!(
        started <= edited_at + 2_000 + 6_000,
        "the drift was first seen {} ms after the edit",
        started - edited_at
    );
    agent.wait_series(r#"bots_in_drift{bot_id="risk.killswitch"}"#, 1.0, SOON);
    let page = agent.metrics();
    assert_eq!(
        series_value(&page, r#"drift_fields{bot_id="risk.killswitch"}"#),
        Some(1.0)
    );
    assert_eq!(
        series_value(
            &page,
            r#"drift_since_timestamp_seconds{bot_id="risk.killswitch"}"#
        ),
        Some(started as f64 / 1000.0)
    );
    assert_eq!(
        series_value(&page, r#"bots_in_drift{bot_id="mm.spread"}"#),
        Some(0.0)
    );
    assert!(
        agent
            .gov("GOV_CONFIG_DRIFT_DETECTED", Some("mm.spread"))
            .is_empty()
    );
}

#[test]
fn latch_survives_sigkill_and_resolves_once_by_commit_then_by_revert() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    let mut first = fleet.start(&config, "1s");
    fleet.edit("alpha", &with_limit(12));
    let detected = first.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let episode = field(&detected, "episode_id")
        .expect("episode_id")
        .to_owned();
    first.wait_checks(1, SOON);
    first.kill9();

    let since_before = latched_since(&fleet.state_db(), "alpha", &episode);

    // Restart: the same episode is re-emitted by the check at start.
    let mut second = fleet.start(&config, "1s");
    let again = second.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    assert_eq!(field(&again, "episode_id"), Some(episode.as_str()));
    second.wait_series(
        r#"drift_since_timestamp_seconds{bot_id="alpha"}"#,
        episode_started(&episode) as f64 / 1000.0,
        SOON,
    );
    assert!(second.terminate(SOON).success());
    assert_eq!(
        latched_since(&fleet.state_db(), "alpha", &episode),
        since_before,
        "since_ts_ms survives restarts"
    );

    // A commit adopting the running value resolves it, naming the commit.
    let mut third = fleet.start(&config, "1s");
    fleet.repo.write("bots/alpha.json", &with_limit(12));
    let adopted = fleet.repo.commit("adopt limit 12 for alpha");
    let resolved = third.wait_gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"), SOON, |_| true);
    assert_eq!(field(&resolved, "episode_id"), Some(episode.as_str()));
    assert_eq!(field(&resolved, "resolved_by"), Some("commit"));
    assert_eq!(field(&resolved, "commit_sha"), Some(adopted.as_str()));
    assert!(field_f64(&resolved, "resolution_minutes").is_some_and(|m| m > 0.0));
    third.wait_checks(2, SOON);
    assert_eq!(
        third.gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha")).len(),
        1,
        "RESOLVED once per episode"
    );
    third.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 0.0, SOON);
    third.kill9();

    // No duplicate after another crash and restart.
    let fourth = fleet.start(&config, "1s");
    fourth.wait_checks(2, SOON);
    assert!(
        fourth
            .gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"))
            .is_empty(),
        "a RESOLVED recorded as emitted is not emitted again:\n{}",
        fourth.log_text()
    );

    // A new live edit opens a new episode; undoing it on the bot is a revert.
    fleet.edit("alpha", &with_limit(15));
    let detected = fourth.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let second_episode = field(&detected, "episode_id")
        .expect("episode_id")
        .to_owned();
    assert_ne!(second_episode, episode);
    fleet.edit("alpha", &with_limit(12));
    let reverted = fourth.wait_gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"), SOON, |_| true);
    assert_eq!(
        field(&reverted, "episode_id"),
        Some(second_episode.as_str())
    );
    assert_eq!(field(&reverted, "resolved_by"), Some("revert"));
    assert!(
        reverted["fields"].get("commit_sha").is_none(),
        "a revert names no commit: {reverted}"
    );
}

/// `since_ts_ms` of the latched `limit` field, read from the state database
/// while no agent holds it.
fn latched_since(db: &Path, slug: &str, episode: &str) -> i64 {
    let store = StateStore::open(db, 8 << 20).expect("the state opens");
    let states = store.load_all().expect("the state loads");
    let e = states[slug].episode.as_ref().expect("an open episode");
    assert_eq!(e.id, episode);
    e.fields["limit"].since_ts_ms
}

#[test]
fn blocked_repo_makes_every_bot_unknown_keeps_the_latch_and_recovers() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let config = fleet.config(&["alpha", "beta"], "", "max_staleness_s = 3");
    fleet.edit("alpha", &with_limit(12));
    let agent = fleet.start(&config, "1s");
    let detected = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let episode = field(&detected, "episode_id").expect("episode").to_owned();
    agent.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);

    let away = fleet.repo.block();
    for slug in ["alpha", "beta"] {
        let unknown = agent.wait_gov("GOV_CONFIG_DRIFT_UNKNOWN", Some(slug), SOON, |r| {
            field(r, "unknown_reason") == Some("repo_unreachable")
        });
        assert_eq!(field(&unknown, "severity_class"), Some("P3"));
    }
    // UNKNOWN never clears a latch: alpha is still in its episode.
    agent.wait_series(r#"bots_in_unknown{bot_id="alpha"}"#, 1.0, SOON);
    let page = agent.metrics();
    assert_eq!(
        series_value(&page, r#"bots_in_drift{bot_id="alpha"}"#),
        Some(1.0)
    );
    assert_eq!(
        series_value(&page, r#"drift_fields{bot_id="alpha"}"#),
        Some(1.0)
    );
    assert!(series_value(&page, "drift_repo_fetch_errors_total").is_some_and(|n| n >= 1.0));

    agent.wait_gov("GOV_CONFIG_DRIFT_UNKNOWN", Some("beta"), SOON, |r| {
        field(r, "unknown_reason") == Some("repo_stale")
    });

    fleet.repo.unblock(&away);
    let recovered_from = now_ms();
    agent.wait_series(r#"bots_in_unknown{bot_id="beta"}"#, 0.0, SOON);
    agent.wait_series(r#"bots_in_unknown{bot_id="alpha"}"#, 0.0, SOON);
    let back = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |r| {
        episode_started(field(r, "episode_id").unwrap_or("x-0")) > 0
            && agent_record_after(r, recovered_from)
    });
    assert_eq!(
        field(&back, "episode_id"),
        Some(episode.as_str()),
        "the same episode"
    );
    assert!(
        agent
            .gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"))
            .is_empty()
    );
    let last_success = agent
        .series("drift_last_success_timestamp_seconds")
        .expect("last success");
    assert!(last_success * 1000.0 >= recovered_from as f64);
    let (code, _) = agent
        .get("/healthz/config_drift_detector")
        .expect("health answers");
    assert_eq!(code, 200);
}

fn agent_record_after(record: &serde_json::Value, ms: i64) -> bool {
    let ts = record["timestamp"].as_str().unwrap_or("");
    humantime::parse_rfc3339_weak(ts.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .is_some_and(|d| d.as_millis() as i64 >= ms)
}

/// Health waits one interval plus 60 s of grace (§12), so this test takes over a
/// minute; it runs beside the others.
#[test]
fn health_turns_503_when_checks_stop_succeeding_and_200_again_after() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    let agent = fleet.start(&config, "1s");
    let healthy = poll_health(&agent, 200, SOON);
    assert_eq!(healthy["mode"], "shadow");
    assert_eq!(healthy["paused"], false);
    assert!(healthy["last_success_ms"].as_i64().is_some());

    let away = fleet.repo.block();
    let blocked_at = Instant::now();
    let sick = poll_health(&agent, 503, Duration::from_secs(1 + 60 + 60));
    assert!(
        blocked_at.elapsed() >= Duration::from_secs(60),
        "503 only after interval + 60 s"
    );
    assert!(sick["last_success_ms"].as_i64().is_some());

    fleet.repo.unblock(&away);
    poll_health(&agent, 200, SOON);
}

fn poll_health(agent: &AgentProcess, code: u16, deadline: Duration) -> serde_json::Value {
    support::poll(deadline, &format!("health {code}"), || {
        let (got, body) = agent.get("/healthz/config_drift_detector")?;
        (got == code).then(|| serde_json::from_str(&body).expect("health is JSON"))
    })
}

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one_and_a_good_one_applies() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    let agent = fleet.start(&config, "1s");
    agent.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 0.0, SOON);

    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("chek_interval_minutes = 5\n{good}")).expect("write");
    agent.signal(libc::SIGHUP);
    agent.wait_series("drift_config_reload_failures_total", 1.0, SOON);
    assert_eq!(
        agent.series("drift_config_last_reload_successful"),
        Some(0.0)
    );
    let refused = agent
        .records()
        .into_iter()
        .find(|r| field(r, "message").is_some_and(|m| m.starts_with("Config reload refused")))
        .expect("the refusal is logged");
    assert!(
        field(&refused, "error").is_some_and(|e| e.contains("chek_interval_minutes")),
        "{refused}"
    );
    // Still checking with the old config.
    agent.wait_checks(2, SOON);

    std::fs::write(&config, format!("mode = \"advisory\"\n{good}")).expect("write");
    agent.signal(libc::SIGHUP);
    agent.wait_series(
        r#"drift_detector_info{branch="main",mode="advisory",shard="1/1",version="0.1.0"}"#,
        1.0,
        SOON,
    );
    let page = agent.metrics();
    assert!(
        !page.contains(r#"mode="shadow""#),
        "the old info series is gone"
    );
    assert_eq!(
        series_value(&page, "drift_config_last_reload_successful"),
        Some(1.0)
    );
    let (_, health) = agent.get("/healthz/config_drift_detector").expect("health");
    assert!(health.contains(r#""mode":"advisory""#), "{health}");
}

/// §9: after a reload the agent checks at once and re-emits every bot's status.
/// With a 300 s interval, only the reload can run the second check in time.
#[test]
fn an_accepted_reload_checks_at_once_and_re_emits_every_status() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let config = fleet.config(&["alpha", "beta"], "", "");
    fleet.edit("alpha", &with_limit(12));
    let agent = fleet.start(&config, "300s");
    let first = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    agent.wait_series(r#"bots_in_drift{bot_id="beta"}"#, 0.0, SOON);
    assert_eq!(agent.checks(), 1);
    // The override is said once, as a warning naming both values.
    let warned: Vec<_> = agent
        .records()
        .into_iter()
        .filter(|r| {
            r["level"] == "WARN"
                && field(r, "message").is_some_and(|m| m.starts_with("--check-interval 5m "))
        })
        .collect();
    assert_eq!(warned.len(), 1, "{}", agent.log_text());
    assert!(
        field(&warned[0], "message").is_some_and(|m| m.contains("check_interval_minutes = 15")),
        "{}",
        warned[0]
    );

    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("mode = \"advisory\"\n{text}")).expect("write");
    agent.signal(libc::SIGHUP);
    agent.wait_checks(1, SOON);
    let again = agent.gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"));
    assert_eq!(again.len(), 2, "the drift is emitted again: {again:?}");
    assert_eq!(
        field(&again[1], "episode_id"),
        field(&first, "episode_id"),
        "the same episode"
    );
    assert_eq!(
        agent.checks(),
        2,
        "one check for the reload, none scheduled"
    );
    assert_eq!(
        agent.series(
            r#"drift_detector_info{branch="main",mode="advisory",shard="1/1",version="0.1.0"}"#
        ),
        Some(1.0)
    );
}

/// §8 in the agent: bots whose fetch cannot start within the latency budget are
/// UNKNOWN, the check counts in `drift_check_budget_exceeded_total` and is not a
/// success; once the bots answer, checks succeed again.
#[test]
fn a_check_out_of_budget_makes_the_rest_unknown_and_is_not_a_success() {
    let slugs = ["a", "b", "c"];
    let fleet = Fleet::new(&slugs);
    // One fetch at a time, each allowed the whole budget: the first stalled
    // bot uses it up, the others cannot start.
    let config = fleet.config(
        &slugs,
        "[runtime]\ntimeout_ms = 1000\nmax_in_flight = 1\nlatency_budget_ms = 1000\n",
        "",
    );
    for slug in slugs {
        fleet.bots.set(
            &format!("/{slug}"),
            support::bots::Reply::Stall(
                Duration::from_secs(3),
                support::fleet_agent::SYNCED.to_owned(),
            ),
        );
    }
    let agent = fleet.start(&config, "2s");
    agent.wait_series("drift_check_budget_exceeded_total", 1.0, SOON);
    for slug in slugs {
        agent.wait_series(&format!(r#"bots_in_unknown{{bot_id="{slug}"}}"#), 1.0, SOON);
        let unknown = agent.wait_gov("GOV_CONFIG_DRIFT_UNKNOWN", Some(slug), SOON, |_| true);
        assert_eq!(field(&unknown, "unknown_reason"), Some("runtime_timeout"));
    }
    let completed = agent
        .records()
        .into_iter()
        .find(|r| field(r, "message") == Some("Check completed."))
        .expect("a check completed");
    assert_eq!(completed["fields"]["successful"], false, "{completed}");
    assert_eq!(
        agent.series("drift_last_success_timestamp_seconds"),
        Some(0.0)
    );

    for slug in slugs {
        fleet.edit(slug, support::fleet_agent::SYNCED);
    }
    support::poll(SOON, "a successful check", || {
        (agent.series("drift_last_success_timestamp_seconds") > Some(0.0)).then_some(())
    });
    for slug in slugs {
        agent.wait_series(&format!(r#"bots_in_unknown{{bot_id="{slug}"}}"#), 0.0, SOON);
    }
}

/// §9: a state flush that fails still emits the check's telemetry, makes the
/// check unsuccessful and counts `drift_state_write_errors_total`; once writes
/// work again, checks succeed again. The failure is real: a directory stands
/// where the store writes its flushed-generation file (refused even to root).
#[test]
fn a_failed_state_flush_still_emits_counts_and_makes_the_check_unsuccessful() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    fleet.edit("alpha", &with_limit(12));
    let agent = fleet.start(&config, "1s");
    agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    assert_eq!(agent.series("drift_state_write_errors_total"), Some(0.0));

    let blocker = fleet.state_db().join("cdd-generation.tmp");
    std::fs::create_dir(&blocker).expect("a directory in the file's place");
    agent.wait_series("drift_state_write_errors_total", 1.0, SOON);
    let failed_at = agent.records().len();
    // The checks after it: still reported, not successful.
    agent.wait_checks(2, SOON);
    let after: Vec<serde_json::Value> = agent.records().split_off(failed_at);
    assert!(
        after.iter().any(|r| {
            field(r, "reason_code") == Some("GOV_CONFIG_DRIFT_DETECTED")
                && field(r, "bot_slug") == Some("alpha")
        }),
        "the drift is still emitted while state cannot be written"
    );
    let completed: Vec<&serde_json::Value> = after
        .iter()
        .filter(|r| field(r, "message") == Some("Check completed."))
        .collect();
    assert!(!completed.is_empty());
    assert!(
        completed.iter().all(|r| r["fields"]["successful"] == false),
        "{completed:?}"
    );
    let logged = agent
        .records()
        .into_iter()
        .find(|r| field(r, "message").is_some_and(|m| m.starts_with("State not flushed")))
        .expect("the failed flush is logged");
    assert_eq!(logged["level"], "ERROR");
    assert!(
        field(&logged, "error").is_some_and(|e| e.contains("cdd-generation")),
        "the error names the file: {logged}"
    );
    let stalled = agent
        .series("drift_last_success_timestamp_seconds")
        .expect("last success");

    std::fs::remove_dir(&blocker).expect("the directory removed");
    support::poll(SOON, "a successful check again", || {
        (agent.series("drift_last_success_timestamp_seconds") > Some(stalled)).then_some(())
    });
    let errors = agent
        .series("drift_state_write_errors_total")
        .expect("the counter");
    assert!(errors >= 1.0, "{errors}");
}

#[test]
fn registry_file_is_reread_before_each_check_and_an_empty_one_is_refused() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let registry = fleet.dir.path().join("registry.toml");
    let entry = |s: &str| {
        format!(
            "[[bots]]\nslug = {s:?}\nruntime = {:?}\n\n",
            fleet.bots.url(&format!("/{s}"))
        )
    };
    std::fs::write(&registry, entry("alpha") + &entry("beta")).expect("registry");
    let config = fleet.write_config("registry_file = \"registry.toml\"", "", "");
    fleet.edit("beta", &with_limit(12));
    let agent = fleet.start(&config, "1s");
    let detected = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("beta"), SOON, |_| true);
    let episode = field(&detected, "episode_id").expect("episode").to_owned();
    assert_eq!(agent.series("drift_registry_bots"), Some(2.0));

    // Removed: its series go at the next check, its episode stays (no RESOLVED).
    std::fs::write(&registry, entry("alpha")).expect("registry");
    support::poll(SOON, "beta's series deleted", || {
        (!agent.metrics().contains(r#"bot_id="beta""#)).then_some(())
    });
    assert_eq!(agent.series("drift_registry_bots"), Some(1.0));
    agent.wait_checks(1, SOON);
    assert!(
        agent
            .gov("GOV_CONFIG_DRIFT_RESOLVED", Some("beta"))
            .is_empty()
    );

    // Back in the registry within 24 h: the same episode carries on.
    let seen = agent.gov("GOV_CONFIG_DRIFT_DETECTED", Some("beta")).len();
    std::fs::write(&registry, entry("alpha") + &entry("beta")).expect("registry");
    let latest = support::poll(SOON, "beta detected again", || {
        let records = agent.gov("GOV_CONFIG_DRIFT_DETECTED", Some("beta"));
        (records.len() > seen).then(|| records[records.len() - 1].clone())
    });
    assert_eq!(field(&latest, "episode_id"), Some(episode.as_str()));
    std::fs::write(&registry, entry("alpha")).expect("registry");
    support::poll(SOON, "beta's series deleted again", || {
        (!agent.metrics().contains(r#"bot_id="beta""#)).then_some(())
    });

    // A truncated registry must not read as "no drift".
    std::fs::write(&registry, "").expect("registry");
    agent.wait_series("drift_config_last_reload_successful", 0.0, SOON);
    assert!(agent.series("drift_config_reload_failures_total") >= Some(1.0));
    agent.wait_checks(1, SOON);
    assert_eq!(agent.series("drift_registry_bots"), Some(1.0));
    assert_eq!(agent.series(r#"bots_in_drift{bot_id="alpha"}"#), Some(0.0));
}

#[test]
fn a_registry_fixed_after_a_refused_sighup_is_taken_at_the_next_check() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let registry = fleet.dir.path().join("registry.toml");
    let entry = |s: &str| {
        format!(
            "[[bots]]\nslug = {s:?}\nruntime = {:?}\n\n",
            fleet.bots.url(&format!("/{s}"))
        )
    };
    std::fs::write(&registry, entry("alpha")).expect("registry");
    let config = fleet.write_config("registry_file = \"registry.toml\"", "", "");
    let agent = fleet.start(&config, "1s");
    agent.wait_series("drift_config_last_reload_successful", 1.0, SOON);
    agent.wait_series("drift_registry_bots", 1.0, SOON);

    // A config change and a broken registry in one SIGHUP: refused.
    fleet.write_config(
        "mode = \"advisory\"\nregistry_file = \"registry.toml\"",
        "",
        "",
    );
    std::fs::write(&registry, "[[bots]]\nslug = ").expect("registry");
    agent.signal(libc::SIGHUP);
    agent.wait_series("drift_config_last_reload_successful", 0.0, SOON);
    let info = |mode: &str| {
        format!(
            r#"drift_detector_info{{branch="main",mode="{mode}",shard="1/1",version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    };
    assert_eq!(agent.series(&info("shadow")), Some(1.0));
    agent.wait_checks(1, SOON);
    assert_eq!(
        agent.series("drift_config_last_reload_successful"),
        Some(0.0)
    );

    // The registry is fixed, with no second SIGHUP: the next check takes the
    // whole reload, and the gauge says so.
    std::fs::write(&registry, entry("alpha") + &entry("beta")).expect("registry");
    agent.wait_series("drift_config_last_reload_successful", 1.0, SOON);
    agent.wait_series("drift_registry_bots", 2.0, SOON);
    agent.wait_series(&info("advisory"), 1.0, SOON);
    agent.wait_series(r#"bots_in_drift{bot_id="beta"}"#, 0.0, SOON);
}

#[test]
fn a_check_with_another_repository_never_repoints_the_agents_clone() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    let agent = fleet.start(&config, "1s");
    fleet.edit("alpha", &with_limit(12));
    let detected = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let episode = field(&detected, "episode_id").expect("episode").to_owned();
    let commit = fleet.repo.head();

    // A staging config in the same folder, the same checkout_dir by default,
    // another repository whose committed config equals the running one.
    let staging = support::origin::FixtureRepo::new();
    staging.write("bots/alpha.json", &with_limit(12));
    staging.commit("staging configs");
    let text = std::fs::read_to_string(&config).expect("config");
    let prod_url = format!("{:?}", fleet.repo.path().display().to_string());
    let staging_url = format!("{:?}", staging.path().display().to_string());
    assert!(text.contains(&prod_url));
    let staging_config = fleet.dir.path().join("staging.toml");
    std::fs::write(&staging_config, text.replace(&prod_url, &staging_url)).expect("staging");

    let out = support::run(
        &["check", "--config", staging_config.to_str().expect("utf-8")],
        fleet.dir.path(),
    );
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(
        err.contains(&fleet.repo.path().display().to_string())
            && err.contains(&staging.path().display().to_string())
            && err.contains("checkout_dir"),
        "{err}"
    );
    let clone = git2::Repository::open(fleet.dir.path().join("state/repo")).expect("the clone");
    assert_eq!(
        clone.find_remote("origin").expect("origin").url(),
        Ok(fleet.repo.path().display().to_string().as_str())
    );
    let record = std::fs::read_to_string(
        fleet
            .dir
            .path()
            .join("state/repo/config-drift-detector-fetch.json"),
    )
    .expect("the fetch record");
    assert!(
        record.contains(&fleet.repo.path().display().to_string()),
        "{record}"
    );
    assert!(
        !record.contains(&staging.path().display().to_string()),
        "{record}"
    );

    // The agent goes on against its own repository: same episode, same commit.
    agent.wait_checks(2, SOON);
    let latest = agent
        .gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"))
        .pop()
        .expect("detected");
    assert_eq!(field(&latest, "episode_id"), Some(episode.as_str()));
    assert_eq!(
        latest["fields"]["report"]["committed_commit"].as_str(),
        Some(commit.as_str()),
        "{latest}"
    );
    assert!(
        agent
            .gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"))
            .is_empty()
    );
}

#[test]
fn mode_off_runs_no_checks_has_no_bot_series_and_is_healthy() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "mode = \"off\"", "");
    let mut agent = fleet.start(&config, "1s");
    let (code, body) = agent.get("/healthz/config_drift_detector").expect("health");
    assert_eq!(code, 200);
    assert!(body.contains(r#""mode":"off""#), "{body}");
    let page = agent.metrics();
    assert!(
        !page.contains("bot_id="),
        "no per-bot series in mode off:\n{page}"
    );
    assert_eq!(
        series_value(
            &page,
            r#"drift_detector_info{branch="main",mode="off",shard="1/1",version="0.1.0"}"#
        ),
        Some(1.0)
    );
    // Time for several checks passes: a shadow agent beside it, on the same
    // interval, completes three meanwhile.
    let witness_fleet = Fleet::new(&["alpha"]);
    let witness_config = witness_fleet.config(&["alpha"], "", "");
    let witness = witness_fleet.start(&witness_config, "1s");
    witness.wait_checks(3, SOON);
    assert_eq!(agent.checks(), 0, "no check ran in mode off");
    assert_eq!(
        fleet
            .bots
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no bot was fetched"
    );
    assert!(!agent.metrics().contains("bot_id="));
    assert!(agent.terminate(SOON).success());
    assert_eq!(agent.checks(), 0, "no check ran in mode off");
}

#[test]
fn sigterm_and_sigint_stop_the_agent_cleanly_with_exit_0() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let fleet = Fleet::new(&["alpha"]);
        let config = fleet.config(&["alpha"], "", "");
        let mut agent = fleet.start(&config, "1s");
        agent.wait_checks(1, SOON);
        agent.signal(signal);
        let status = agent.wait_exit(SOON);
        assert!(status.success(), "signal {signal}: {status}");
        // The state was flushed and closed: it opens at once.
        StateStore::open(&fleet.state_db(), 8 << 20).expect("the state opens after exit");
    }
}

#[test]
fn startup_errors_exit_1_with_one_sentence() {
    let fleet = Fleet::new(&["alpha"]);

    // A bad config.
    let config = fleet.config(&["alpha"], "check_interval_minutes = 90", "");
    let out = support::run(
        &["run", "--config", config.to_str().expect("utf-8")],
        fleet.dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        support::stderr(&out).contains("check_interval_minutes"),
        "{}",
        support::stderr(&out)
    );

    // --check-interval below 1 s.
    let config = fleet.config(&["alpha"], "", "");
    let c = config.to_str().expect("utf-8");
    let out = support::run(
        &["run", "--config", c, "--check-interval", "500ms"],
        fleet.dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(support::stderr(&out).contains("at least 1s"));

    // The port is taken.
    let taken = std::net::TcpListener::bind(fleet.addr).expect("hold the port");
    let out = support::run(&["run", "--config", c], fleet.dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        support::stderr(&out).contains(&format!("cannot listen on {}", fleet.addr)),
        "{}",
        support::stderr(&out)
    );
    drop(taken);

    // A corrupt state database: named, never reset.
    let mut agent = fleet.start(&config, "1s");
    agent.wait_checks(1, SOON);
    assert!(agent.terminate(SOON).success());
    drop(agent);
    {
        let db = sled::Config::new()
            .path(fleet.state_db())
            .open()
            .expect("sled");
        let bots = db.open_tree("bots").expect("tree");
        let mut value = bots.get("alpha").expect("read").expect("alpha").to_vec();
        let middle = value.len() / 2;
        value[middle] ^= 0x01;
        bots.insert("alpha", value).expect("write");
        db.flush().expect("flush");
    }
    let out = support::run(&["run", "--config", c], fleet.dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = support::stderr(&out);
    assert!(
        err.contains(&fleet.state_db().display().to_string()) && err.contains("corrupt"),
        "{err}"
    );
}

/// Stderr is text for people unless `--log-format json` is asked for, and
/// `RUST_LOG` filters it: at `warn`, the drift record stays and the per-check
/// INFO lines go.
#[test]
fn stderr_logs_are_text_by_default_and_rust_log_filters_them() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    fleet.edit("alpha", &with_limit(12));
    let mut agent = AgentProcess::spawn(
        &config,
        fleet.addr,
        &["--check-interval", "1s"],
        &[("RUST_LOG", "warn")],
    );
    let detected = |l: &&str| l.contains(r#"reason_code="GOV_CONFIG_DRIFT_DETECTED""#);
    // Two drift records: at least one check after the first has run.
    support::poll(SOON, "two drift records on stderr", || {
        (agent.log_text().lines().filter(detected).count() >= 2).then_some(())
    });
    assert!(agent.terminate(SOON).success());
    let text = agent.log_text();
    let drift = text.lines().find(detected).expect("a drift line");
    assert!(
        drift.contains(" WARN config_drift::gov: ") && !drift.starts_with('{'),
        "a text line for people: {drift}"
    );
    assert!(drift.contains(r#"bot_slug="alpha""#), "{drift}");
    assert!(
        !text.lines().any(|l| l.contains(" INFO ")),
        "RUST_LOG=warn drops INFO lines:\n{text}"
    );
    assert!(
        !text.contains("Check completed."),
        "RUST_LOG=warn drops the per-check INFO record:\n{text}"
    );
}

/// A journald or log-shipper user gets what OTLP gets: the GOV records on
/// stderr carry the whole report (values, `since`, `matches_commit`), the user
/// message, and RESOLVED the resolving commit's author and summary; as an
/// object in `--log-format json`, as JSON text in the text format.
#[test]
fn stderr_gov_records_carry_the_report_and_the_resolving_commit() {
    let fleet = Fleet::new(&["alpha"]);
    let config = fleet.config(&["alpha"], "", "");
    fleet.edit("alpha", &with_limit(12));
    let agent = fleet.start(&config, "1s");
    let detected = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let fields = &detected["fields"];
    assert_eq!(
        fields["user_message"].as_str(),
        Some(
            "The running configuration of one of the system's safeties differs from the version on file. Operators must reconcile."
        )
    );
    let report = &fields["report"];
    assert_eq!(report["kind"], "ConfigDriftReport", "{detected}");
    assert_eq!(report["bot_slug"], "alpha");
    let drifts = report["drifts"].as_array().expect("drifts");
    assert_eq!(drifts.len(), 1, "{report}");
    assert_eq!(drifts[0]["field"], "limit");
    assert_eq!(drifts[0]["running"], 12);
    assert_eq!(drifts[0]["committed"], 10);
    assert!(drifts[0]["since_ts_ms"].as_i64().is_some(), "{report}");
    assert!(report["matches_commit"].is_object(), "{report}");
    assert_eq!(report["episode_id"], fields["episode_id"]);

    fleet.repo.write("bots/alpha.json", &with_limit(12));
    let adopted = fleet.repo.commit("Adopt limit 12 for alpha");
    let resolved = agent.wait_gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"), SOON, |_| true);
    let fields = &resolved["fields"];
    assert_eq!(field(&resolved, "commit_sha"), Some(adopted.as_str()));
    assert!(
        field(&resolved, "commit_author").is_some_and(|a| !a.is_empty()),
        "{resolved}"
    );
    assert_eq!(
        field(&resolved, "commit_summary"),
        Some("Adopt limit 12 for alpha")
    );
    assert_eq!(fields["report"]["status"], "IN_SYNC", "{resolved}");

    // The text format carries the same report, as one line of JSON.
    drop(agent);
    let mut text_agent = AgentProcess::spawn(&config, fleet.addr, &["--check-interval", "1s"], &[]);
    fleet.edit("alpha", &with_limit(14));
    let line = support::poll(SOON, "a text drift record", || {
        text_agent
            .log_text()
            .lines()
            .find(|l| l.contains(r#"reason_code="GOV_CONFIG_DRIFT_DETECTED""#))
            .map(str::to_owned)
    });
    let json = line
        .split_once("report=")
        .map(|(_, r)| r)
        .expect("a report field");
    let report: serde_json::Value = serde_json::from_str(json).expect("the report is JSON");
    assert_eq!(report["drifts"][0]["running"], 14, "{line}");
    assert!(text_agent.terminate(SOON).success());
}
