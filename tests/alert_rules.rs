//! The shipped Prometheus rules (`alerts/config-drift.rules.yml`) are held to
//! CONTRACT §13/§14 here: `promtool check rules` and `promtool test rules` on the
//! unit tests under `alerts/tests/` (promtool from `.ci/install-tools` or PATH; a
//! missing promtool skips those two outside CI and fails them under `CI=true`),
//! and, without any tool, the rules' shape: names, labels, annotations, runbook
//! anchors, contract metric names, and which scenarios the unit tests cover.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use config_drift_detector::canon::{Format, ParseLimits, parse_document};
use serde_json::Value;
use support::tools::{self, promql};

/// Where every `runbook_url` points (documented in README.md, "Runbook URL").
const RUNBOOK_BASE: &str =
    "https://github.com/polytraders/config-drift-detector/blob/main/alerts/runbook.md";

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn rules_path() -> PathBuf {
    repo_path("alerts/config-drift.rules.yml")
}

/// Parses a YAML file with the crate's own YAML 1.2 parser (duplicate keys are
/// an error there, as they should be in a rule file).
fn yaml(path: &Path) -> Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    parse_document(&bytes, Format::Yaml, &ParseLimits::default())
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        .to_serde_json()
}

/// The alerting rules, in file order.
fn alerts() -> Vec<Value> {
    let doc = yaml(&rules_path());
    let groups = doc["groups"].as_array().expect("`groups` is a list");
    let alerts: Vec<Value> = groups
        .iter()
        .flat_map(|g| {
            g["rules"]
                .as_array()
                .expect("each group has `rules`")
                .clone()
        })
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert!(!alerts.is_empty(), "the rules file has no alert");
    alerts
}

fn alert_name(rule: &Value) -> &str {
    rule["alert"].as_str().expect("`alert` is a string")
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The unit-test files, sorted.
fn unit_test_files() -> Vec<PathBuf> {
    let dir = repo_path("alerts/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} cannot be listed: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no unit tests under {}", dir.display());
    files
}

/// Every test group of every unit-test file, with the file it came from.
fn unit_test_groups() -> Vec<(PathBuf, Value)> {
    unit_test_files()
        .into_iter()
        .flat_map(|f| {
            let doc = yaml(&f);
            let tests = doc["tests"].as_array().cloned().unwrap_or_default();
            tests.into_iter().map(move |t| (f.clone(), t))
        })
        .collect()
}

/// `5m`, `1h30m`, `4h11m` in seconds (the unit tests' eval_time format).
fn seconds(duration: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            other => panic!("unexpected unit {other:?} in {duration:?}"),
        };
        total += number.parse::<u64>().expect("a number before the unit") * unit;
        number.clear();
    }
    assert!(number.is_empty(), "{duration:?} ends without a unit");
    total
}

/// The label set of an input series written `name{a="b",c="d"}`.
fn series_labels(series: &str) -> (String, BTreeMap<String, String>) {
    let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
    let body = rest.trim_end().trim_end_matches('}');
    let mut labels = BTreeMap::new();
    for pair in body.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .unwrap_or_else(|| panic!("a label without `=` in {series:?}"));
        labels.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
    }
    (name.trim().to_string(), labels)
}

/// The anchor GitHub gives a Markdown heading: lower case, punctuation other
/// than `-` and `_` dropped, spaces to `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    let runbook = std::fs::read_to_string(repo_path("alerts/runbook.md")).expect("runbook.md");
    runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| github_anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn rules_file_passes_promtool_check_rules() {
    if tools::require("promtool").is_none() {
        return;
    }
    let r = tools::promtool_check_rules(&rules_path()).expect("promtool runs");
    assert!(r.passed(), "{r}");
    let expected = format!("SUCCESS: {} rules found", alerts().len());
    assert!(r.stdout.contains(&expected), "{r}");
}

#[test]
fn rule_unit_tests_pass_promtool_test_rules() {
    if tools::require("promtool").is_none() {
        return;
    }
    let failures: Vec<String> = unit_test_files()
        .iter()
        .map(|f| (f, tools::promtool_test_rules(f).expect("promtool runs")))
        .filter(|(_, r)| !r.passed())
        .map(|(f, r)| format!("{}:\n{r}", f.display()))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_alert_is_named_labelled_and_annotated_like_a_mixin() {
    let mut names = BTreeSet::new();
    for rule in alerts() {
        let name = alert_name(&rule);
        assert!(names.insert(name.to_string()), "{name} is defined twice");
        assert!(
            name.starts_with("ConfigDrift")
                && name.chars().all(|c| c.is_ascii_alphanumeric())
                && name.len() > "ConfigDrift".len(),
            "{name} is not a CamelCase ConfigDrift… name"
        );
        let severity = text(&rule["labels"], "severity");
        assert!(
            matches!(severity, "warning" | "critical"),
            "{name}: severity {severity:?} is neither warning nor critical"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                !text(&rule["annotations"], key).trim().is_empty(),
                "{name} has no `{key}` annotation"
            );
        }
        let url = text(&rule["annotations"], "runbook_url");
        assert_eq!(
            url,
            format!("{RUNBOOK_BASE}#{}", name.to_lowercase()),
            "{name}'s runbook_url is not the documented base + its lower-cased name"
        );
    }
}

#[test]
fn every_runbook_url_anchor_and_internal_link_is_a_heading_in_the_runbook() {
    let anchors = runbook_anchors();
    for rule in alerts() {
        let url = text(&rule["annotations"], "runbook_url");
        let (_, anchor) = url.split_once('#').expect("the runbook_url has an anchor");
        assert!(
            anchors.contains(anchor),
            "{}: #{anchor} is no heading of alerts/runbook.md; headings: {anchors:?}",
            alert_name(&rule)
        );
    }
    // The runbook's own cross-references must land too.
    let runbook = std::fs::read_to_string(repo_path("alerts/runbook.md")).expect("runbook.md");
    for link in runbook.split("](#").skip(1) {
        let anchor = link.split(')').next().unwrap_or("");
        assert!(
            anchors.contains(anchor),
            "runbook links to missing #{anchor}"
        );
    }
}

#[test]
fn the_runbook_explains_resolving_acknowledging_and_clearing() {
    // Lower case, line breaks as spaces: a sentence may wrap anywhere.
    let runbook = std::fs::read_to_string(repo_path("alerts/runbook.md"))
        .expect("runbook.md")
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "config-drift-detector ack ",
        "--reason",
        "config-drift-detector approve ACK_ID",
        "config-drift-detector clear ",
        "commit",
        "revert",
        "confirm the config repo branch the checker is reading from is the production branch",
    ] {
        assert!(
            runbook.contains(&needle.to_lowercase()),
            "the runbook never says {needle:?}"
        );
    }
}

#[test]
fn mass_drift_tells_the_on_call_to_check_the_branch_first() {
    let rule = alerts()
        .into_iter()
        .find(|r| alert_name(r) == "ConfigDriftMassDrift")
        .expect("ConfigDriftMassDrift exists");
    let description = text(&rule["annotations"], "description");
    assert!(
        description.contains("First step: confirm the config repo branch the checker is reading from is the production branch."),
        "{description}"
    );
    assert!(
        description.contains("{{ $labels.branch }}"),
        "{description}"
    );
}

#[test]
fn rules_read_only_contract_metrics() {
    for rule in alerts() {
        let name = alert_name(&rule);
        let expr = text(&rule, "expr");
        let mut queries = vec![expr.to_string()];
        // Annotation templates may query too: `printf "<promql>" …| query`.
        for (_, v) in rule["annotations"].as_object().expect("annotations") {
            let v = v.as_str().unwrap_or("");
            for piece in v.split("printf \"").skip(1) {
                let mut q = String::new();
                let mut chars = piece.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => q.extend(chars.next()),
                        '"' => break,
                        c => q.push(c),
                    }
                }
                queries.push(q.replace("%q", "\"x\""));
            }
        }
        for q in &queries {
            let names = promql::metric_names(q);
            assert!(!names.is_empty(), "{name}: no metric found in {q}");
            for metric in names {
                assert!(
                    promql::contract_metric(&metric).is_some(),
                    "{name} reads {metric}, which is not a CONTRACT §11 name"
                );
            }
        }
    }
}

#[test]
fn durations_of_one_interval_come_from_the_interval_gauge() {
    for rule in alerts() {
        let name = alert_name(&rule);
        let expr = text(&rule, "expr");
        // A hard-coded 15 minutes (the default interval) in any spelling.
        for literal in ["15m", "900", "[15", "0.25h"] {
            assert!(
                !expr.contains(literal),
                "{name} hard-codes {literal:?}: read drift_check_interval_seconds"
            );
        }
        assert_ne!(text(&rule, "for"), "15m", "{name} waits a fixed 15m");
    }
    for name in [
        "ConfigDriftUnresolved",
        "ConfigDriftUnknown",
        "ConfigDriftCheckStale",
        "ConfigDriftDetectorDown",
    ] {
        let rule = alerts()
            .into_iter()
            .find(|r| alert_name(r) == name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        assert!(
            text(&rule, "expr").contains("drift_check_interval_seconds"),
            "{name} must measure against drift_check_interval_seconds"
        );
    }
}

#[test]
fn every_alert_pages_only_through_the_mode_and_pause_gate() {
    for rule in alerts() {
        let name = alert_name(&rule);
        let expr = text(&rule, "expr");
        assert!(
            expr.contains("drift_detector_info{mode=~\"advisory|enforced\"}")
                || expr.contains("drift_detector_info{mode=\"enforced\"}"),
            "{name} does not restrict itself to advisory/enforced detectors"
        );
        if name != "ConfigDriftDetectorPausedTooLong" {
            assert!(
                expr.contains("drift_detector_paused"),
                "{name} does not stay quiet while the detector is paused"
            );
        }
    }
}

#[test]
fn every_alert_has_a_firing_case_a_not_yet_case_and_a_control_series() {
    let groups = unit_test_groups();
    for rule in alerts() {
        let name = alert_name(&rule);
        let expr = text(&rule, "expr");
        let read = promql::metric_names(expr);
        let (mut fires, mut not_yet, mut control) = (false, false, false);
        for (_, group) in &groups {
            let cases: Vec<&Value> = group["alert_rule_test"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| text(c, "alertname") == name)
                .collect();
            let expected = |c: &Value| c["exp_alerts"].as_array().cloned().unwrap_or_default();
            let firing: Vec<&Value> = cases
                .iter()
                .copied()
                .filter(|c| !expected(c).is_empty())
                .collect();
            let Some(first_fire) = firing.iter().map(|c| seconds(text(c, "eval_time"))).min()
            else {
                continue;
            };
            fires = true;
            not_yet |= cases
                .iter()
                .any(|c| expected(c).is_empty() && seconds(text(c, "eval_time")) < first_fire);
            // A control: an input series this alert reads whose identity (the
            // labels it shares with the expected alerts) matches none of them.
            for case in &firing {
                let alerts = expected(case);
                for s in group["input_series"].as_array().into_iter().flatten() {
                    let (metric, labels) = series_labels(text(s, "series"));
                    if !read.contains(&metric) {
                        continue;
                    }
                    let matches_some_alert = alerts.iter().any(|a| {
                        a["exp_labels"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .all(|(k, v)| {
                                labels.get(k).is_none_or(|l| Some(l.as_str()) == v.as_str())
                            })
                    });
                    control |= !matches_some_alert;
                }
            }
        }
        assert!(fires, "{name}: no unit test expects it to fire");
        assert!(
            not_yet,
            "{name}: no unit test expects silence before it first fires"
        );
        assert!(
            control,
            "{name}: no unit test has a control series that must not fire"
        );
    }
}

#[test]
fn unit_tests_cover_modes_pause_ack_ha_and_two_intervals() {
    let names: Vec<String> = unit_test_groups()
        .iter()
        .map(|(_, g)| text(g, "name").to_lowercase())
        .collect();
    for scenario in [
        "shadow",
        "paused",
        "ack",
        "ha pair",
        "enforced mode pages a drift at warning at once and at critical only past one 5-minute interval",
        "30-minute interval",
        "5-minute interval",
        "advisory mode",
    ] {
        assert!(
            names.iter().any(|n| n.contains(scenario)),
            "no unit test named for {scenario:?}; tests: {names:#?}"
        );
    }
    // Every unit test evaluates at least one alert and names its rule file.
    for f in unit_test_files() {
        let doc = yaml(&f);
        assert_eq!(
            doc["rule_files"],
            serde_json::json!(["../config-drift.rules.yml"]),
            "{}",
            f.display()
        );
    }
}

#[test]
fn promql_scanner_finds_metrics_and_skips_everything_else() {
    let expr = r#"
        sum by (le, job) (rate(x_bucket{a="b{c}", d=~'e|f'}[5m] offset 1h))
      > on (job) group_left (mode) max without (shard) (y)
      and time() - z:recorded[75m:1m] > 1e-3 * 0x1f
      unless ignoring (bot_id) w == bool 0.5
    "#;
    let names: Vec<String> = promql::metric_names(expr).into_iter().collect();
    assert_eq!(names, ["w", "x_bucket", "y", "z:recorded"]);
    let sel = promql::selectors("drift_fields{instance=~\"$instance\"} and bots_in_drift");
    assert_eq!(sel[0].matchers, "instance=~\"$instance\"");
    assert_eq!(sel[1].matchers, "");
    assert_eq!(
        promql::contract_metric("drift_resolution_minutes_bucket"),
        Some("drift_resolution_minutes")
    );
    assert_eq!(promql::contract_metric("drift_resolution_minutes"), None);
    assert_eq!(promql::contract_metric("drift_fields_total"), None);
}
