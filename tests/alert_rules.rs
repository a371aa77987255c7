//! The shipped Prometheus rules (`alerts/config-drift.rules.yml`) are held to
//! CONTRACT §13/§14 here: `promtool check rules` and `promtool test rules` on the
//! unit tests under `alerts/tests/` (promtool from `.ci/install-tools` or PATH; a
//! missing promtool skips those two outside CI and fails them under `CI=true`),
//! and, without any tool, the rules' shape: names, labels, annotations, runbook
//! anchors, contract metric names (directly or through the file's recording
//! rules, `config_drift:<metric>:<operation>`, each written before it is read),
//! the per-bot alerts reading only the last known state so a restart or a
//! failed scrape resolves nothing, and which scenarios the unit tests cover.

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

/// Every rule (recording and alerting) of every group, in file order.
fn all_rules() -> Vec<Value> {
    let doc = yaml(&rules_path());
    let groups = doc["groups"].as_array().expect("`groups` is a list");
    groups
        .iter()
        .flat_map(|g| {
            g["rules"]
                .as_array()
                .expect("each group has `rules`")
                .clone()
        })
        .collect()
}

/// The alerting rules, in file order.
fn alerts() -> Vec<Value> {
    let alerts: Vec<Value> = all_rules()
        .into_iter()
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert!(!alerts.is_empty(), "the rules file has no alert");
    alerts
}

/// The recording rules: recorded name → expression, in file order.
fn records() -> Vec<(String, String)> {
    all_rules()
        .into_iter()
        .filter_map(|r| {
            let name = r.get("record")?.as_str()?.to_string();
            Some((name, text(&r, "expr").to_string()))
        })
        .collect()
}

/// The CONTRACT §11 metrics an expression reads, directly or through the
/// recording rules it reads (followed to the metrics they read).
fn contract_sources(expr: &str) -> BTreeSet<String> {
    let records: BTreeMap<String, String> = records().into_iter().collect();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = promql::metric_names(expr).into_iter().collect();
    let mut out = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        match records.get(&name) {
            Some(e) => todo.extend(promql::metric_names(e)),
            None => {
                out.insert(name);
            }
        }
    }
    out
}

/// `metric` itself and every recorded name derived from it (a record whose
/// expression reads it, directly or through other records).
fn derived_names(metric: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [metric.to_string()].into();
    for (name, expr) in records() {
        if contract_sources(&expr).contains(metric) {
            names.insert(name);
        }
    }
    names
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
    let expected = format!("SUCCESS: {} rules found", all_rules().len());
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

/// The PromQL an alert runs: its expression, and the queries of its annotation
/// templates (`printf "<promql>" …| query`).
fn queries_of(rule: &Value) -> Vec<String> {
    let mut queries = vec![text(rule, "expr").to_string()];
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
    queries
}

#[test]
fn rules_read_only_contract_metrics() {
    for rule in alerts() {
        let name = alert_name(&rule);
        let queries = queries_of(&rule);
        let recorded: BTreeSet<String> = records().into_iter().map(|(n, _)| n).collect();
        for q in &queries {
            let names = promql::metric_names(q);
            assert!(!names.is_empty(), "{name}: no metric found in {q}");
            for metric in names {
                assert!(
                    promql::contract_metric(&metric).is_some() || recorded.contains(&metric),
                    "{name} reads {metric}, which is neither a CONTRACT §11 name nor recorded in the file"
                );
            }
            for metric in contract_sources(q) {
                assert!(
                    promql::contract_metric(&metric).is_some(),
                    "{name} reads {metric} (through a record), which is not a CONTRACT §11 name"
                );
            }
        }
    }
}

/// Recording rules are named `config_drift:<metric>:<operation>` after the one
/// contract metric they record, read only contract metrics and records defined
/// before them, and come before every rule of their group that reads them
/// (rules of a group run in order at one evaluation time: a record read before
/// it is written would be one evaluation late, and a restart's first
/// evaluation would see nothing).
#[test]
fn records_are_named_for_their_metric_and_precede_their_readers() {
    let doc = yaml(&rules_path());
    let mut defined: BTreeSet<String> = BTreeSet::new();
    let mut recorded_anywhere = 0;
    let all_records: BTreeSet<String> = records().into_iter().map(|(n, _)| n).collect();
    for group in doc["groups"].as_array().expect("groups") {
        let mut in_group: BTreeSet<String> = BTreeSet::new();
        for rule in group["rules"].as_array().expect("rules") {
            let reads = promql::metric_names(text(rule, "expr"));
            for r in reads.iter().filter(|r| all_records.contains(*r)) {
                assert!(
                    in_group.contains(r),
                    "{} reads {r} before its group records it",
                    rule.get("alert")
                        .or(rule.get("record"))
                        .unwrap_or(&Value::Null)
                );
            }
            let Some(name) = rule.get("record").and_then(Value::as_str) else {
                continue;
            };
            recorded_anywhere += 1;
            let parts: Vec<&str> = name.split(':').collect();
            assert!(
                parts.len() == 3 && parts[0] == "config_drift" && !parts[2].is_empty(),
                "{name} is not config_drift:<metric>:<operation>"
            );
            assert!(
                promql::contract_metric(parts[1]).is_some(),
                "{name} does not name the contract metric it records"
            );
            assert_eq!(
                contract_sources(text(rule, "expr")),
                [parts[1].to_string()].into(),
                "{name} must record {} and nothing else",
                parts[1]
            );
            assert!(defined.insert(name.to_string()), "{name} is recorded twice");
            in_group.insert(name.to_string());
        }
    }
    assert!(recorded_anywhere > 0, "the rules file records nothing");
}

/// The per-bot alerts and the mass drift survive a restart or a failed scrape
/// (every series of the agent stale for a while): each series they depend on
/// is read as its last known state, the `config_drift:<metric>:last_known`
/// record, never as a bare gauge that a gap empties. The only bare reads are
/// ConfigDriftUnknown's reconstruction of a spell's start from the history of
/// `bots_in_unknown` (a subquery over 75m, which a gap does not empty).
#[test]
fn per_bot_alerts_read_the_last_known_state_so_a_gap_resolves_nothing() {
    let last_known: BTreeMap<String, String> = records()
        .into_iter()
        .filter(|(n, _)| n.ends_with(":last_known"))
        .collect();
    for metric in [
        "bots_in_drift",
        "drift_fields",
        "drift_since_timestamp_seconds",
        "bots_in_unknown",
        "drift_detector_info",
        "drift_detector_paused",
        "drift_check_interval_seconds",
    ] {
        let name = format!("config_drift:{metric}:last_known");
        let expr = last_known
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is not recorded"));
        assert!(
            expr.contains(&format!("last_over_time({metric}[1d])")),
            "{name} does not fall back to the last sample of the day (the agent keeps a removed bot's episode 24 h): {expr}"
        );
    }
    let acks = last_known
        .get("config_drift:drift_acknowledged:last_known")
        .expect("acks are recorded");
    assert!(
        acks.contains("last_over_time(drift_acknowledged[1h])"),
        "an ack never outlives one interval (≤ 60 min), so it is trusted for 1h: {acks}"
    );
    for rule in alerts() {
        let name = alert_name(&rule);
        if ![
            "ConfigDriftDetected",
            "ConfigDriftUnresolved",
            "ConfigDriftUnknown",
            "ConfigDriftMassDrift",
        ]
        .contains(&name)
        {
            continue;
        }
        assert!(
            rule.get("keep_firing_for").is_none(),
            "{name}: keep_firing_for would also hold back a real resolution"
        );
        for q in queries_of(&rule) {
            for sel in promql::selectors(&q) {
                let bare_history = name == "ConfigDriftUnknown" && sel.name == "bots_in_unknown";
                assert!(
                    sel.name.starts_with("config_drift:") || bare_history,
                    "{name} reads the bare gauge {}, which a restart or a failed scrape empties: read config_drift:{}:last_known",
                    sel.name,
                    sel.name
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
    // The gate may be read through a record of the same series (its last known state).
    let info = derived_names("drift_detector_info");
    let paused = derived_names("drift_detector_paused");
    for rule in alerts() {
        let name = alert_name(&rule);
        let expr = text(&rule, "expr");
        assert!(
            info.iter().any(|n| {
                expr.contains(&format!("{n}{{mode=~\"advisory|enforced\"}}"))
                    || expr.contains(&format!("{n}{{mode=\"enforced\"}}"))
            }),
            "{name} does not restrict itself to advisory/enforced detectors"
        );
        if name != "ConfigDriftDetectorPausedTooLong" {
            let reads = promql::metric_names(expr);
            assert!(
                paused.iter().any(|p| reads.contains(p)),
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
        // Through the records it reads, down to the input series' metrics.
        let read = contract_sources(expr);
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
        "clean restart",
        "failed scrape",
        "real resolution still resolves at once",
        "removed from the registry",
        "the live instance's 0 resolves",
        "switched to shadow stops paging",
        "long gap raises configdriftdetectordown",
        "shard changed",
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
