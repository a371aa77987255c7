//! Telemetry (§11): the agent's metrics, log records and check spans, exported
//! over OTLP when the environment asks for it and always on `GET /metrics`.
//!
//! Owns the providers and their lifetime: `Telemetry::init` reads the `OTEL_*`
//! environment and builds one meter provider (Prometheus pull + optional OTLP
//! push), one logger provider and one tracer provider, each exporting through a
//! bounded queue; `shutdown` flushes them in parallel within `SHUTDOWN_BOUND`, so
//! a collector that is down or never answers cannot hold the process. Also the
//! stderr logging setup (`init_logging`). Must not decide statuses, episodes or
//! when events fire: the scheduler and the latch call in with what they found.
//!
//! metrics.rs defines every instrument, events.rs every log record, spans.rs the
//! check span, export.rs the environment and exporters, batch.rs the queues,
//! bridge.rs the `tracing` → OTel logs layer.

pub mod batch;
pub mod bridge;
pub mod events;
pub mod export;
pub mod json_log;
pub mod metrics;
pub mod spans;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::{LogExporter as _, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter as _};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::Mode;
use crate::shard::Shard;
use batch::{BoundedLogProcessor, BoundedQueue, BoundedSpanProcessor, LogBatchSink, SpanBatchSink};
use events::LogSink;
use export::{
    DropCounters, EnvLookup, ExportConfig, ExportConfigError, ExportRuntime, ExporterBuildError,
    Signal,
};
use metrics::{Metrics, MetricsError};

/// The longest `shutdown` waits for all three providers together.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// The instrumentation scope of every signal.
pub const SCOPE: &str = "config-drift-detector";

/// Who is emitting: the labels of `drift_detector_info` and the interval gauge.
#[derive(Clone, Debug)]
pub struct AgentInfo {
    pub mode: Mode,
    pub branch: String,
    pub version: String,
    pub shard: Shard,
    pub check_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry environment: {0}")]
    Env(#[from] ExportConfigError),
    #[error(transparent)]
    Exporter(#[from] ExporterBuildError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("cannot start the telemetry {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("telemetry shutdown did not finish within {bound:?} for {pending}")]
    ShutdownTimeout { bound: Duration, pending: String },
    #[error(
        "telemetry could not be delivered for {failed} (the collector refused or failed); it was dropped"
    )]
    ExportFailed { failed: String },
    #[error("RUST_LOG = `{value}` is not a valid log filter: {reason}")]
    LogFilter { value: String, reason: String },
    #[error("logging was already set up in this process")]
    LoggingAlreadySet,
}

/// The agent's telemetry.
pub struct Telemetry {
    metrics: Metrics,
    logs: LogSink,
    tracer: SdkTracer,
    logger_provider: SdkLoggerProvider,
    tracer_provider: SdkTracerProvider,
    export: ExportConfig,
    drops: Arc<DropCounters>,
    // Held so the exporters' runtime outlives the providers that use it.
    _runtime: Option<Arc<ExportRuntime>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Reads the process environment (`OTEL_*`).
    pub fn init(info: AgentInfo) -> Result<Telemetry, TelemetryError> {
        Telemetry::init_with(info, &|k| std::env::var(k).ok())
    }

    /// As `init`, with the environment given as a lookup.
    pub fn init_with(info: AgentInfo, env: EnvLookup<'_>) -> Result<Telemetry, TelemetryError> {
        let export = ExportConfig::from_lookup(env)?;
        for w in &export.warnings {
            events::TelemetryWarning { warning: w }.emit();
        }
        let resource = export::resource(&export, &info.version);
        let drops = Arc::new(DropCounters::default());
        let runtime = if export.any_export() {
            Some(Arc::new(ExportRuntime::new().map_err(|source| {
                TelemetryError::Thread {
                    what: "export runtime",
                    source,
                }
            })?))
        } else {
            None
        };

        let metric_exporter = match (&runtime, &export.metrics) {
            (Some(rt), Some(cfg)) => Some((
                export::build_metric_exporter(
                    rt,
                    cfg,
                    export.metric_export_timeout,
                    drops.clone(),
                )?,
                export.metric_export_interval,
            )),
            _ => None,
        };
        let metrics = Metrics::new(&info, resource.clone(), metric_exporter, drops.clone())?;

        let mut logs = SdkLoggerProvider::builder().with_resource(resource.clone());
        if let (Some(rt), Some(cfg)) = (&runtime, &export.logs) {
            let mut exporter = export::build_log_exporter(rt, cfg)?;
            exporter.set_resource(&resource);
            let queue = BoundedQueue::start(
                Signal::Logs,
                export.log_records,
                drops.clone(),
                LogBatchSink {
                    exporter,
                    runtime: rt.clone(),
                    deadline: export.log_records.export_timeout.min(cfg.timeout),
                },
            )
            .map_err(|source| TelemetryError::Thread {
                what: "log queue",
                source,
            })?;
            logs = logs.with_log_processor(BoundedLogProcessor(queue));
        }
        let logger_provider = logs.build();

        let mut traces = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            // Every field event of a check plus its mass_drift event.
            .with_max_events_per_span(spans::MAX_FIELD_EVENTS as u32 + 1);
        if let (Some(rt), Some(cfg)) = (&runtime, &export.traces) {
            let mut exporter = export::build_span_exporter(rt, cfg)?;
            exporter.set_resource(&resource);
            let queue = BoundedQueue::start(
                Signal::Traces,
                export.spans,
                drops.clone(),
                SpanBatchSink {
                    exporter,
                    runtime: rt.clone(),
                    deadline: export.spans.export_timeout.min(cfg.timeout),
                },
            )
            .map_err(|source| TelemetryError::Thread {
                what: "span queue",
                source,
            })?;
            traces = traces.with_span_processor(BoundedSpanProcessor(queue));
        }
        let tracer_provider = traces.build();

        let logger = logger_provider.logger(SCOPE);
        if export.logs.is_some() {
            bridge::install(Some(logger.clone()));
        }
        Ok(Telemetry {
            metrics,
            logs: LogSink::new(logger),
            tracer: tracer_provider.tracer(SCOPE),
            logger_provider,
            tracer_provider,
            export,
            drops,
            _runtime: runtime,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn logs(&self) -> &LogSink {
        &self.logs
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// What the environment asked for.
    pub fn export_config(&self) -> &ExportConfig {
        &self.export
    }

    /// Items dropped so far for `signal` (also `drift_telemetry_dropped_total`).
    pub fn dropped(&self, signal: Signal) -> u64 {
        self.drops.get(signal)
    }

    /// Pushes everything now (tests; a manual check's caller may want it too).
    /// Bounded like `shutdown`.
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        let meter = self.metrics.provider().clone();
        let logs = self.logger_provider.clone();
        let traces = self.tracer_provider.clone();
        run_bounded(vec![
            ("metrics", Box::new(move || meter.force_flush().is_ok())),
            ("logs", Box::new(move || logs.force_flush().is_ok())),
            ("traces", Box::new(move || traces.force_flush().is_ok())),
        ])
    }

    /// Flushes and stops all three providers in parallel, within `SHUTDOWN_BOUND`.
    /// Past it, what is still pending is abandoned (and named in the error).
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        if self.export.logs.is_some() {
            bridge::install(None);
        }
        let meter = self.metrics.provider().clone();
        let logs = self.logger_provider.clone();
        let traces = self.tracer_provider.clone();
        run_bounded(vec![
            (
                "metrics",
                Box::new(move || meter.shutdown_with_timeout(SHUTDOWN_BOUND).is_ok()),
            ),
            (
                "logs",
                Box::new(move || logs.shutdown_with_timeout(SHUTDOWN_BOUND).is_ok()),
            ),
            (
                "traces",
                Box::new(move || traces.shutdown_with_timeout(SHUTDOWN_BOUND).is_ok()),
            ),
        ])
    }
}

type Job = Box<dyn FnOnce() -> bool + Send>;

/// Runs each job on its own thread and waits for all of them at most
/// `SHUTDOWN_BOUND` (plus a little for the threads to report).
fn run_bounded(jobs: Vec<(&'static str, Job)>) -> Result<(), TelemetryError> {
    let deadline = Instant::now() + SHUTDOWN_BOUND + Duration::from_millis(250);
    let (tx, rx) = mpsc::channel();
    let mut pending: Vec<&'static str> = Vec::new();
    for (name, job) in jobs {
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("otel-stop-{name}"))
            .spawn(move || {
                let ok = job();
                let _ = tx.send((name, ok));
            });
        if spawned.is_ok() {
            pending.push(name);
        }
    }
    drop(tx);
    let mut failed = Vec::new();
    while !pending.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok((name, ok)) => {
                pending.retain(|p| *p != name);
                if !ok {
                    failed.push(name);
                }
            }
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        Err(TelemetryError::ShutdownTimeout {
            bound: SHUTDOWN_BOUND,
            pending: pending.join(", "),
        })
    } else if !failed.is_empty() {
        Err(TelemetryError::ExportFailed {
            failed: failed.join(", "),
        })
    } else {
        Ok(())
    }
}

/// How stderr logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For people; colour only on a terminal and never with `NO_COLOR`.
    Text,
    /// One JSON object per line (`--log-format json`).
    Json,
}

/// Installs the process's `tracing` subscriber: stderr in `format`, filtered by
/// `RUST_LOG` (default `info`), plus the OTel logs bridge (active once
/// `Telemetry::init` has exporting logs).
pub fn init_logging(format: LogFormat) -> Result<(), TelemetryError> {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;

    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(&value).map_err(|e| TelemetryError::LogFilter {
                value: value.clone(),
                reason: e.to_string(),
            })?
        }
        _ => EnvFilter::new("info"),
    };
    let fmt = match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(json_log::JsonLines)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(bridge::OtelLogBridge.with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .try_init()
        .map_err(|_| TelemetryError::LoggingAlreadySet)
}
