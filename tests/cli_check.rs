//! `check` through the built binary against a real Git repo and loopback bots.

mod support;

use std::time::{Duration, Instant};

use support::bots::{BotServer, Reply, dead_url};
use support::origin::FixtureRepo;
use support::{json_lines, run, stderr, write_config};

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "intraday_drawdown_pct": { "type": "number" },
    "max_position_usd": { "type": "integer", "default": 1000 },
    "venues": { "type": "array", "uniqueItems": true, "items": { "type": "string" } }
  }
}"#;

fn committed(drawdown: &str) -> String {
    format!(r#"{{"intraday_drawdown_pct": {drawdown}, "venues": ["a", "b"]}}"#)
}

struct Fleet {
    repo: FixtureRepo,
    bots: BotServer,
    dir: tempfile::TempDir,
}

/// Two bots, both in sync: `risk.killswitch` and `mm.eu`.
/// How many bots `fleet()` registers: a loop over its reports checks this first,
/// so that no output can pass for every bot being right.
const FLEET_BOTS: usize = 2;

fn fleet() -> Fleet {
    let repo = FixtureRepo::new();
    for slug in ["risk.killswitch", "mm.eu"] {
        repo.write(&format!("bots/{slug}.json"), &committed("12"));
        repo.write(&format!("schemas/{slug}.schema.json"), SCHEMA);
    }
    repo.commit("initial configs");
    let bots = BotServer::start();
    // Key order, number format and a schema default differ from the committed text.
    bots.set(
        "/risk",
        Reply::Json(
            r#"{"venues": ["b", "a"], "max_position_usd": 1000, "intraday_drawdown_pct": 12.0}"#
                .into(),
        ),
    );
    bots.set(
        "/mm",
        Reply::Json(r#"{"intraday_drawdown_pct": 1.2e1, "venues": ["a", "b"]}"#.into()),
    );
    Fleet {
        repo,
        bots,
        dir: tempfile::tempdir().expect("tmp"),
    }
}

impl Fleet {
    fn config(&self, extra_bots: &[(&str, String)]) -> std::path::PathBuf {
        self.config_with("", "", extra_bots)
    }

    /// `top` goes before the tables, `repo` at the end of `[repo]`.
    fn config_with(
        &self,
        top: &str,
        repo: &str,
        extra_bots: &[(&str, String)],
    ) -> std::path::PathBuf {
        let mut bots = vec![
            ("risk.killswitch", self.bots.url("/risk")),
            ("mm.eu", self.bots.url("/mm")),
        ];
        bots.extend(extra_bots.iter().cloned());
        let tables = format!("{repo}\n[runtime]\ntimeout_ms = 400\n");
        write_config(self.dir.path(), self.repo.path(), &bots, top, &tables)
    }

    fn check(&self, extra_bots: &[(&str, String)], args: &[&str]) -> std::process::Output {
        self.check_config(&self.config(extra_bots), args)
    }

    fn check_config(&self, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
        let mut all = vec![
            "check",
            "--config",
            cfg.to_str().expect("utf8"),
            "--format",
            "json",
        ];
        all.extend_from_slice(args);
        run(&all, self.dir.path())
    }
}

fn by_slug<'a>(reports: &'a [serde_json::Value], slug: &str) -> &'a serde_json::Value {
    reports
        .iter()
        .find(|r| r["bot_slug"] == slug)
        .unwrap_or_else(|| panic!("no report for {slug}"))
}

#[test]
fn identical_configs_report_no_drift_despite_key_order_number_format_and_defaults() {
    let f = fleet();
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r["status"], "IN_SYNC", "{r}");
        assert_eq!(r["drifts"], serde_json::json!([]));
        assert_eq!(r["reason_code"], serde_json::Value::Null);
    }
    // Reports come in slug byte order.
    assert_eq!(reports[0]["bot_slug"], "mm.eu");
    assert_eq!(reports[1]["bot_slug"], "risk.killswitch");
}

#[test]
fn one_numeric_field_changed_by_one_reports_exactly_that_drift() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 11, "venues": ["a", "b"]}"#.into()),
    );
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = json_lines(&out);
    let r = by_slug(&reports, "risk.killswitch");
    assert_eq!(r["status"], "DRIFT");
    assert_eq!(r["reason_code"], "GOV_CONFIG_DRIFT_DETECTED");
    let drifts = r["drifts"].as_array().expect("drifts");
    assert_eq!(drifts.len(), 1, "{r}");
    assert_eq!(drifts[0]["field"], "intraday_drawdown_pct");
    assert_eq!(drifts[0]["kind"], "changed");
    assert_eq!(drifts[0]["running"], 11);
    assert_eq!(drifts[0]["committed"], 12);
    assert_eq!(drifts[0]["delta"], -1);
    assert_eq!(drifts[0]["since_ts_ms"], r["checked_at_ms"]);
    assert_eq!(by_slug(&reports, "mm.eu")["status"], "IN_SYNC");
}

#[test]
fn the_pinned_branch_is_the_one_read() {
    let f = fleet();
    let main_head = f.repo.head();
    f.repo.checkout("staging", true);
    f.repo.write("bots/risk.killswitch.json", &committed("99"));
    let staging_head = f.repo.commit("staging experiment");
    assert_ne!(main_head, staging_head);
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), FLEET_BOTS, "{}", stderr(&out));
    for r in reports {
        assert_eq!(r["committed_ref"], "main");
        assert_eq!(r["committed_commit"], main_head.as_str());
        assert_eq!(r["status"], "IN_SYNC");
    }
}

#[test]
fn a_missing_branch_is_branch_not_found_never_a_fallback() {
    let f = fleet();
    f.repo.rename_branch("main", "trunk");
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), FLEET_BOTS, "{}", stderr(&out));
    for r in reports {
        assert_eq!(r["status"], "UNKNOWN");
        assert_eq!(r["unknown_reason"], "branch_not_found");
        assert_eq!(r["committed_commit"], serde_json::Value::Null);
    }
}

#[test]
fn a_blocked_config_repo_makes_every_bot_unknown() {
    let f = fleet();
    // A first check succeeds, so the clone exists and has content.
    assert_eq!(f.check(&[], &[]).status.code(), Some(0));
    let away = f.repo.block();
    let out = f.check(&[], &[]);
    f.repo.unblock(&away);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r["status"], "UNKNOWN");
        assert_eq!(r["reason_code"], "GOV_CONFIG_DRIFT_UNKNOWN");
        assert_eq!(r["unknown_reason"], "repo_unreachable");
        assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Recovery: the repo back, the next check is in sync again.
    assert_eq!(f.check(&[], &[]).status.code(), Some(0));
}

#[test]
fn misbehaving_bots_are_unknown_with_their_reason_and_the_others_unaffected() {
    let f = fleet();
    let body = committed("12");
    f.bots
        .set("/slow", Reply::Stall(Duration::from_secs(10), body.clone()));
    f.bots.set(
        "/trickle",
        Reply::Trickle(Duration::from_millis(200), body.clone()),
    );
    f.bots.set("/error", Reply::Status(500));
    f.bots
        .set("/redirect", Reply::Redirect("/elsewhere".into()));
    f.bots.set("/huge", Reply::DeclaredLength(1 << 40));
    f.bots.set("/endless", Reply::Endless(8192));
    f.bots
        .set("/notjson", Reply::Json("<html>hello</html>".into()));
    f.bots.set("/array", Reply::Json("[1, 2]".into()));
    f.bots.set(
        "/dupkey",
        Reply::Json(r#"{"intraday_drawdown_pct": 12, "intraday_drawdown_pct": 12}"#.into()),
    );
    let extra: Vec<(&str, String)> = vec![
        ("b.slow", f.bots.url("/slow")),
        ("b.trickle", f.bots.url("/trickle")),
        ("b.error", f.bots.url("/error")),
        ("b.redirect", f.bots.url("/redirect")),
        ("b.huge", f.bots.url("/huge")),
        ("b.endless", f.bots.url("/endless")),
        ("b.notjson", f.bots.url("/notjson")),
        ("b.array", f.bots.url("/array")),
        ("b.dupkey", f.bots.url("/dupkey")),
        ("b.dead", dead_url()),
    ];
    for (slug, _) in &extra {
        f.repo.write(&format!("bots/{slug}.json"), &committed("12"));
    }
    f.repo.commit("more bots");
    let started = Instant::now();
    let out = f.check(&extra, &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    let expect = [
        ("b.slow", "runtime_timeout"),
        ("b.trickle", "runtime_timeout"),
        ("b.error", "runtime_bad_response"),
        ("b.redirect", "runtime_bad_response"),
        ("b.huge", "runtime_too_large"),
        ("b.endless", "runtime_too_large"),
        ("b.notjson", "runtime_bad_response"),
        ("b.array", "runtime_bad_response"),
        ("b.dupkey", "runtime_bad_response"),
        ("b.dead", "runtime_unreachable"),
    ];
    for (slug, reason) in expect {
        let r = by_slug(&reports, slug);
        assert_eq!(r["status"], "UNKNOWN", "{slug}: {r}");
        assert_eq!(r["unknown_reason"], reason, "{slug}: {r}");
        assert_eq!(r["drifts"], serde_json::json!([]), "{slug}");
    }
    assert_eq!(by_slug(&reports, "risk.killswitch")["status"], "IN_SYNC");
    assert_eq!(by_slug(&reports, "mm.eu")["status"], "IN_SYNC");
    // Bounded by the 400 ms timeout, not by the 10 s bot (generous: process start, clone).
    assert!(took < Duration::from_secs(8), "check took {took:?}");
}

#[test]
fn a_committed_file_that_is_missing_or_a_symlink_is_unknown() {
    let f = fleet();
    f.repo.write("elsewhere.json", &committed("12"));
    std::os::unix::fs::symlink("../elsewhere.json", f.repo.path().join("bots/b.link.json"))
        .expect("symlink");
    f.repo.commit("a symlink");
    let extra = vec![
        ("b.link", f.bots.url("/risk")),
        ("b.absent", f.bots.url("/risk")),
    ];
    let out = f.check(&extra, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(
        by_slug(&reports, "b.link")["unknown_reason"],
        "committed_config_invalid"
    );
    assert_eq!(
        by_slug(&reports, "b.absent")["unknown_reason"],
        "committed_config_missing"
    );
}

#[test]
fn bot_filter_and_unregistered_bot() {
    let f = fleet();
    let out = f.check(&[], &["--bot", "mm.eu"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["bot_slug"], "mm.eu");

    let out = f.check(&[], &["--bot", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`nope`"), "{}", stderr(&out));
}

#[test]
fn shards_split_the_fleet_without_overlap() {
    let f = fleet();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let out = f.check(&[], &["--shard", &shard]);
        assert!(matches!(out.status.code(), Some(0)), "{}", stderr(&out));
        seen.extend(
            json_lines(&out)
                .into_iter()
                .map(|r| r["bot_slug"].as_str().unwrap_or("").to_owned()),
        );
    }
    seen.sort();
    assert_eq!(seen, ["mm.eu", "risk.killswitch"]);
}

#[test]
fn table_output_has_a_row_per_drift() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 10, "venues": ["a", "c"]}"#.into()),
    );
    let cfg = f.config(&[]);
    let out = run(
        &["check", "--config", cfg.to_str().expect("utf8")],
        f.dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let text = support::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("BOT"), "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("risk.killswitch"))
            .count(),
        3,
        "{text}"
    );
    assert!(
        text.contains("intraday_drawdown_pct") && text.contains("10 → 12"),
        "{text}"
    );
    assert!(text.contains(r#"venues[="c"]"#), "{text}");
    assert!(!text.contains('\x1b'), "no colour off a terminal");
}

#[test]
fn every_report_line_matches_the_shipped_json_schema() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 10}"#.into()),
    );
    let extra = vec![("b.dead", dead_url())];
    f.repo.write("bots/b.dead.json", &committed("1"));
    f.repo.commit("dead bot");
    let out = f.check(&extra, &[]);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("schemas/ConfigDriftReport.schema.json").expect("schema file"),
    )
    .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 3);
    for r in &reports {
        let errors: Vec<String> = validator
            .iter_errors(r)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{r}\n{errors:?}");
    }
}

#[test]
fn matches_commit_names_the_revision_a_drifting_bot_runs() {
    let f = fleet();
    f.repo.write("bots/risk.killswitch.json", &committed("10"));
    f.repo.commit("drawdown 10");
    f.repo.write("README.md", "unrelated");
    let newest_with_10 = f.repo.commit("unrelated change");
    f.repo.write("bots/risk.killswitch.json", &committed("12"));
    let head = f.repo.commit("back to 12");
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 10, "venues": ["a", "b"]}"#.into()),
    );
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = json_lines(&out);
    let r = by_slug(&reports, "risk.killswitch");
    assert_eq!(r["committed_commit"], head.as_str());
    let m = &r["matches_commit"];
    assert_eq!(m["exact"], true, "{r}");
    assert_eq!(
        m["commit"],
        newest_with_10.as_str(),
        "the newest commit with that content"
    );
    assert_eq!(m["commits_behind"], 1);
    assert_eq!(m["summary"], "unrelated change");
    assert_eq!(m["author"], "Ada Lovelace");
    assert!(m.get("differing_fields").is_none());

    // Nothing in the history matches: the closest version, newest on ties.
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 10, "venues": ["a"]}"#.into()),
    );
    let out = f.check(&[], &[]);
    let reports = json_lines(&out);
    let m = &by_slug(&reports, "risk.killswitch")["matches_commit"];
    assert_eq!(m["exact"], false, "{m}");
    assert_eq!(m["differing_fields"], 1);
    assert_eq!(m["commit"], newest_with_10.as_str());
    // In-sync bots carry no matches_commit.
    assert!(by_slug(&reports, "mm.eu").get("matches_commit").is_none());
}

#[test]
fn ignore_fields_are_never_reported_and_are_counted() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 12, "venues": ["a", "b"], "runtime": {"started_at": 5, "pid": 7}}"#.into()),
    );
    let cfg = f.config_with("ignore_fields = [\"runtime\"]", "", &[]);
    let out = f.check_config(&cfg, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(by_slug(&reports, "risk.killswitch")["ignored"], 2);
    assert_eq!(by_slug(&reports, "mm.eu")["ignored"], 0);
    // Without the rule the same fields are drift.
    assert_eq!(f.check(&[], &[]).status.code(), Some(2));
}

#[test]
fn secrets_are_compared_but_never_shown() {
    let f = fleet();
    let schema = r#"{"properties": {"api_key": {"type": "string", "x-drift-secret": true, "maxLength": 8}}}"#;
    f.repo.write("schemas/risk.killswitch.schema.json", schema);
    f.repo.write(
        "bots/risk.killswitch.json",
        r#"{"intraday_drawdown_pct": 12, "venues": ["a", "b"], "api_key": "hunter2"}"#,
    );
    f.repo.commit("a secret");
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 12, "venues": ["a", "b"], "api_key": "correct-horse-battery"}"#.into()),
    );
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let all = format!("{}{}", support::stdout(&out), stderr(&out));
    assert!(
        !all.contains("hunter2") && !all.contains("correct-horse"),
        "a secret leaked: {all}"
    );
    let reports = json_lines(&out);
    let r = by_slug(&reports, "risk.killswitch");
    let d = &r["drifts"][0];
    assert_eq!(d["field"], "api_key");
    let token = d["running"].as_str().expect("a token");
    assert!(
        token.starts_with("<redacted:hmac-sha256:")
            && token.len() == "<redacted:hmac-sha256:>".len() + 8,
        "{token}"
    );
    assert_ne!(d["running"], d["committed"]);
    assert!(d.get("delta").is_none());
    // The schema error about the running value is there, without the value.
    let errors = r["schema_errors"].as_array().expect("schema errors");
    assert!(
        errors
            .iter()
            .any(|e| e["side"] == "running" && e["path"] == "api_key"),
        "{r}"
    );
}

#[test]
fn schema_errors_are_listed_and_do_not_stop_the_diff() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": "12", "venues": ["a", "b"]}"#.into()),
    );
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = json_lines(&out);
    let r = by_slug(&reports, "risk.killswitch");
    assert_eq!(r["drifts"][0]["field"], "intraday_drawdown_pct");
    assert_eq!(r["drifts"][0]["running"], "12");
    assert!(
        r["drifts"][0].get("delta").is_none(),
        "no delta between a string and a number"
    );
    assert_eq!(r["schema"], "schemas/risk.killswitch.schema.json");
    let errors = r["schema_errors"].as_array().expect("schema errors");
    assert_eq!(errors.len(), 1, "{r}");
    assert_eq!(errors[0]["side"], "running");
    assert_eq!(errors[0]["path"], "intraday_drawdown_pct");
}

#[test]
fn an_invalid_committed_config_or_schema_is_unknown() {
    let f = fleet();
    f.repo.write(
        "bots/risk.killswitch.json",
        r#"{"intraday_drawdown_pct": 12, "intraday_drawdown_pct": 13}"#,
    );
    f.repo.write(
        "schemas/mm.eu.schema.json",
        r##"{"type": "object", "properties": {"x": {"$ref": "#/$defs/nowhere"}}}"##,
    );
    f.repo.commit("broken");
    let out = f.check(&[], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    for slug in ["risk.killswitch", "mm.eu"] {
        let r = by_slug(&reports, slug);
        assert_eq!(r["unknown_reason"], "committed_config_invalid", "{r}");
    }
    assert!(
        by_slug(&reports, "risk.killswitch")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("duplicate key")
    );
}

#[test]
fn a_file_source_is_read() {
    let f = fleet();
    let running = f.dir.path().join("running.yaml");
    std::fs::write(&running, "intraday_drawdown_pct: 9\nvenues: [a, b]\n").expect("write");
    f.repo.write("bots/b.file.json", &committed("12"));
    f.repo.commit("file bot");
    let url = format!("file://{}", running.display());
    let out = f.check(&[("b.file", url)], &["--bot", "b.file"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports[0]["drifts"][0]["running"], 9);
}

#[test]
fn require_signed_commits_makes_unverified_commits_unknown() {
    let f = fleet();
    std::fs::write(f.dir.path().join("allowed_signers"), "").expect("write");
    let cfg = f.config_with(
        "",
        "require_signed_commits = true\nallowed_signers = \"allowed_signers\"",
        &[],
    );
    let out = f.check_config(&cfg, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), FLEET_BOTS, "{}", stderr(&out));
    for r in reports {
        assert_eq!(r["unknown_reason"], "committed_unverified", "{r}");
        assert_eq!(r["committed_signature"], "unsigned");
    }
}

#[test]
fn an_outage_turns_stale_after_max_staleness() {
    let f = fleet();
    let cfg = f.config_with("", "max_staleness_s = 1", &[]);
    assert_eq!(f.check_config(&cfg, &[]).status.code(), Some(0));
    let away = f.repo.block();
    let out = f.check_config(&cfg, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let first = json_lines(&out);
    assert_eq!(first.len(), FLEET_BOTS, "{}", stderr(&out));
    assert!(
        first
            .iter()
            .all(|r| r["unknown_reason"] == "repo_unreachable"
                || r["unknown_reason"] == "repo_stale"),
        "{first:?}"
    );
    support::poll(Duration::from_secs(20), "repo_stale", || {
        let out = f.check_config(&cfg, &[]);
        let reports = json_lines(&out);
        (out.status.code() == Some(3)
            && reports.len() == FLEET_BOTS
            && reports.iter().all(|r| r["unknown_reason"] == "repo_stale"))
        .then_some(())
    });
    f.repo.unblock(&away);
    assert_eq!(
        f.check_config(&cfg, &[]).status.code(),
        Some(0),
        "healthy again once the repo is back"
    );
}

#[test]
fn a_parent_whose_children_are_all_ignored_is_in_sync() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(
            r#"{"intraday_drawdown_pct": 12, "venues": ["a", "b"], "runtime": {"started_at": "2026-12-01T00:00:00Z"}}"#
                .into(),
        ),
    );
    let cfg = f.config_with("ignore_fields = [\"runtime.started_at\"]", "", &[]);
    let out = f.check_config(&cfg, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        support::stdout(&out),
        stderr(&out)
    );
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 2);
    let r = by_slug(&reports, "risk.killswitch");
    assert_eq!(r["status"], "IN_SYNC", "{r}");
    assert_eq!(r["ignored"], 1);
    // A parent that is really empty on one side is still a drift.
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": 12, "venues": ["a", "b"], "runtime": {}}"#.into()),
    );
    let out = f.check_config(&cfg, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 2);
    assert_eq!(
        by_slug(&reports, "risk.killswitch")["drifts"][0]["field"],
        "runtime"
    );
}

#[test]
fn the_table_shows_schema_errors() {
    let f = fleet();
    f.bots.set(
        "/risk",
        Reply::Json(r#"{"intraday_drawdown_pct": "12", "venues": ["a", "b"]}"#.into()),
    );
    let cfg = f.config(&[]);
    let out = run(
        &["check", "--config", cfg.to_str().expect("utf8")],
        f.dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = support::stdout(&out);
    let header = text
        .lines()
        .position(|l| l.starts_with("BOT") && l.contains("SCHEMA ERROR"))
        .unwrap_or_else(|| panic!("no schema error table:\n{text}"));
    let rows: Vec<&str> = text.lines().skip(header + 1).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].starts_with("risk.killswitch")
            && rows[0].contains("running")
            && rows[0].contains("intraday_drawdown_pct"),
        "{text}"
    );
}

#[test]
fn a_local_repository_path_that_is_gone_is_named() {
    let f = fleet();
    let gone = f.dir.path().join("no-such-repo");
    let text = std::fs::read_to_string(f.config(&[])).expect("config");
    let cfg = f.dir.path().join("gone.toml");
    std::fs::write(
        &cfg,
        text.replace(
            &format!("{:?}", f.repo.path().display().to_string()),
            &format!("{:?}", gone.display().to_string()),
        ),
    )
    .expect("config");
    let out = f.check_config(&cfg, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r["unknown_reason"], "repo_unreachable", "{r}");
        let detail = r["detail"].as_str().expect("detail");
        assert!(
            detail.contains("does not exist") && detail.contains(&gone.display().to_string()),
            "{detail}"
        );
        assert!(!detail.contains("unsupported URL protocol"), "{detail}");
    }
}
