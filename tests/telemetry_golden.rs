//! Golden `GET /metrics`: after a known sequence of calls the page equals
//! tests/golden/metrics.prom (regenerate with `UPDATE_GOLDEN=1`), and passes
//! `promtool check metrics` (promtool from `.ci/install-tools` or PATH; required when `CI=true`).
//! Every value here comes from the calls (no clock is read), so nothing is masked.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use config_drift_detector::config::Mode;
use config_drift_detector::report::{ConfigDriftReport, Drift, DriftKind, UnknownReason};
use config_drift_detector::shard::Shard;
use config_drift_detector::telemetry::metrics::{self, BotSeries, CheckSummary, RepoFetch};
use config_drift_detector::telemetry::{AgentInfo, Telemetry};

fn telemetry() -> Telemetry {
    let env: HashMap<String, String> = HashMap::new();
    let info = AgentInfo {
        mode: Mode::Shadow,
        branch: "main".into(),
        version: "0.1.0".into(),
        shard: Shard { index: 2, count: 3 },
        check_interval: Duration::from_secs(900),
    };
    Telemetry::init_with(info, &move |k| env.get(k).cloned()).unwrap()
}

fn report(slug: &str, drifts: usize, unknown: bool) -> ConfigDriftReport {
    let mut r = ConfigDriftReport::new(Some(slug.into()), 1_715_260_900_000);
    for i in 0..drifts {
        r.drifts.push(Drift {
            field: format!("f{i}"),
            kind: DriftKind::MissingInRunning,
            running: None,
            committed: None,
            delta: None,
            since_ts_ms: 1_715_260_000_000,
            latched: unknown,
        });
    }
    r.settle();
    if unknown {
        r.set_unknown(UnknownReason::RuntimeTimeout, "slow");
    }
    r
}

fn render_after_known_sequence() -> String {
    let t = telemetry();
    let m = t.metrics();
    let since = Some(1_715_260_000_000);
    let first = [
        BotSeries::from_report(&report("mm.eu", 0, false), None, false),
        BotSeries::from_report(&report("risk.killswitch", 2, false), since, false),
        BotSeries::from_report(&report("old.bot", 0, false), None, false),
    ];
    m.publish_check(&CheckSummary {
        bots: &first,
        duration: Duration::from_millis(300),
        ended_at_ms: 1_715_260_900_300,
        successful: true,
        budget_exceeded: false,
        repo: RepoFetch::Fetched {
            at_ms: 1_715_260_900_050,
        },
        fetch_durations: &[Duration::from_millis(8), Duration::from_millis(40)],
    });
    // old.bot leaves the registry; risk.killswitch goes UNKNOWN with its latch.
    let second = [
        BotSeries::from_report(&report("mm.eu", 0, false), None, false),
        BotSeries::from_report(&report("risk.killswitch", 2, true), since, false),
    ];
    m.publish_check(&CheckSummary {
        bots: &second,
        duration: Duration::from_millis(5200),
        ended_at_ms: 1_715_261_800_000,
        successful: false,
        budget_exceeded: true,
        repo: RepoFetch::Failed,
        fetch_durations: &[Duration::from_secs(3)],
    });
    m.set_acknowledged("risk.killswitch", true);
    m.record_resolution("mm.eu", 42.0);
    m.set_paused(true);
    m.config_reloaded(false, false);
    m.inc_state_write_errors();
    let text = m.render_prometheus();
    t.shutdown().unwrap();
    text
}

#[test]
fn metrics_page_matches_the_golden_file() {
    let text = render_after_known_sequence();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/metrics.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // Rewriting the golden file and comparing against it would pass on
        // anything: never where the suite is the gate.
        assert!(
            std::env::var_os("CI").is_none(),
            "UPDATE_GOLDEN is set under CI, where it would make this test vacuous"
        );
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        text, want,
        "regenerate with UPDATE_GOLDEN=1 if the change is intended"
    );
}

#[test]
fn metrics_page_has_every_contract_metric_and_no_otel_extras() {
    let text = render_after_known_sequence();
    for def in metrics::ALL {
        assert!(
            text.contains(&format!("# TYPE {} ", def.prometheus)),
            "{} missing",
            def.prometheus
        );
    }
    assert!(!text.contains("target_info"));
    assert!(!text.contains("otel_scope"));
    assert!(!text.contains("old.bot"), "a removed bot keeps series");
}

#[test]
fn metrics_page_passes_promtool() {
    // Found through CDD_TOOLS_DIR (.ci/install-tools) or PATH; required when CI=true.
    if support::tools::require("promtool").is_none() {
        return;
    }
    let text = render_after_known_sequence();
    let checked = support::tools::promtool_check_metrics(&text).expect("promtool runs");
    // Exit 3 is "lint problems". The contract names the histogram
    // `drift_resolution_minutes` (§11, §15), which promtool's base-unit lint flags;
    // that finding is expected, any other fails the test.
    const CONTRACT_NAME_LINT: &str =
        "drift_resolution_minutes use base unit \"seconds\" instead of \"minutes\"";
    let other: Vec<&str> = checked
        .stderr
        .lines()
        .chain(checked.stdout.lines())
        .filter(|l| !l.trim().is_empty() && l.trim() != CONTRACT_NAME_LINT)
        .collect();
    assert!(
        checked.passed() || (checked.code == Some(3) && other.is_empty()),
        "promtool check metrics: {checked}"
    );
}
