//! The real tools the telemetry tests rely on work here, without the agent:
//! OTLP into vmagent comes out of Prometheus under Prometheus names, rotel prints
//! what it receives, promtool and amtool judge files, Alertmanager takes alerts.
//! A missing tool skips a test outside CI and fails it under `CI=true`.

mod support;

use std::time::Duration;

use support::tools::{self, Alertmanager, Prometheus, Rotel, VmAgent, otlp};

const WAIT: Duration = Duration::from_secs(30);

fn label<'a>(series: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    series["metric"][name].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_reach_prometheus_under_translated_names() {
    if !tools::require_all(&["prometheus", "vmagent"]) {
        return;
    }
    let prom = Prometheus::start("global: {}\n").await.expect("prometheus");
    let vm = VmAgent::start(&prom.remote_write_url())
        .await
        .expect("vmagent");

    let resource = [("service.name", "cdd-smoke")];
    let counter = otlp::Metric {
        name: "demo_things",
        unit: "{thing}",
        description: "Things counted.",
        point: otlp::Point::Counter(7),
        attributes: &[("bot_id", "bot-1")],
    };
    let gauge = otlp::Metric {
        name: "demo_since_timestamp",
        unit: "s",
        description: "When it began.",
        point: otlp::Point::Gauge(1234.5),
        attributes: &[("bot_id", "bot-1")],
    };
    vm.push_metrics(otlp::metrics_request(&resource, &counter))
        .await
        .expect("vmagent takes the counter");
    vm.push_metrics(otlp::metrics_request(&resource, &gauge))
        .await
        .expect("vmagent takes the gauge");

    // A monotonic sum gains `_total`; a `{…}` unit adds nothing.
    let found = prom
        .wait_for_series("demo_things_total", WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\nvmagent:\n{}", vm.service.output().text()));
    let series = &found[0];
    assert_eq!(series["value"][1], "7", "{found}");
    assert_eq!(label(series, "bot_id"), Some("bot-1"), "{found}");
    // Resource attributes arrive as plain labels through vmagent.
    assert_eq!(label(series, "service_name"), Some("cdd-smoke"), "{found}");

    // Unit `s` becomes the `_seconds` suffix.
    let found = prom
        .wait_for_series("demo_since_timestamp_seconds", WAIT)
        .await
        .expect("the gauge arrives");
    assert_eq!(found[0]["value"][1], "1234.5", "{found}");

    // The untranslated names do not exist: the translation, not a copy, arrived.
    for raw in ["demo_things", "demo_since_timestamp"] {
        let r = prom.query(raw).await.expect("query");
        assert_eq!(r, serde_json::json!([]), "{raw} should not exist");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_prints_an_otlp_log_record_it_receives_over_http() {
    if !tools::require_all(&["rotel-agent"]) {
        return;
    }
    let rotel = Rotel::start().await.expect("rotel");
    let request = otlp::logs_request(
        &[("service.name", "cdd-smoke")],
        9,
        "INFO",
        "Smoke log record.",
        &[("reason_code", "GOV_CONFIG_DRIFT_SMOKE")],
    );
    rotel.push_logs(request).await.expect("rotel takes the log");

    let out = tokio::task::spawn_blocking(move || {
        let out = rotel.wait_for_output("reason_code: Str(GOV_CONFIG_DRIFT_SMOKE)", WAIT);
        drop(rotel);
        out
    })
    .await
    .expect("the wait ran")
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("Body: Str(Smoke log record.)"), "{out}");
    assert!(out.contains("service.name: Str(cdd-smoke)"), "{out}");
    assert!(out.contains("SeverityText: INFO"), "{out}");
}

#[test]
fn promtool_accepts_a_clean_exposition_and_rejects_broken_ones() {
    if tools::require("promtool").is_none() {
        return;
    }
    let clean = "# HELP drift_reports_total Reports made.\n\
                 # TYPE drift_reports_total counter\n\
                 drift_reports_total{status=\"in_sync\"} 3\n";
    let r = tools::promtool_check_metrics(clean).expect("promtool runs");
    assert!(r.passed(), "{r}");

    // Parses, but a counter without `_total` and without HELP is a lint failure.
    let lint = "# TYPE drift_reports counter\ndrift_reports 3\n";
    let r = tools::promtool_check_metrics(lint).expect("promtool runs");
    assert_eq!(r.code, Some(3), "{r}");
    assert!(r.stderr.contains("_total"), "{r}");

    let broken = "drift_reports_total{status= 3\n";
    let r = tools::promtool_check_metrics(broken).expect("promtool runs");
    assert_eq!(r.code, Some(1), "{r}");
}

#[test]
fn promtool_checks_and_unit_tests_a_rule_file() {
    if tools::require("promtool").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n\
         - name: smoke\n\
         \x20 rules:\n\
         \x20 - alert: BotsInDrift\n\
         \x20   expr: bots_in_drift > 0\n\
         \x20   for: 5m\n\
         \x20   labels: {severity: warning}\n\
         \x20   annotations: {summary: 'Bots drift.'}\n",
    )
    .expect("rules written");
    let r = tools::promtool_check_rules(&rules).expect("promtool runs");
    assert!(r.passed(), "{r}");

    let test = dir.path().join("rules_test.yml");
    std::fs::write(
        &test,
        "rule_files: [rules.yml]\n\
         evaluation_interval: 1m\n\
         tests:\n\
         - interval: 1m\n\
         \x20 input_series:\n\
         \x20 - series: bots_in_drift\n\
         \x20   values: '0 1 1 1 1 1 1 1'\n\
         \x20 alert_rule_test:\n\
         \x20 - eval_time: 3m\n\
         \x20   alertname: BotsInDrift\n\
         \x20   exp_alerts: []\n\
         \x20 - eval_time: 7m\n\
         \x20   alertname: BotsInDrift\n\
         \x20   exp_alerts:\n\
         \x20   - exp_labels: {severity: warning}\n\
         \x20     exp_annotations: {summary: 'Bots drift.'}\n",
    )
    .expect("test written");
    let r = tools::promtool_test_rules(&test).expect("promtool runs");
    assert!(r.passed(), "{r}");

    // A broken expression is caught: the check is not a rubber stamp.
    std::fs::write(
        &rules,
        "groups:\n- name: smoke\n  rules:\n  - alert: X\n    expr: bots_in_drift >\n",
    )
    .expect("rules written");
    let r = tools::promtool_check_rules(&rules).expect("promtool runs");
    assert!(!r.passed(), "{r}");
}

#[test]
fn amtool_accepts_a_minimal_config_and_rejects_one_without_a_default_receiver() {
    if tools::require("amtool").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .expect("config written");
    let r = tools::amtool_check_config(&good).expect("amtool runs");
    assert!(r.passed(), "{r}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "route: {}\nreceivers:\n  - name: blackhole\n").expect("written");
    let r = tools::amtool_check_config(&bad).expect("amtool runs");
    assert!(!r.passed(), "{r}");
    assert!(r.stdout.contains("default receiver"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_holds_an_alert_posted_to_its_api() {
    if !tools::require_all(&["alertmanager"]) {
        return;
    }
    let am =
        Alertmanager::start("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
            .await
            .expect("alertmanager");
    am.post_alerts(&serde_json::json!([{
        "labels": {"alertname": "BotsInDrift", "bot_id": "bot-1"},
        "annotations": {"summary": "Bots drift."}
    }]))
    .await
    .expect("alert posted");

    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let alerts = am.alerts().await.expect("alerts listed");
        if let Some(a) = alerts.as_array().and_then(|a| a.first()) {
            assert_eq!(a["labels"]["alertname"], "BotsInDrift", "{alerts}");
            assert_eq!(a["labels"]["bot_id"], "bot-1", "{alerts}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no alert after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_dies_at_start_fails_fast_with_its_output() {
    if !tools::require_all(&["prometheus"]) {
        return;
    }
    let started = std::time::Instant::now();
    let err = match Prometheus::start("global: [not, a, map]\n").await {
        Ok(_) => panic!("Prometheus started with a broken config"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, tools::ToolError::Exited { .. }), "{text}");
    assert!(text.contains("prometheus.yml"), "{text}");
    // Exiting is noticed at once, not after the readiness deadline.
    assert!(started.elapsed() < tools::START_TIMEOUT / 2, "{text}");
}

fn exited(output: &str) -> tools::ToolError {
    use std::os::unix::process::ExitStatusExt;
    tools::ToolError::Exited {
        tool: "t".to_string(),
        status: std::process::ExitStatus::from_raw(256),
        output: output.to_string(),
    }
}

#[tokio::test]
async fn a_start_that_lost_its_port_is_retried_and_other_failures_are_not() {
    let mut calls = 0;
    let r = tools::start_with_retry(|| {
        calls += 1;
        let first = calls == 1;
        async move {
            if first {
                Err(exited("ERROR: unable to bind: Address already in use"))
            } else {
                Ok(calls)
            }
        }
    })
    .await;
    assert_eq!(r.expect("the second try starts"), 2);

    let mut calls = 0;
    let r: Result<(), _> = tools::start_with_retry(|| {
        calls += 1;
        async { Err(exited("bad config")) }
    })
    .await;
    assert!(r.is_err());
    assert_eq!(calls, 1, "a failure other than a port clash is not retried");

    // A port that stays taken gives up after a bounded number of tries.
    let mut calls = 0;
    let r: Result<(), _> = tools::start_with_retry(|| {
        calls += 1;
        async { Err(exited("listen tcp: bind: address already in use")) }
    })
    .await;
    assert!(r.is_err());
    assert_eq!(calls, tools::START_ATTEMPTS);
}
