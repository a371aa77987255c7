//! The shipped Grafana dashboard (`dashboards/config-drift-overview.json`) is
//! built the way Grafana users expect (stable uid, current schema, a data source
//! variable and no data source uid of anyone's instance) and queries only
//! CONTRACT §11's metrics, each filtered by the `instance` variable. Its panel
//! queries, with Grafana's variables substituted
//! (`support::tools::grafana::runnable_queries`), must be valid PromQL:
//! promtool checks them as recording rules (promtool from `.ci/install-tools` or
//! PATH; a missing one skips that test outside CI and fails it under `CI=true`).
//! Running them against a Prometheus fed by the agent is the end-to-end test's job.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::tools::{self, grafana, promql};

/// The uid other dashboards and links may rely on; it must never change.
const UID: &str = "config-drift-overview";

fn dashboard() -> Value {
    grafana::load_overview()
}

/// Every panel, rows' nested panels included.
fn all_panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: Option<&'a Vec<Value>>, out: &mut Vec<&'a Value>) {
        for p in panels.into_iter().flatten() {
            out.push(p);
            walk(p["panels"].as_array(), out);
        }
    }
    let mut out = Vec::new();
    walk(d["panels"].as_array(), &mut out);
    out
}

fn variable<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` variable"))
}

#[test]
fn dashboard_is_titled_and_identified_the_way_grafana_expects() {
    let d = dashboard();
    assert_eq!(d["title"], "Config drift — overview");
    assert_eq!(d["uid"], UID);
    let schema = d["schemaVersion"].as_i64().expect("schemaVersion");
    assert!(
        schema >= 39,
        "schemaVersion {schema} is older than Grafana 10.4/11"
    );
    assert!(
        d["id"].is_null(),
        "a numeric `id` belongs to one Grafana's database"
    );
    let tags: Vec<&str> = d["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"config-drift"), "{tags:?}");
    assert!(
        d.get("__inputs").is_none(),
        "import-time inputs tie the dashboard to an export"
    );
}

#[test]
fn data_source_is_a_variable_and_no_uid_is_hard_coded() {
    let d = dashboard();
    let ds = variable(&d, "datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");

    // Every `datasource` reference anywhere in the document goes through it.
    fn walk(v: &Value, path: &str, bad: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{path}/{k}");
                    if k == "datasource" {
                        let uid = match child {
                            Value::Object(o) => o.get("uid").and_then(Value::as_str),
                            Value::String(s) => Some(s.as_str()),
                            _ => None,
                        };
                        if !matches!(uid, Some("${datasource}" | "$datasource")) {
                            bad.push(format!("{here} = {child}"));
                        }
                    }
                    walk(child, &here, bad);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    walk(&d, "", &mut bad);
    assert!(bad.is_empty(), "hard-coded data sources: {bad:#?}");
    let text = serde_json::to_string(&d).expect("serialises");
    assert!(!text.contains("DS_PROMETHEUS"), "an import placeholder");
}

#[test]
fn instance_variable_lists_the_detectors_and_defaults_to_all() {
    let d = dashboard();
    let v = variable(&d, "instance");
    assert_eq!(v["type"], "query");
    assert_eq!(v["datasource"]["uid"], "${datasource}");
    assert_eq!(
        v["definition"],
        "label_values(drift_detector_info, instance)"
    );
    assert_eq!(v["includeAll"], true);
    assert_eq!(v["multi"], true);
    assert_eq!(v["allValue"], ".*");
}

#[test]
fn every_panel_query_reads_only_contract_metrics_filtered_by_instance() {
    let d = dashboard();
    let queries = grafana::panel_queries(&d);
    assert!(queries.len() >= 20, "only {} queries", queries.len());
    for q in &queries {
        let where_ = format!("panel {} {:?} {}", q.panel_id, q.panel_title, q.ref_id);
        let selectors = promql::selectors(&q.expr);
        assert!(!selectors.is_empty(), "{where_}: no metric in {}", q.expr);
        for s in selectors {
            assert!(
                promql::contract_metric(&s.name).is_some(),
                "{where_} reads {}, which is not a CONTRACT §11 name (histograms: _bucket, _sum, _count)",
                s.name
            );
            assert!(
                s.matchers.contains("instance=~\"$instance\""),
                "{where_}: {} ignores the instance variable",
                s.name
            );
        }
    }
}

#[test]
fn the_dashboard_shows_every_contract_metric() {
    let read: BTreeSet<&str> = grafana::panel_queries(&dashboard())
        .iter()
        .flat_map(|q| promql::metric_names(&q.expr))
        .filter_map(|n| promql::contract_metric(&n))
        .collect();
    let missing: Vec<&str> = promql::CONTRACT_METRICS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !read.contains(n))
        .collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[test]
fn the_contract_metric_list_is_the_one_the_agent_exports() {
    use config_drift_detector::telemetry::metrics::{ALL, Kind};
    let exported: Vec<(&str, promql::Kind)> = ALL
        .iter()
        .map(|m| {
            let kind = match m.kind {
                Kind::Counter => promql::Kind::Counter,
                Kind::Gauge => promql::Kind::Gauge,
                Kind::Histogram => promql::Kind::Histogram,
            };
            (m.prometheus, kind)
        })
        .collect();
    assert_eq!(exported, promql::CONTRACT_METRICS);
}

#[test]
fn panels_have_unique_ids_and_fit_the_grid() {
    let d = dashboard();
    let mut ids = BTreeSet::new();
    for p in all_panels(&d) {
        let id = p["id"].as_i64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_i64().unwrap_or(-1), g["w"].as_i64().unwrap_or(-1));
        assert!(x >= 0 && w > 0 && x + w <= 24, "panel {id}: gridPos {g}");
        assert!(g["h"].as_i64().unwrap_or(0) > 0, "panel {id}: gridPos {g}");
        if p["type"] != "row" {
            assert!(
                !p["title"].as_str().unwrap_or("").is_empty(),
                "panel {id} has no title"
            );
            assert!(
                !p["description"].as_str().unwrap_or("").is_empty(),
                "panel {id} has no description"
            );
        }
    }
}

#[test]
fn the_panels_the_issue_asks_for_exist() {
    let d = dashboard();
    let titles: Vec<String> = all_panels(&d)
        .iter()
        .filter_map(|p| p["title"].as_str())
        .map(str::to_lowercase)
        .collect();
    for wanted in [
        "bots in drift",
        "bots unknown",
        "acknowledged",
        "drifting bots",
        "drift reports",
        "resolution time",
        "check duration against the budget",
        "last successful check",
        "config repo fetch",
        "registry size",
        "detectors",
        "paused",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel titled like {wanted:?}: {titles:?}"
        );
    }
    // The detectors table shows mode, branch, version and shard.
    let detectors = all_panels(&d)
        .into_iter()
        .find(|p| p["title"] == "Detectors")
        .expect("Detectors panel");
    let expr = detectors["targets"][0]["expr"].as_str().unwrap_or("");
    for label in ["mode", "branch", "version", "shard"] {
        assert!(expr.contains(label), "Detectors does not show {label}");
    }
}

#[test]
fn substituted_queries_have_no_grafana_variable_left() {
    let vars = grafana::Vars::default();
    for (title, ref_id, expr, _) in grafana::runnable_queries(&vars) {
        assert!(!expr.contains('$'), "{title} {ref_id}: {expr}");
    }
    let subst = grafana::substitute(
        "rate(x{instance=~\"${instance}\"}[$__rate_interval]) + y[$__range] + z[$__interval] + $other",
        &vars,
    );
    assert_eq!(
        subst,
        "rate(x{instance=~\".*\"}[30s]) + y[5m] + z[5s] + $other"
    );
}

#[test]
fn substituted_panel_queries_are_valid_promql() {
    if tools::require("promtool").is_none() {
        return;
    }
    // promtool has no offline "check query"; a rule file of recording rules is
    // parsed with the same PromQL parser.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let queries = grafana::runnable_queries(&grafana::Vars::default());
    for (i, (_, _, expr, _)) in queries.iter().enumerate() {
        let quoted = serde_json::to_string(expr).expect("a JSON string is a YAML string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dashboard.rules.yml");
    std::fs::write(&path, rules).expect("rules written");
    let r = tools::promtool_check_rules(&path).expect("promtool runs");
    assert!(r.passed(), "{r}");
    assert!(
        r.stdout
            .contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{r}"
    );
}
