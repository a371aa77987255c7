//! Telemetry over OTLP, asserted at an in-test receiver (gRPC and http/protobuf):
//! metric names, units and temporality; per-bot series at 0/1 for every bot and
//! gone after the bot leaves the registry; the GOV log records; the check span.

#[allow(dead_code)]
#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use config_drift_detector::config::Mode;
use config_drift_detector::report::{ConfigDriftReport, Drift, DriftKind, UnknownReason};
use config_drift_detector::shard::Shard;
use config_drift_detector::telemetry::events::{
    DriftAcknowledged, DriftDetected, DriftResolved, DriftUnknown, ResolvedBy, ResolvingCommit,
    SeverityClass,
};
use config_drift_detector::telemetry::metrics::{self, BotSeries, CheckSummary, RepoFetch};
use config_drift_detector::telemetry::spans::CheckSpan;
use config_drift_detector::telemetry::{AgentInfo, Telemetry};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric};
use otlp_receiver::{attr_int, attr_str, kv_get, points};
use serde_json::value::RawValue;

const WAIT: Duration = Duration::from_secs(10);

fn info() -> AgentInfo {
    AgentInfo {
        mode: Mode::Enforced,
        branch: "main".into(),
        version: "0.1.0".into(),
        shard: Shard::ALL,
        check_interval: Duration::from_secs(900),
    }
}

fn telemetry(vars: &[(&str, String)]) -> Telemetry {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    // Pushes happen on force_flush only, so each test decides when.
    map.entry("OTEL_METRIC_EXPORT_INTERVAL".into())
        .or_insert_with(|| "3600000".into());
    map.entry("OTEL_BSP_SCHEDULE_DELAY".into())
        .or_insert_with(|| "3600000".into());
    map.entry("OTEL_BLRP_SCHEDULE_DELAY".into())
        .or_insert_with(|| "3600000".into());
    Telemetry::init_with(info(), &move |k| map.get(k).cloned()).unwrap()
}

fn raw(text: &str) -> Option<Box<RawValue>> {
    Some(RawValue::from_string(text.to_string()).unwrap())
}

fn drifting(slug: &str, fields: usize) -> ConfigDriftReport {
    let mut r = ConfigDriftReport::new(Some(slug.into()), 1_715_260_900_000);
    r.committed_ref = Some("main".into());
    r.committed_commit = Some("9fceb02d0ae598e95dc970b74767f19372d61af8".into());
    for i in 0..fields {
        r.drifts.push(Drift {
            field: format!("limits.f{i}"),
            kind: DriftKind::Changed,
            running: raw("10"),
            committed: raw("12"),
            delta: raw("-2"),
            since_ts_ms: 1_715_260_000_000,
            latched: false,
        });
    }
    r.settle();
    r.episode_id = Some(format!("{slug}-1715260000000"));
    r
}

fn in_sync(slug: &str) -> ConfigDriftReport {
    let mut r = ConfigDriftReport::new(Some(slug.into()), 1_715_260_900_000);
    r.settle();
    r
}

fn unknown(slug: &str) -> ConfigDriftReport {
    let mut r = ConfigDriftReport::new(Some(slug.into()), 1_715_260_900_000);
    r.set_unknown(UnknownReason::RuntimeTimeout, "no answer within 250 ms");
    r
}

fn series(reports: &[ConfigDriftReport]) -> Vec<BotSeries> {
    reports
        .iter()
        .map(|r| {
            let since = r.episode_id.as_ref().map(|_| 1_715_260_000_000);
            BotSeries::from_report(r, since, false)
        })
        .collect()
}

fn publish(t: &Telemetry, bots: &[BotSeries]) {
    t.metrics().publish_check(&CheckSummary {
        bots,
        duration: Duration::from_millis(420),
        ended_at_ms: 1_715_260_900_420,
        successful: true,
        budget_exceeded: false,
        repo: RepoFetch::Fetched {
            at_ms: 1_715_260_900_100,
        },
        fetch_durations: &[Duration::from_millis(12), Duration::from_millis(30)],
    });
}

fn find<'a>(
    ms: &'a [opentelemetry_proto::tonic::metrics::v1::Metric],
    name: &str,
) -> &'a opentelemetry_proto::tonic::metrics::v1::Metric {
    ms.iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("metric {name} not exported"))
}

#[test]
fn grpc_metrics_use_contract_names_units_and_cumulative_temporality() {
    let rx = otlp_receiver::grpc();
    let t = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())]);
    let reports = [drifting("a.bot", 2), in_sync("b.bot"), unknown("c.bot")];
    publish(&t, &series(&reports));
    t.metrics().record_resolution("a.bot", 12.0);
    t.force_flush().unwrap();
    rx.store
        .wait_for(WAIT, "a metrics export", |r| !r.metrics.is_empty());
    let ms = rx.store.latest_metrics();

    for def in metrics::ALL {
        let m = find(&ms, def.name);
        assert_eq!(m.unit, def.unit, "{}", def.name);
        match (&m.data, def.kind) {
            (Some(metric::Data::Sum(s)), metrics::Kind::Counter) => {
                assert!(s.is_monotonic, "{}", def.name);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32,
                    "{}",
                    def.name
                );
            }
            (Some(metric::Data::Gauge(_)), metrics::Kind::Gauge) => {}
            (Some(metric::Data::Histogram(h)), metrics::Kind::Histogram) => {
                assert_eq!(
                    h.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32
                );
            }
            (other, kind) => panic!("{}: {kind:?} exported as {other:?}", def.name),
        }
    }

    let v = |name: &str| points(find(&ms, name));
    let bot = |s: &str| vec![format!("bot_id={s}")];
    assert_eq!(
        v("bots_in_drift"),
        vec![
            (bot("a.bot"), 1.0),
            (bot("b.bot"), 0.0),
            (bot("c.bot"), 0.0)
        ]
    );
    assert_eq!(
        v("bots_in_unknown"),
        vec![
            (bot("a.bot"), 0.0),
            (bot("b.bot"), 0.0),
            (bot("c.bot"), 1.0)
        ]
    );
    assert_eq!(
        v("drift_fields"),
        vec![
            (bot("a.bot"), 2.0),
            (bot("b.bot"), 0.0),
            (bot("c.bot"), 0.0)
        ]
    );
    assert_eq!(
        v("drift_since_timestamp"),
        vec![
            (bot("a.bot"), 1_715_260_000.0),
            (bot("b.bot"), 0.0),
            (bot("c.bot"), 0.0)
        ]
    );
    let reports_total = v("drift_reports");
    assert_eq!(reports_total.len(), 6, "both statuses for every bot");
    assert!(reports_total.contains(&(vec!["bot_id=b.bot".into(), "status=DRIFT".into()], 0.0)));
    assert!(reports_total.contains(&(vec!["bot_id=a.bot".into(), "status=DRIFT".into()], 1.0)));
    assert!(reports_total.contains(&(vec!["bot_id=c.bot".into(), "status=UNKNOWN".into()], 1.0)));
    assert_eq!(
        v("drift_telemetry_dropped"),
        vec![
            (vec!["signal=logs".into()], 0.0),
            (vec!["signal=metrics".into()], 0.0),
            (vec!["signal=traces".into()], 0.0)
        ]
    );
    assert_eq!(
        v("drift_detector_info"),
        vec![(
            vec![
                "branch=main".into(),
                "mode=enforced".into(),
                "shard=1/1".into(),
                "version=0.1.0".into()
            ],
            1.0
        )]
    );
    let Some(metric::Data::Histogram(h)) = &find(&ms, "drift_resolution").data else {
        panic!("histogram")
    };
    assert_eq!(
        h.data_points[0].explicit_bounds,
        vec![1.0, 5.0, 15.0, 60.0, 240.0, 1440.0]
    );
    t.shutdown().unwrap();
}

#[test]
fn removed_bot_loses_its_per_bot_series_at_the_next_check() {
    let rx = otlp_receiver::grpc();
    let t = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())]);
    publish(
        &t,
        &series(&[
            drifting("a.bot", 1),
            in_sync("b.bot"),
            drifting("gone.bot", 1),
        ]),
    );
    publish(&t, &series(&[drifting("a.bot", 1), in_sync("b.bot")]));
    t.force_flush().unwrap();
    rx.store
        .wait_for(WAIT, "a metrics export", |r| !r.metrics.is_empty());
    let ms = rx.store.latest_metrics();
    for name in [
        "bots_in_drift",
        "bots_in_unknown",
        "drift_fields",
        "drift_since_timestamp",
        "drift_acknowledged",
        "drift_reports",
    ] {
        let p = points(find(&ms, name));
        assert!(
            p.iter()
                .all(|(a, _)| !a.contains(&"bot_id=gone.bot".to_string())),
            "{name} still has gone.bot: {p:?}"
        );
        assert!(!p.is_empty(), "{name}");
    }
    // The kept bot's counter went on counting.
    assert!(
        points(find(&ms, "drift_reports"))
            .contains(&(vec!["bot_id=a.bot".into(), "status=DRIFT".into()], 2.0))
    );
    let text = t.metrics().render_prometheus();
    assert!(!text.contains("gone.bot"), "{text}");
    assert!(text.contains(r#"bots_in_drift{bot_id="a.bot"} 1"#));
    t.shutdown().unwrap();
}

#[test]
fn gov_log_records_carry_attributes_severity_and_the_report_as_body() {
    let rx = otlp_receiver::grpc();
    let t = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())]);
    let d = drifting("risk.killswitch", 1);
    DriftDetected {
        report: &d,
        severity_class: SeverityClass::P2,
    }
    .emit(&t);
    let u = unknown("mm.eu");
    DriftUnknown { report: &u }.emit(&t);
    let s = in_sync("risk.killswitch");
    let commit = ResolvingCommit {
        sha: "abc123".into(),
        author: "Ana <ana@example.org>".into(),
        summary: "Adopt live limit".into(),
    };
    DriftResolved {
        report: &s,
        episode_id: "risk.killswitch-1715260000000",
        resolution_minutes: 14.5,
        resolved_by: ResolvedBy::Commit,
        commit: Some(&commit),
    }
    .emit(&t);
    DriftAcknowledged {
        report: &d,
        ack_id: "ack-1",
        requested_by: "ana",
        approved_by: "bo",
        reason: "hotfix in flight",
        expires_at_ms: 1_715_261_800_000,
    }
    .emit(&t);
    t.force_flush().unwrap();
    rx.store.wait_for(WAIT, "four log records", |r| {
        r.logs
            .iter()
            .flat_map(|q| &q.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum::<usize>()
            >= 4
    });
    let records = rx.store.log_records();
    let by_code = |code: &str| {
        records
            .iter()
            .find(|r| attr_str(&r.attributes, "reason_code").as_deref() == Some(code))
            .unwrap_or_else(|| panic!("no {code} record"))
            .clone()
    };

    let det = by_code("GOV_CONFIG_DRIFT_DETECTED");
    assert_eq!(det.severity_text, "WARN");
    assert_eq!(det.severity_number, 13);
    assert_eq!(
        attr_str(&det.attributes, "bot_slug").unwrap(),
        "risk.killswitch"
    );
    assert_eq!(attr_str(&det.attributes, "severity_class").unwrap(), "P2");
    assert_eq!(
        attr_str(&det.attributes, "user_message").unwrap(),
        "The running configuration of one of the system's safeties differs from the version on file. Operators must reconcile."
    );
    let body = det.body.as_ref().unwrap();
    assert_eq!(
        kv_get(body, "status"),
        Some(&any_value::Value::StringValue("DRIFT".into()))
    );
    assert_eq!(
        kv_get(body, "kind"),
        Some(&any_value::Value::StringValue("ConfigDriftReport".into()))
    );
    assert!(matches!(
        kv_get(body, "drifts"),
        Some(any_value::Value::ArrayValue(a)) if a.values.len() == 1
    ));

    let unk = by_code("GOV_CONFIG_DRIFT_UNKNOWN");
    assert_eq!(unk.severity_text, "WARN");
    assert_eq!(attr_str(&unk.attributes, "severity_class").unwrap(), "P3");
    assert_eq!(
        attr_str(&unk.attributes, "user_message").unwrap(),
        "Whether the running configuration of one of the system's safeties matches the version on file cannot be determined."
    );
    assert_eq!(
        kv_get(unk.body.as_ref().unwrap(), "unknown_reason"),
        Some(&any_value::Value::StringValue("runtime_timeout".into()))
    );

    let res = by_code("GOV_CONFIG_DRIFT_RESOLVED");
    assert_eq!(res.severity_text, "INFO");
    assert_eq!(res.severity_number, 9);
    assert_eq!(
        attr_str(&res.attributes, "user_message").unwrap(),
        "The running configuration of one of the system's safeties matches the version on file again."
    );
    assert_eq!(attr_str(&res.attributes, "resolved_by").unwrap(), "commit");
    assert_eq!(
        attr_str(&res.attributes, "episode_id").unwrap(),
        "risk.killswitch-1715260000000"
    );
    assert_eq!(attr_str(&res.attributes, "commit_sha").unwrap(), "abc123");
    assert_eq!(
        attr_str(&res.attributes, "commit_author").unwrap(),
        "Ana <ana@example.org>"
    );
    assert_eq!(
        attr_str(&res.attributes, "commit_summary").unwrap(),
        "Adopt live limit"
    );
    assert!(matches!(
        otlp_receiver::attr(&res.attributes, "resolution_minutes"),
        Some(any_value::Value::DoubleValue(m)) if *m == 14.5
    ));

    let ack = by_code("GOV_CONFIG_DRIFT_ACK");
    assert_eq!(ack.severity_text, "INFO");
    assert_eq!(
        attr_str(&ack.attributes, "user_message").unwrap(),
        "A drift was acknowledged by two people until the next check."
    );
    assert_eq!(attr_str(&ack.attributes, "approved_by").unwrap(), "bo");

    // RESOLVED also fed the resolution histogram.
    assert!(
        t.metrics()
            .render_prometheus()
            .contains(r#"drift_resolution_minutes_bucket{bot_id="risk.killswitch",le="15"} 1"#)
    );
    t.shutdown().unwrap();
}

#[test]
fn check_span_has_field_events_capped_at_one_thousand_and_flags_mass_drift() {
    let rx = otlp_receiver::grpc();
    let t = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())]);
    // 3 of 4 evaluated bots drift (mass drift); 1,200 drifted fields in all.
    let reports = vec![
        drifting("a.bot", 400),
        drifting("b.bot", 400),
        drifting("c.bot", 400),
        in_sync("d.bot"),
        unknown("e.bot"),
    ];
    let outcome = CheckSpan {
        checked_at_ms: 1_715_260_900_000,
        duration: Duration::from_millis(420),
        reports: &reports,
        committed_ref: Some("main"),
        commit: Some("9fceb02d0ae598e95dc970b74767f19372d61af8"),
        chain_head: Some("ab".repeat(32).as_str()),
    }
    .emit(&t);
    assert_eq!(outcome.field_events, 1000);
    assert_eq!(outcome.dropped_field_events, 200);
    assert!(outcome.mass_drift);
    t.force_flush().unwrap();
    rx.store
        .wait_for(WAIT, "the check span", |r| !r.traces.is_empty());
    let spans = rx.store.spans();
    let span = spans
        .iter()
        .find(|s| s.name == "config_drift.check")
        .expect("check span");
    assert_eq!(attr_int(&span.attributes, "bots"), Some(5));
    assert_eq!(attr_int(&span.attributes, "drifting"), Some(3));
    assert_eq!(attr_int(&span.attributes, "unknown"), Some(1));
    assert_eq!(
        attr_int(&span.attributes, "dropped_field_events"),
        Some(200)
    );
    assert_eq!(
        attr_str(&span.attributes, "chain_head").unwrap(),
        "ab".repeat(32)
    );
    assert_eq!(
        span.end_time_unix_nano - span.start_time_unix_nano,
        420_000_000
    );
    let fields: Vec<_> = span
        .events
        .iter()
        .filter(|e| e.name == "config_drift.field")
        .collect();
    assert_eq!(fields.len(), 1000);
    assert_eq!(span.dropped_events_count, 0);
    let first = fields[0];
    assert_eq!(attr_str(&first.attributes, "bot_slug").unwrap(), "a.bot");
    assert_eq!(attr_str(&first.attributes, "field").unwrap(), "limits.f0");
    assert_eq!(attr_str(&first.attributes, "kind").unwrap(), "changed");
    assert_eq!(attr_str(&first.attributes, "running").unwrap(), "10");
    assert_eq!(attr_str(&first.attributes, "committed").unwrap(), "12");
    assert_eq!(attr_str(&first.attributes, "delta").unwrap(), "-2");
    let mass = span
        .events
        .iter()
        .find(|e| e.name == "mass_drift")
        .expect("mass_drift span event");
    assert_eq!(attr_str(&mass.attributes, "committed_ref").unwrap(), "main");

    rx.store
        .wait_for(WAIT, "the mass_drift log record", |r| !r.logs.is_empty());
    let records = rx.store.log_records();
    let rec = records
        .iter()
        .find(|r| {
            matches!(
                otlp_receiver::attr(&r.attributes, "mass_drift"),
                Some(any_value::Value::BoolValue(true))
            )
        })
        .expect("mass_drift log record");
    assert_eq!(
        attr_str(&rec.attributes, "committed_commit").unwrap(),
        "9fceb02d0ae598e95dc970b74767f19372d61af8"
    );
    t.shutdown().unwrap();
}

#[test]
fn http_protobuf_exports_every_signal_to_its_path() {
    let rx = otlp_receiver::http();
    let t = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ("OTEL_SERVICE_NAME", "drift-test".into()),
    ]);
    let reports = [drifting("a.bot", 1), in_sync("b.bot")];
    publish(&t, &series(&reports));
    DriftDetected {
        report: &reports[0],
        severity_class: SeverityClass::P3,
    }
    .emit(&t);
    CheckSpan {
        checked_at_ms: 1_715_260_900_000,
        duration: Duration::from_millis(5),
        reports: &reports,
        committed_ref: Some("main"),
        commit: None,
        chain_head: None,
    }
    .emit(&t);
    t.force_flush().unwrap();
    rx.store.wait_for(WAIT, "all three signals over HTTP", |r| {
        !r.metrics.is_empty() && !r.logs.is_empty() && !r.traces.is_empty()
    });
    let paths = rx.store.with(|r| r.paths.clone());
    for p in ["/v1/metrics", "/v1/logs", "/v1/traces"] {
        assert!(paths.iter().any(|x| x == p), "{p} not in {paths:?}");
    }
    let ms = rx.store.latest_metrics();
    assert_eq!(
        points(find(&ms, "bots_in_drift")),
        vec![
            (vec!["bot_id=a.bot".to_string()], 1.0),
            (vec!["bot_id=b.bot".to_string()], 0.0)
        ]
    );
    let service = rx.store.with(|r| {
        attr_str(
            &r.logs[0].resource_logs[0]
                .resource
                .as_ref()
                .unwrap()
                .attributes,
            "service.name",
        )
    });
    assert_eq!(service.as_deref(), Some("drift-test"));
    let rec = &rx.store.log_records()[0];
    assert_eq!(
        attr_str(&rec.attributes, "reason_code").as_deref(),
        Some("GOV_CONFIG_DRIFT_DETECTED")
    );
    t.shutdown().unwrap();
}
