//! A collector that is down, or accepts and never answers, must not stall the
//! agent: publishing stays instant, `shutdown` returns within a bound, and what
//! could not be exported is counted in `drift_telemetry_dropped_total`.

#[allow(dead_code)]
#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use config_drift_detector::config::Mode;
use config_drift_detector::report::ConfigDriftReport;
use config_drift_detector::report::UnknownReason;
use config_drift_detector::shard::Shard;
use config_drift_detector::telemetry::events::DriftUnknown;
use config_drift_detector::telemetry::export::Signal;
use config_drift_detector::telemetry::metrics::{BotSeries, CheckSummary, RepoFetch};
use config_drift_detector::telemetry::spans::CheckSpan;
use config_drift_detector::telemetry::{AgentInfo, Telemetry};

const BOUND: Duration = Duration::from_secs(10);

fn telemetry(addr: SocketAddr) -> Telemetry {
    let map: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".to_string()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_string()),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_string()),
    ]
    .into_iter()
    .collect();
    let info = AgentInfo {
        mode: Mode::Advisory,
        branch: "main".into(),
        version: "0.1.0".into(),
        shard: Shard::ALL,
        check_interval: Duration::from_secs(60),
    };
    Telemetry::init_with(info, &move |k| map.get(k).cloned()).unwrap()
}

fn exercise(t: &Telemetry) {
    let mut r = ConfigDriftReport::new(Some("a.bot".into()), 1_000);
    r.set_unknown(UnknownReason::RuntimeUnreachable, "connection refused");
    let started = Instant::now();
    for _ in 0..50 {
        t.metrics().publish_check(&CheckSummary {
            bots: &[BotSeries::from_report(&r, None, false)],
            duration: Duration::from_millis(3),
            ended_at_ms: 2_000,
            successful: false,
            budget_exceeded: false,
            repo: RepoFetch::Failed,
            fetch_durations: &[],
        });
        DriftUnknown { report: &r }.emit(t);
        CheckSpan {
            checked_at_ms: 1_000,
            duration: Duration::from_millis(3),
            reports: std::slice::from_ref(&r),
            committed_ref: Some("main"),
            commit: None,
            chain_head: None,
        }
        .emit(t);
    }
    // Blocking on the collector would cost the 1 s export timeout per emit, 50 s
    // in all: a bound of a fifth of that cannot be missed by a busy machine.
    assert!(
        started.elapsed() < BOUND,
        "emitting blocked on the collector: {:?}",
        started.elapsed()
    );
}

fn wait_for_drops(t: &Telemetry) {
    let deadline = Instant::now() + BOUND;
    while Signal::ALL.iter().any(|s| t.dropped(*s) == 0) {
        assert!(
            Instant::now() < deadline,
            "drops not counted: metrics {} logs {} traces {}",
            t.dropped(Signal::Metrics),
            t.dropped(Signal::Logs),
            t.dropped(Signal::Traces)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = t.metrics().render_prometheus();
    for s in ["metrics", "logs", "traces"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("drift_telemetry_dropped_total{{signal=\"{s}\"}}")))
            .unwrap_or_else(|| panic!("no dropped series for {s}"));
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v >= 1.0, "{line}");
    }
}

#[test]
fn collector_down_costs_nothing_and_drops_are_counted() {
    let t = telemetry(support::free_addr());
    exercise(&t);
    wait_for_drops(&t);
    let started = Instant::now();
    let _ = t.shutdown();
    assert!(
        started.elapsed() < BOUND,
        "shutdown took {:?}",
        started.elapsed()
    );
}

#[test]
fn collector_that_never_answers_cannot_hold_shutdown() {
    let hole = otlp_receiver::black_hole();
    let t = telemetry(hole.addr);
    exercise(&t);
    wait_for_drops(&t);
    exercise(&t);
    let started = Instant::now();
    let _ = t.shutdown();
    assert!(
        started.elapsed() < BOUND,
        "shutdown took {:?}",
        started.elapsed()
    );
}
