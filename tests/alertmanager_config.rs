//! The example Alertmanager configuration (`alerts/alertmanager.example.yml`)
//! routes every config-drift alert to `gov-oncall` and the `#polytraders-gov`
//! chat, escalates critical ones, and inhibits consequences of a detector outage
//! (CONTRACT §14). Judged by the real amtool and, for inhibition, a real
//! Alertmanager on loopback (both from `.ci/install-tools`; missing tools skip
//! outside CI and fail under `CI=true`).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use config_drift_detector::canon::{Format, ParseLimits, parse_document};
use serde_json::{Value, json};
use support::tools::{self, Alertmanager};

const WAIT: Duration = Duration::from_secs(30);

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn config_path() -> PathBuf {
    repo_path("alerts/alertmanager.example.yml")
}

fn yaml(path: &Path) -> Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    parse_document(&bytes, Format::Yaml, &ParseLimits::default())
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        .to_serde_json()
}

/// `(alertname, severity)` of every alert in the shipped rules.
fn rule_alerts() -> Vec<(String, String)> {
    let doc = yaml(&repo_path("alerts/config-drift.rules.yml"));
    doc["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| {
            let name = r["alert"].as_str()?.to_string();
            let severity = r["labels"]["severity"].as_str()?.to_string();
            Some((name, severity))
        })
        .collect()
}

/// The receivers amtool resolves for an alert, in route order.
fn receivers(labels: &[&str]) -> Vec<String> {
    let r = tools::amtool_routes_test(&config_path(), labels, None).expect("amtool runs");
    assert!(r.passed(), "{r}");
    r.stdout
        .trim()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
fn example_config_passes_amtool_check_config() {
    if tools::require("amtool").is_none() {
        return;
    }
    let r = tools::amtool_check_config(&config_path()).expect("amtool runs");
    assert!(r.passed(), "{r}");
    assert!(r.stdout.contains("3 inhibit rules"), "{r}");
}

#[test]
fn a_drift_warning_reaches_gov_oncall_and_the_chat_without_escalating() {
    if tools::require("amtool").is_none() {
        return;
    }
    let labels = [
        "alertname=ConfigDriftDetected",
        "severity=warning",
        "bot_id=risk.killswitch",
        "job=cdd",
        "shard=1/1",
    ];
    // amtool verifies the receivers itself and exits 1 on a mismatch.
    let r = tools::amtool_routes_test(
        &config_path(),
        &labels,
        Some(&["polytraders-gov", "gov-oncall"]),
    )
    .expect("amtool runs");
    assert!(r.passed(), "{r}");
}

#[test]
fn a_critical_alert_escalates_and_still_reaches_gov_oncall() {
    if tools::require("amtool").is_none() {
        return;
    }
    for labels in [
        [
            "alertname=ConfigDriftUnresolved",
            "severity=critical",
            "bot_id=risk.killswitch",
        ],
        [
            "alertname=ConfigDriftDetectorDown",
            "severity=critical",
            "shard=1/1",
        ],
    ] {
        let r = tools::amtool_routes_test(
            &config_path(),
            &labels,
            Some(&["polytraders-gov", "gov-oncall", "gov-escalation"]),
        )
        .expect("amtool runs");
        assert!(r.passed(), "{labels:?}: {r}");
    }
}

#[test]
fn every_shipped_alert_reaches_gov_oncall_and_only_criticals_escalate() {
    if tools::require("amtool").is_none() {
        return;
    }
    let alerts = rule_alerts();
    assert!(!alerts.is_empty());
    for (name, severity) in alerts {
        let got = receivers(&[
            &format!("alertname={name}"),
            &format!("severity={severity}"),
        ]);
        assert!(got.contains(&"gov-oncall".to_string()), "{name}: {got:?}");
        assert!(
            got.contains(&"polytraders-gov".to_string()),
            "{name}: {got:?}"
        );
        assert_eq!(
            got.contains(&"gov-escalation".to_string()),
            severity == "critical",
            "{name} ({severity}): {got:?}"
        );
    }
}

#[test]
fn config_drift_alerts_are_grouped_by_bot() {
    let config = yaml(&config_path());
    let route = config["route"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| {
            r["matchers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m.as_str().is_some_and(|m| m.contains("ConfigDrift")))
        })
        .expect("a route for ConfigDrift alerts");
    assert_eq!(route["group_by"], json!(["bot_id"]));
}

/// The labels each alert carries when it fires, as its unit tests expect them.
fn fired_labels(alertname: &str) -> Vec<String> {
    let dir = repo_path("alerts/tests");
    let mut keys = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("alerts/tests") {
        let doc = yaml(&entry.expect("entry").path());
        for test in doc["tests"].as_array().into_iter().flatten() {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                if case["alertname"] != alertname {
                    continue;
                }
                for alert in case["exp_alerts"].as_array().into_iter().flatten() {
                    if let Some(labels) = alert["exp_labels"].as_object() {
                        keys.extend(labels.keys().cloned());
                    }
                }
            }
        }
    }
    keys.into_iter().collect()
}

#[test]
fn inhibition_rules_match_on_labels_both_alerts_carry() {
    let config = yaml(&config_path());
    let rules = config["inhibit_rules"].as_array().expect("inhibit_rules");
    let find = |source: &str, target: &str| {
        rules
            .iter()
            .find(|r| {
                r["source_matchers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m.as_str().is_some_and(|m| m.contains(source)))
                    && r["target_matchers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|m| m.as_str().is_some_and(|m| m.contains(target)))
            })
            .unwrap_or_else(|| panic!("no inhibit rule from {source} to {target}"))
    };
    for (source, target) in [
        ("ConfigDriftDetectorDown", "ConfigDriftUnknown"),
        ("ConfigDriftDetectorDown", "ConfigDriftCheckStale"),
        ("ConfigDriftUnresolved", "ConfigDriftDetected"),
        ("ConfigDriftMassDrift", "ConfigDriftDetected"),
    ] {
        let rule = find(source, target);
        let equal: Vec<&str> = rule["equal"]
            .as_array()
            .expect("`equal` is set: an inhibition without it mutes every shard")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(!equal.is_empty(), "{source} → {target}: empty `equal`");
        // A label one side lacks compares "" with a value: the rule would never
        // (or, if both lack it, always) apply.
        for side in [source, target] {
            let carried = fired_labels(side);
            for label in &equal {
                assert!(
                    carried.iter().any(|c| c == label),
                    "{source} → {target}: {side} does not carry `{label}` (it carries {carried:?})"
                );
            }
        }
    }
}

/// The example config with its placeholder receivers pointed at a closed
/// loopback port, so the real Alertmanager never reaches out.
fn loopback_config() -> String {
    let text = std::fs::read_to_string(config_path()).expect("config");
    let closed = format!("http://127.0.0.1:{}/", support::free_port());
    let replaced = text
        .replace("https://pager.example.invalid/", &closed)
        .replace("https://hooks.slack.example.invalid/", &closed);
    assert!(!replaced.contains("example.invalid"), "a placeholder left");
    replaced
}

fn alert(labels: Value) -> Value {
    json!({ "labels": labels, "annotations": { "summary": "test" } })
}

/// Polls until every alert named in `want` shows the wanted state
/// (`suppressed` with inhibitedBy, or `active`), returning the last listing.
async fn wait_for_states(am: &Alertmanager, want: &[(&str, &str, &str)]) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = am.alerts().await.expect("alerts listed");
        let state_of = |name: &str, bot: &str| {
            listed.as_array().into_iter().flatten().find_map(|a| {
                let labels = &a["labels"];
                (labels["alertname"] == name && labels["bot_id"].as_str().unwrap_or("") == bot)
                    .then(|| {
                        let inhibited = a["status"]["inhibitedBy"]
                            .as_array()
                            .is_some_and(|v| !v.is_empty());
                        (
                            a["status"]["state"].as_str().unwrap_or("").to_string(),
                            inhibited,
                        )
                    })
            })
        };
        let done = want
            .iter()
            .all(|(name, bot, state)| match state_of(name, bot) {
                Some((s, inhibited)) => s == *state && (inhibited == (*state == "suppressed")),
                None => false,
            });
        if done {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "alerts did not reach {want:?} within {WAIT:?}: {listed:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_down_inhibits_its_shards_unknown_bots_in_a_real_alertmanager() {
    if !tools::require_all(&["alertmanager"]) {
        return;
    }
    let am = Alertmanager::start(&loopback_config())
        .await
        .expect("alertmanager starts with the example config");
    am.post_alerts(&json!([
        alert(
            json!({"alertname": "ConfigDriftDetectorDown", "severity": "critical",
                     "job": "cdd", "shard": "1/2"})
        ),
        alert(
            json!({"alertname": "ConfigDriftUnknown", "severity": "warning",
                     "job": "cdd", "shard": "1/2", "bot_id": "risk.killswitch"})
        ),
        // Control: a bot of the other, healthy shard still pages.
        alert(
            json!({"alertname": "ConfigDriftUnknown", "severity": "warning",
                     "job": "cdd", "shard": "2/2", "bot_id": "mm.eu"})
        ),
        // The critical escalation of a drift replaces its warning.
        alert(
            json!({"alertname": "ConfigDriftUnresolved", "severity": "critical",
                     "job": "cdd", "shard": "2/2", "bot_id": "mm.eu"})
        ),
        alert(
            json!({"alertname": "ConfigDriftDetected", "severity": "warning",
                     "job": "cdd", "shard": "2/2", "bot_id": "mm.eu"})
        ),
        alert(
            json!({"alertname": "ConfigDriftDetected", "severity": "warning",
                     "job": "cdd", "shard": "2/2", "bot_id": "other.bot"})
        ),
    ]))
    .await
    .expect("alerts posted");

    wait_for_states(
        &am,
        &[
            ("ConfigDriftDetectorDown", "", "active"),
            ("ConfigDriftUnknown", "risk.killswitch", "suppressed"),
            ("ConfigDriftUnknown", "mm.eu", "active"),
            ("ConfigDriftUnresolved", "mm.eu", "active"),
            ("ConfigDriftDetected", "mm.eu", "suppressed"),
            ("ConfigDriftDetected", "other.bot", "active"),
        ],
    )
    .await;
}
