//! Every log record the product writes, one struct per event with an `emit`:
//! `gov` (the four `GOV_CONFIG_DRIFT_*` records), `check` (the per-check record
//! carrying the chain head, `mass_drift`, the per-bot developer line), `agent`
//! (reloads, the registry, pauses, acks, the audit log, state writes) and
//! `process` (start, signals, shutdown).
//!
//! Two routes, each from one field list so a fact cannot reach one sink and miss
//! the other. The `gov` and `check` records go through the OTel Logs API
//! deliberately — attributes plus a structured body, which the tracing bridge
//! cannot carry — and, for stderr (journald, a log shipper), as a `tracing`
//! event under `config_drift::gov` (which the bridge skips, so OTel never sees
//! them twice); `record!` writes both. The `agent` and `process` records are one
//! `tracing` event each under `config_drift::agent`, `config_drift::audit` or
//! `config_drift::process`, which the bridge turns into the OTel record field
//! for field. Must not decide when an event happens: the latch, the agent and
//! the scheduler do.

/// Emits one record to both sinks from one field list: the OTel record through
/// `$sink` (the fields as attributes, `body` as its body, `$event` its event
/// name) and the `tracing` event under `$target` (the same fields, `$message` as
/// its message, and the `line { … }` fields that only a text line needs). Each
/// value is evaluated once.
macro_rules! record {
    ($sink:expr, $target:expr, $level:ident, $event:expr, $message:expr, body = $body:expr,
     { $($name:ident = $value:expr),* $(,)? } $(, line { $($line:tt)* })?) => {{
        let message: &str = $message;
        $(let $name = $value;)*
        let mut attributes: Vec<(&'static str, opentelemetry::logs::AnyValue)> = Vec::new();
        for (key, value) in [
            $((stringify!($name), $crate::telemetry::events::Attribute::attribute(&$name)),)*
        ] {
            if let Some(value) = value {
                attributes.push((key, value));
            }
        }
        $sink.emit(
            $event,
            $crate::telemetry::events::severity_of(tracing::Level::$level),
            Some($body),
            attributes,
        );
        tracing::event!(
            target: $target,
            tracing::Level::$level,
            $($name,)*
            $($($line)*,)?
            "{message}"
        );
    }};
}

pub mod agent;
pub mod check;
pub mod gov;
pub mod process;

pub use agent::*;
pub use check::*;
pub use gov::*;
pub use process::*;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::{Key, StringValue};

use opentelemetry_sdk::logs::SdkLogger;

use crate::report::ConfigDriftReport;

/// The `tracing` target of the records written to OTel directly (`gov`, `check`).
pub const GOV_TARGET: &str = "config_drift::gov";
/// The agent's own records (reloads, registry, pauses, acks, state writes).
pub const AGENT_TARGET: &str = "config_drift::agent";
/// The admin audit log's records (§12).
pub const AUDIT_TARGET: &str = "config_drift::audit";
/// The process's records (start, signals, shutdown).
pub const PROCESS_TARGET: &str = "config_drift::process";

/// At most this many field names in the developer line; the rest are counted.
const FIELDS_IN_LINE: usize = 20;

/// The OTel logger every record goes through.
#[derive(Clone, Debug)]
pub struct LogSink {
    logger: SdkLogger,
}

impl LogSink {
    pub(crate) fn new(logger: SdkLogger) -> LogSink {
        LogSink { logger }
    }

    pub(crate) fn emit(
        &self,
        event_name: &'static str,
        severity: Severity,
        body: Option<AnyValue>,
        attributes: Vec<(&'static str, AnyValue)>,
    ) {
        let mut record = self.logger.create_log_record();
        let now = crate::time::now();
        record.set_event_name(event_name);
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        record.set_severity_number(severity);
        record.set_severity_text(severity.name());
        if let Some(body) = body {
            record.set_body(body);
        }
        for (k, v) in attributes {
            record.add_attribute(Key::from_static_str(k), v);
        }
        self.logger.emit(record);
    }
}

/// The report as an OTel map, from its JSON. OTel's `AnyValue` has no null, so
/// null members (e.g. `reason_code` when IN_SYNC) are left out of the map.
pub fn report_body(report: &ConfigDriftReport) -> AnyValue {
    match serde_json::to_value(report) {
        Ok(v) => json_to_any(v).unwrap_or_else(|| AnyValue::Map(Box::default())),
        Err(e) => AnyValue::String(format!("unserialisable report: {e}").into()),
    }
}

fn json_to_any(v: serde_json::Value) -> Option<AnyValue> {
    use serde_json::Value;
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AnyValue::Int(i),
            (None, Some(f)) if n.is_f64() => AnyValue::Double(f),
            // Beyond i64 and not a float: keep the digits exactly.
            _ => AnyValue::String(n.to_string().into()),
        },
        Value::String(s) => AnyValue::String(s.into()),
        Value::Array(items) => AnyValue::ListAny(Box::new(
            items.into_iter().filter_map(json_to_any).collect(),
        )),
        Value::Object(members) => AnyValue::Map(Box::new(
            members
                .into_iter()
                .filter_map(|(k, v)| json_to_any(v).map(|v| (Key::from(k), v)))
                .collect(),
        )),
    })
}

pub(crate) fn s(text: impl Into<StringValue>) -> AnyValue {
    AnyValue::String(text.into())
}

/// A record field's value as an OTel attribute; `None` (an absent optional
/// field) adds no attribute, as `tracing` records no field for `None`.
pub(crate) trait Attribute {
    fn attribute(&self) -> Option<AnyValue>;
}

impl Attribute for &str {
    fn attribute(&self) -> Option<AnyValue> {
        Some(s(self.to_string()))
    }
}

impl Attribute for String {
    fn attribute(&self) -> Option<AnyValue> {
        Some(s(self.clone()))
    }
}

impl Attribute for i64 {
    fn attribute(&self) -> Option<AnyValue> {
        Some(AnyValue::Int(*self))
    }
}

impl Attribute for usize {
    fn attribute(&self) -> Option<AnyValue> {
        Some(AnyValue::Int(i64::try_from(*self).unwrap_or(i64::MAX)))
    }
}

impl Attribute for u64 {
    fn attribute(&self) -> Option<AnyValue> {
        Some(AnyValue::Int(i64::try_from(*self).unwrap_or(i64::MAX)))
    }
}

impl Attribute for f64 {
    fn attribute(&self) -> Option<AnyValue> {
        Some(AnyValue::Double(*self))
    }
}

impl Attribute for bool {
    fn attribute(&self) -> Option<AnyValue> {
        Some(AnyValue::Boolean(*self))
    }
}

impl<T: Attribute> Attribute for Option<T> {
    fn attribute(&self) -> Option<AnyValue> {
        self.as_ref().and_then(Attribute::attribute)
    }
}

/// The report as one line of JSON, for the `report` field of stderr records
/// (the JSON log format embeds it as an object).
pub(crate) struct ReportJson<'a>(pub &'a ConfigDriftReport);

impl std::fmt::Display for ReportJson<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_json_line())
    }
}

pub(crate) fn severity_of(level: tracing::Level) -> Severity {
    match level {
        tracing::Level::ERROR => Severity::Error,
        tracing::Level::WARN => Severity::Warn,
        tracing::Level::INFO => Severity::Info,
        tracing::Level::DEBUG => Severity::Debug,
        tracing::Level::TRACE => Severity::Trace,
    }
}

pub(crate) fn slug(report: &ConfigDriftReport) -> &str {
    report.bot_slug.as_deref().unwrap_or("")
}

/// Drifted field names, comma-separated, the first `FIELDS_IN_LINE` only.
pub fn field_list(report: &ConfigDriftReport) -> String {
    let mut out: Vec<&str> = report
        .drifts
        .iter()
        .take(FIELDS_IN_LINE)
        .map(|d| d.field.as_str())
        .collect();
    let more = report.drifts.len().saturating_sub(FIELDS_IN_LINE);
    let extra;
    if more > 0 {
        extra = format!("(+{more} more)");
        out.push(&extra);
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Drift, DriftKind};
    use serde_json::value::RawValue;

    #[test]
    fn body_is_the_report_as_a_map_without_nulls() {
        let mut r = ConfigDriftReport::new(Some("risk.killswitch".into()), 5);
        r.drifts.push(Drift {
            field: "limit".into(),
            kind: DriftKind::Changed,
            running: Some(RawValue::from_string("10".into()).unwrap()),
            committed: Some(RawValue::from_string("12.5".into()).unwrap()),
            delta: None,
            since_ts_ms: 5,
            latched: false,
        });
        r.settle();
        let AnyValue::Map(m) = report_body(&r) else {
            panic!("not a map")
        };
        assert_eq!(m.get(&Key::from("status")), Some(&s("DRIFT")));
        assert_eq!(m.get(&Key::from("checked_at_ms")), Some(&AnyValue::Int(5)));
        assert!(!m.contains_key(&Key::from("committed_commit")));
        let Some(AnyValue::ListAny(drifts)) = m.get(&Key::from("drifts")) else {
            panic!("drifts")
        };
        let AnyValue::Map(d) = &drifts[0] else {
            panic!("drift")
        };
        assert_eq!(d.get(&Key::from("running")), Some(&AnyValue::Int(10)));
        assert_eq!(
            d.get(&Key::from("committed")),
            Some(&AnyValue::Double(12.5))
        );
    }

    #[test]
    fn developer_line_lists_at_most_twenty_fields() {
        let mut r = ConfigDriftReport::new(Some("a".into()), 1);
        for i in 0..25 {
            r.drifts.push(Drift {
                field: format!("f{i}"),
                kind: DriftKind::MissingInRunning,
                running: None,
                committed: None,
                delta: None,
                since_ts_ms: 1,
                latched: false,
            });
        }
        let l = field_list(&r);
        assert!(l.starts_with("f0,f1,"));
        assert!(l.ends_with("f19,(+5 more)"));
    }

    /// A record's name (event name or target) and its fields, as text.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<(String, String)>)>>>;

    /// An OTel log processor that keeps every record's event name and attributes.
    #[derive(Debug, Default, Clone)]
    struct Capture(Seen);

    impl opentelemetry_sdk::logs::LogProcessor for Capture {
        fn emit(
            &self,
            record: &mut opentelemetry_sdk::logs::SdkLogRecord,
            _: &opentelemetry::InstrumentationScope,
        ) {
            let attributes = record
                .attributes_iter()
                .map(|(k, v)| (k.to_string(), any_text(v)))
                .collect();
            let name = record.event_name().unwrap_or("").to_owned();
            self.0.lock().unwrap().push((name, attributes));
        }

        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    fn any_text(v: &AnyValue) -> String {
        match v {
            AnyValue::String(s) => s.to_string(),
            AnyValue::Int(i) => i.to_string(),
            AnyValue::Double(f) => f.to_string(),
            AnyValue::Boolean(b) => b.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// A `tracing` layer that keeps every event's target and fields.
    #[derive(Default, Clone)]
    struct Lines(Seen);

    struct Fields(Vec<(String, String)>);

    impl tracing::field::Visit for Fields {
        fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
            self.0.push((f.name().into(), v.into()));
        }
        fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
            self.0.push((f.name().into(), v.to_string()));
        }
        fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
            self.0.push((f.name().into(), v.to_string()));
        }
        fn record_f64(&mut self, f: &tracing::field::Field, v: f64) {
            self.0.push((f.name().into(), v.to_string()));
        }
        fn record_bool(&mut self, f: &tracing::field::Field, v: bool) {
            self.0.push((f.name().into(), v.to_string()));
        }
        fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
            self.0.push((f.name().into(), format!("{v:?}")));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            let target = event.metadata().target().to_owned();
            self.0.lock().unwrap().push((target, fields.0));
        }
    }

    #[test]
    fn every_event_writes_the_same_fields_to_both_sinks() {
        use tracing_subscriber::layer::SubscriberExt as _;

        let capture = Capture::default();
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_log_processor(capture.clone())
            .build();
        let info = crate::telemetry::AgentInfo {
            mode: crate::config::Mode::Enforced,
            branch: "main".into(),
            version: "test".into(),
            shard: crate::shard::Shard::ALL,
            check_interval: std::time::Duration::from_secs(900),
        };
        let mut t = crate::telemetry::Telemetry::init_with(info, &|_| None).unwrap();
        t.logs = LogSink::new(opentelemetry::logs::LoggerProvider::logger(
            &provider, "test",
        ));

        let mut drifting = ConfigDriftReport::new(Some("risk.killswitch".into()), 5);
        drifting.drifts.push(Drift {
            field: "limit".into(),
            kind: DriftKind::Changed,
            running: Some(RawValue::from_string("10".into()).unwrap()),
            committed: Some(RawValue::from_string("12".into()).unwrap()),
            delta: None,
            since_ts_ms: 5,
            latched: false,
        });
        drifting.episode_id = Some("ep-1".into());
        drifting.settle();
        let commit = ResolvingCommit {
            sha: "abc".into(),
            author: "Ada".into(),
            summary: "Adopt".into(),
        };
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(lines.clone());
        tracing::subscriber::with_default(subscriber, || {
            DriftDetected {
                report: &drifting,
                severity_class: SeverityClass::P2,
            }
            .emit(&t);
            DriftUnknown { report: &drifting }.emit(&t);
            DriftResolved {
                report: &drifting,
                episode_id: "ep-1",
                resolution_minutes: 1.5,
                resolved_by: ResolvedBy::Commit,
                commit: Some(&commit),
            }
            .emit(&t);
            DriftResolved {
                report: &drifting,
                episode_id: "ep-1",
                resolution_minutes: 2.0,
                resolved_by: ResolvedBy::Cleared,
                commit: None,
            }
            .emit(&t);
            DriftAcknowledged {
                report: &drifting,
                ack_id: "ack-1",
                requested_by: "olga",
                approved_by: "vic",
                reason: "known",
                expires_at_ms: 9,
            }
            .emit(&t);
            CheckCompleted {
                bots: 3,
                drifting: 1,
                unknown: 0,
                commit: Some("abc"),
                chain_head: None,
                duration_ms: 12,
                successful: true,
            }
            .emit(&t);
            MassDrift {
                drifting: 3,
                evaluated: 4,
                committed_ref: Some("main"),
                commit: None,
            }
            .emit(&t);
        });

        let otel = capture.0.lock().unwrap().clone();
        let lines: Vec<_> = lines
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(target, _)| target == GOV_TARGET)
            .cloned()
            .collect();
        assert_eq!(otel.len(), 7, "{otel:?}");
        assert_eq!(lines.len(), 7, "{lines:?}");
        for ((name, attributes), (_, fields)) in otel.iter().zip(&lines) {
            // The text line has its message and, for GOV records, the report as
            // JSON (the OTel body carries both); every other field is shared.
            let shared: Vec<(String, String)> = fields
                .iter()
                .filter(|(k, _)| k != "message" && k != "report")
                .cloned()
                .collect();
            assert_eq!(attributes, &shared, "{name}");
            assert!(!attributes.is_empty(), "{name}");
        }
        let names: Vec<&str> = otel.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "GOV_CONFIG_DRIFT_DETECTED",
                "GOV_CONFIG_DRIFT_UNKNOWN",
                "GOV_CONFIG_DRIFT_RESOLVED",
                "GOV_CONFIG_DRIFT_RESOLVED",
                "GOV_CONFIG_DRIFT_ACK",
                "config_drift.check",
                "config_drift.mass_drift",
            ]
        );
    }
}
