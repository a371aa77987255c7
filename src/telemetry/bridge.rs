//! A `tracing` layer that forwards the agent's own INFO+ events (config reloads,
//! startup warnings, …) to the OTel log pipeline. Owns the filter that keeps the
//! HTTP/gRPC/OTel libraries' own events out — an export failure logged by tonic
//! must not become a record that is exported, fails and is logged again — and
//! skips the `config_drift::gov` target, whose records events.rs emits through the
//! Logs API itself. Must not block: it only hands a record to the bounded queue.

use std::sync::RwLock;

use opentelemetry::Key;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry_sdk::logs::SdkLogger;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

use super::events::GOV_TARGET;

/// Library targets never bridged (prefixes of `tracing` targets).
pub const EXCLUDED_TARGETS: &[&str] = &[
    "hyper",
    "h2",
    "tonic",
    "tower",
    "reqwest",
    "rustls",
    "tokio",
    "mio",
    "opentelemetry",
];

/// The logger the bridge writes to: set by `Telemetry::init` when logs are
/// exported, cleared by its `shutdown`. Global because the `tracing` subscriber is.
static BRIDGE: RwLock<Option<SdkLogger>> = RwLock::new(None);

pub(crate) fn install(logger: Option<SdkLogger>) {
    *BRIDGE.write().unwrap_or_else(|e| e.into_inner()) = logger;
}

/// Whether an event of `target` at `level` goes to OTel logs.
pub fn bridged(target: &str, level: Level) -> bool {
    level <= Level::INFO
        && target != GOV_TARGET
        && !EXCLUDED_TARGETS.iter().any(|p| target.starts_with(p))
}

/// The layer; add it to the subscriber once (see `init_logging`).
#[derive(Debug, Default)]
pub struct OtelLogBridge;

struct Fields {
    body: Option<String>,
    attributes: Vec<(Key, AnyValue)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, AnyValue::String(value.to_string().into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AnyValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = i64::try_from(value).map_or_else(
            |_| AnyValue::String(value.to_string().into()),
            AnyValue::Int,
        );
        self.put(field, v);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AnyValue::Double(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AnyValue::Boolean(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, AnyValue::String(format!("{value:?}").into()));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: AnyValue) {
        if field.name() == "message" {
            if let AnyValue::String(s) = value {
                self.body = Some(s.to_string());
            }
        } else {
            self.attributes
                .push((Key::from_static_str(field.name()), value));
        }
    }
}

fn severity(level: Level) -> Severity {
    match level {
        Level::ERROR => Severity::Error,
        Level::WARN => Severity::Warn,
        Level::INFO => Severity::Info,
        Level::DEBUG => Severity::Debug,
        Level::TRACE => Severity::Trace,
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for OtelLogBridge {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !bridged(meta.target(), *meta.level()) {
            return;
        }
        let guard = BRIDGE.read().unwrap_or_else(|e| e.into_inner());
        let Some(logger) = guard.as_ref() else {
            return;
        };
        let mut fields = Fields {
            body: None,
            attributes: Vec::new(),
        };
        event.record(&mut fields);
        let mut record = logger.create_log_record();
        let now = crate::time::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        let sev = severity(*meta.level());
        record.set_severity_number(sev);
        record.set_severity_text(sev.name());
        if let Some(body) = fields.body {
            record.set_body(AnyValue::String(body.into()));
        }
        record.add_attribute("target", meta.target().to_string());
        for (k, v) in fields.attributes {
            record.add_attribute(k, v);
        }
        logger.emit(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_events_and_gov_records_are_not_bridged() {
        assert!(bridged("config_drift_detector::schedule", Level::WARN));
        assert!(bridged("config_drift_detector::schedule", Level::INFO));
        assert!(!bridged("config_drift_detector::schedule", Level::DEBUG));
        for t in [
            "hyper_util::client::legacy",
            "h2::codec",
            "tonic::transport",
            "tower::buffer",
            "reqwest::connect",
            "opentelemetry_sdk",
            "opentelemetry-otlp",
            GOV_TARGET,
        ] {
            assert!(!bridged(t, Level::ERROR), "{t}");
        }
    }
}
