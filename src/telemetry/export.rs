//! OTLP export settings from the OTel SDK environment specification (§11) and the
//! exporters built from them. Owns: reading `OTEL_*` through an injectable lookup,
//! choosing gRPC (default) or http/protobuf per signal, the small runtime the
//! exporters run on, and counting what export drops. Must not decide what is
//! emitted (metrics.rs, events.rs, spans.rs do) and must never block a caller for
//! longer than an export timeout: every export runs under a deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    LogExporter, MetricExporter, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

use crate::text::percent_decode;

/// A name → value lookup standing in for the process environment, so tests never
/// mutate the real one.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The service name when neither `OTEL_SERVICE_NAME` nor `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "config-drift-detector";

/// `OTEL_EXPORTER_OTLP_TIMEOUT` when unset. The specification says 10 s; we use
/// less so that a collector that never answers costs little at shutdown.
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportConfigError {
    #[error("{var} = `{value}` is not a whole number of milliseconds")]
    NotMillis { var: String, value: String },
    #[error("{var} = `{value}` is not a positive whole number")]
    NotCount { var: String, value: String },
    /// `value` has any user and password of the URL replaced (§12: no secret in logs).
    #[error("{var} = `{value}` is not an http:// or https:// URL")]
    BadEndpoint { var: String, value: String },
    #[error("{var} = `{value}` is not a supported protocol (use grpc or http/protobuf)")]
    BadProtocol { var: String, value: String },
    /// Names the entry by position: its text may be a token.
    #[error("{var}: entry {position} is not key=value with a percent-encoded value")]
    BadKeyValue { var: String, position: usize },
}

/// One of the three OTel signals; also the `signal` label of `drift_telemetry_dropped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    Metrics,
    Logs,
    Traces,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Metrics, Signal::Logs, Signal::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }

    fn env_part(self) -> &'static str {
        match self {
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
            Signal::Traces => "TRACES",
        }
    }

    fn http_path(self) -> &'static str {
        match self {
            Signal::Metrics => "v1/metrics",
            Signal::Logs => "v1/logs",
            Signal::Traces => "v1/traces",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// Where and how one signal is exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalExport {
    /// The full URL: for http/protobuf it already ends in `/v1/<signal>` when it
    /// came from the generic endpoint.
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

/// `OTEL_BSP_*` / `OTEL_BLRP_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    pub max_queue_size: usize,
    pub scheduled_delay: Duration,
    pub max_export_batch_size: usize,
    pub export_timeout: Duration,
}

/// Everything the environment says about export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportConfig {
    pub service_name: String,
    /// From `OTEL_RESOURCE_ATTRIBUTES`, in order, `service.name` excluded.
    pub resource_attributes: Vec<(String, String)>,
    /// `None`: this signal is not exported (no endpoint, `..._EXPORTER=none`, or
    /// `OTEL_SDK_DISABLED=true`).
    pub metrics: Option<SignalExport>,
    pub logs: Option<SignalExport>,
    pub traces: Option<SignalExport>,
    pub metric_export_interval: Duration,
    pub metric_export_timeout: Duration,
    pub spans: BatchSettings,
    pub log_records: BatchSettings,
    /// Settings we ignored, one sentence each, for the caller to log.
    pub warnings: Vec<String>,
}

impl ExportConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<ExportConfig, ExportConfigError> {
        ExportConfig::from_lookup(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(env: EnvLookup<'_>) -> Result<ExportConfig, ExportConfigError> {
        // Empty values count as unset, as the specification asks.
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();

        let mut resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(v) => parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &v)?,
            None => Vec::new(),
        };
        let from_resource = resource_attributes
            .iter()
            .position(|(k, _)| k == "service.name")
            .map(|i| resource_attributes.remove(i).1);
        let service_name = get("OTEL_SERVICE_NAME")
            .or(from_resource)
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());

        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
        let mut signals = Vec::new();
        for signal in Signal::ALL {
            let exporter_var = format!("OTEL_{}_EXPORTER", signal.env_part());
            let wanted = match get(&exporter_var) {
                None => true,
                Some(v) => {
                    let v = v.trim().to_ascii_lowercase();
                    match v.as_str() {
                        "none" => false,
                        "otlp" => true,
                        other => {
                            warnings.push(format!(
                                "{exporter_var} = `{other}` is not supported; using otlp."
                            ));
                            true
                        }
                    }
                }
            };
            let export = if disabled || !wanted {
                None
            } else {
                signal_export(&get, signal)?
            };
            signals.push(export);
        }
        let traces = signals.pop().flatten();
        let logs = signals.pop().flatten();
        let metrics = signals.pop().flatten();

        Ok(ExportConfig {
            service_name,
            resource_attributes,
            metrics,
            logs,
            traces,
            metric_export_interval: millis(&get, "OTEL_METRIC_EXPORT_INTERVAL", 60_000)?,
            metric_export_timeout: millis(&get, "OTEL_METRIC_EXPORT_TIMEOUT", 30_000)?,
            spans: batch_settings(&get, "OTEL_BSP", 5_000)?,
            log_records: batch_settings(&get, "OTEL_BLRP", 1_000)?,
            warnings,
        })
    }

    pub fn signal(&self, signal: Signal) -> Option<&SignalExport> {
        match signal {
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
            Signal::Traces => self.traces.as_ref(),
        }
    }

    pub fn any_export(&self) -> bool {
        Signal::ALL.iter().any(|s| self.signal(*s).is_some())
    }
}

fn signal_export(
    get: &dyn Fn(&str) -> Option<String>,
    signal: Signal,
) -> Result<Option<SignalExport>, ExportConfigError> {
    let part = signal.env_part();
    let pick = |name: &str| {
        let specific = format!("OTEL_EXPORTER_OTLP_{part}_{name}");
        let generic = format!("OTEL_EXPORTER_OTLP_{name}");
        match get(&specific) {
            Some(v) => Some((specific, v)),
            None => get(&generic).map(|v| (generic, v)),
        }
    };
    let protocol = match pick("PROTOCOL") {
        None => Protocol::Grpc,
        Some((var, v)) => match v.trim() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            _ => return Err(ExportConfigError::BadProtocol { var, value: v }),
        },
    };
    let specific_var = format!("OTEL_EXPORTER_OTLP_{part}_ENDPOINT");
    let endpoint = match get(&specific_var) {
        // A signal-specific endpoint is used as is (the specification's rule).
        Some(v) => checked_url(&specific_var, v.trim())?,
        None => match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            None => return Ok(None),
            Some(v) => {
                let base = checked_url("OTEL_EXPORTER_OTLP_ENDPOINT", v.trim())?;
                match protocol {
                    Protocol::Grpc => base,
                    Protocol::HttpProtobuf => {
                        format!("{}/{}", base.trim_end_matches('/'), signal.http_path())
                    }
                }
            }
        },
    };
    let headers = match pick("HEADERS") {
        Some((var, v)) => parse_key_values(&var, &v)?,
        None => Vec::new(),
    };
    let timeout = match pick("TIMEOUT") {
        Some((var, v)) => parse_millis(&var, &v)?,
        None => DEFAULT_OTLP_TIMEOUT,
    };
    Ok(Some(SignalExport {
        endpoint,
        protocol,
        headers,
        timeout,
    }))
}

fn checked_url(var: &str, value: &str) -> Result<String, ExportConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => {
            Ok(value.to_string())
        }
        _ => Err(ExportConfigError::BadEndpoint {
            var: var.to_string(),
            value: crate::config::redact_url_credentials(value),
        }),
    }
}

fn millis(
    get: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default_ms: u64,
) -> Result<Duration, ExportConfigError> {
    match get(var) {
        Some(v) => parse_millis(var, &v),
        None => Ok(Duration::from_millis(default_ms)),
    }
}

fn parse_millis(var: &str, value: &str) -> Result<Duration, ExportConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ExportConfigError::NotMillis {
            var: var.to_string(),
            value: value.to_string(),
        })
}

fn count(
    get: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: usize,
) -> Result<usize, ExportConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ExportConfigError::NotCount {
                var: var.to_string(),
                value: v,
            }),
        },
    }
}

fn batch_settings(
    get: &dyn Fn(&str) -> Option<String>,
    prefix: &str,
    default_delay_ms: u64,
) -> Result<BatchSettings, ExportConfigError> {
    let max_queue_size = count(get, &format!("{prefix}_MAX_QUEUE_SIZE"), 2048)?;
    let max_export_batch_size = count(get, &format!("{prefix}_MAX_EXPORT_BATCH_SIZE"), 512)?;
    Ok(BatchSettings {
        max_queue_size,
        // The specification: a batch larger than the queue is the queue.
        max_export_batch_size: max_export_batch_size.min(max_queue_size),
        scheduled_delay: millis(get, &format!("{prefix}_SCHEDULE_DELAY"), default_delay_ms)?,
        export_timeout: millis(get, &format!("{prefix}_EXPORT_TIMEOUT"), 30_000)?,
    })
}

/// `k=v,k2=v2` with percent-encoded values (W3C baggage style, as the
/// specification says for headers and resource attributes). Errors never repeat
/// a value: headers carry tokens.
fn parse_key_values(var: &str, text: &str) -> Result<Vec<(String, String)>, ExportConfigError> {
    let mut out = Vec::new();
    for (i, entry) in text.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let bad = || ExportConfigError::BadKeyValue {
            var: var.to_string(),
            position: i + 1,
        };
        let (k, v) = entry.split_once('=').ok_or_else(bad)?;
        let k = k.trim();
        if k.is_empty() {
            return Err(bad());
        }
        let v = percent_decode(v.trim()).ok_or_else(bad)?;
        out.push((k.to_string(), v));
    }
    Ok(out)
}

/// What export dropped, per signal; read by `drift_telemetry_dropped_total`.
#[derive(Debug, Default)]
pub struct DropCounters {
    metrics: AtomicU64,
    logs: AtomicU64,
    traces: AtomicU64,
}

impl DropCounters {
    pub fn add(&self, signal: Signal, n: u64) {
        self.slot(signal).fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, signal: Signal) -> u64 {
        self.slot(signal).load(Ordering::Relaxed)
    }

    fn slot(&self, signal: Signal) -> &AtomicU64 {
        match signal {
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
            Signal::Traces => &self.traces,
        }
    }
}

/// The tokio runtime the exporters live on, apart from the agent's, so that
/// neither's shutdown waits on the other. Dropped with `shutdown_background`, which
/// is allowed anywhere (a plain drop panics inside an async context).
#[derive(Debug)]
pub struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    pub fn new() -> std::io::Result<ExportRuntime> {
        // Multi-thread: tonic's channel needs a runtime that keeps running while
        // the batch threads block on an export.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-export")
            .enable_all()
            .build()
            .map(|rt| ExportRuntime(Some(rt)))
    }

    pub fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle())
    }

    /// Runs an export future to completion or until `deadline`, from a plain
    /// (non-runtime) thread.
    pub fn run_bounded<F>(&self, deadline: Duration, fut: F) -> OTelSdkResult
    where
        F: Future<Output = OTelSdkResult>,
    {
        let Some(handle) = self.handle() else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        handle.block_on(async {
            match tokio::time::timeout(deadline, fut).await {
                Ok(r) => r,
                Err(_) => Err(OTelSdkError::Timeout(deadline)),
            }
        })
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP {signal} exporter for {endpoint}: {reason}")]
pub struct ExporterBuildError {
    pub signal: &'static str,
    pub endpoint: String,
    pub reason: String,
}

fn build_error(
    signal: Signal,
    cfg: &SignalExport,
    e: impl std::fmt::Display,
) -> ExporterBuildError {
    ExporterBuildError {
        signal: signal.as_str(),
        endpoint: cfg.endpoint.clone(),
        reason: e.to_string(),
    }
}

// Retries would stretch one export past its deadline; the next batch or
// collection is the retry.
fn no_retry() -> RetryPolicy {
    RetryPolicy::default().with_max_retries(0)
}

fn tonic_metadata(headers: &[(String, String)]) -> MetadataMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(k.as_bytes()),
            http::header::HeaderValue::from_str(v),
        ) {
            map.append(k, v);
        }
    }
    MetadataMap::from_headers(map)
}

fn http_headers(headers: &[(String, String)]) -> HashMap<String, String> {
    headers.iter().cloned().collect()
}

/// The async reqwest client for http/protobuf, with the crate's rustls setup
/// (ring provider, system roots): reqwest's own default would panic for want of
/// a process-wide crypto provider.
fn http_client(signal: Signal, cfg: &SignalExport) -> Result<reqwest::Client, ExporterBuildError> {
    let tls = crate::runtime::tls::client_config(None, None, None)
        .map_err(|e| build_error(signal, cfg, e))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| build_error(signal, cfg, e))
}

/// Builds the exporters inside the export runtime (tonic spawns its connection
/// task on the current runtime when the channel is made).
pub fn build_metric_exporter(
    rt: &Arc<ExportRuntime>,
    cfg: &SignalExport,
    deadline: Duration,
    drops: Arc<DropCounters>,
) -> Result<BoundedMetricExporter, ExporterBuildError> {
    let _guard = rt.handle().map(|h| h.enter());
    let inner = match cfg.protocol {
        Protocol::Grpc => MetricExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_metadata(tonic_metadata(&cfg.headers))
            .with_retry_policy(no_retry())
            .with_temporality(Temporality::Cumulative)
            .build(),
        Protocol::HttpProtobuf => MetricExporter::builder()
            .with_http()
            .with_http_client(http_client(Signal::Metrics, cfg)?)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_headers(http_headers(&cfg.headers))
            .with_retry_policy(no_retry())
            .with_temporality(Temporality::Cumulative)
            .build(),
    }
    .map_err(|e| build_error(Signal::Metrics, cfg, e))?;
    Ok(BoundedMetricExporter {
        inner,
        rt: rt.clone(),
        deadline: deadline.min(cfg.timeout),
        drops,
    })
}

pub fn build_log_exporter(
    rt: &Arc<ExportRuntime>,
    cfg: &SignalExport,
) -> Result<LogExporter, ExporterBuildError> {
    let _guard = rt.handle().map(|h| h.enter());
    match cfg.protocol {
        Protocol::Grpc => LogExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_metadata(tonic_metadata(&cfg.headers))
            .with_retry_policy(no_retry())
            .build(),
        Protocol::HttpProtobuf => LogExporter::builder()
            .with_http()
            .with_http_client(http_client(Signal::Logs, cfg)?)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_headers(http_headers(&cfg.headers))
            .with_retry_policy(no_retry())
            .build(),
    }
    .map_err(|e| build_error(Signal::Logs, cfg, e))
}

pub fn build_span_exporter(
    rt: &Arc<ExportRuntime>,
    cfg: &SignalExport,
) -> Result<SpanExporter, ExporterBuildError> {
    let _guard = rt.handle().map(|h| h.enter());
    match cfg.protocol {
        Protocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_metadata(tonic_metadata(&cfg.headers))
            .with_retry_policy(no_retry())
            .build(),
        Protocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_http_client(http_client(Signal::Traces, cfg)?)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_headers(http_headers(&cfg.headers))
            .with_retry_policy(no_retry())
            .build(),
    }
    .map_err(|e| build_error(Signal::Traces, cfg, e))
}

/// The OTLP metric exporter run on the export runtime under a deadline; a failed
/// or late export counts its data points as dropped.
#[derive(Debug)]
pub struct BoundedMetricExporter {
    inner: MetricExporter,
    rt: Arc<ExportRuntime>,
    deadline: Duration,
    drops: Arc<DropCounters>,
}

impl PushMetricExporter for BoundedMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self
            .rt
            .run_bounded(self.deadline, self.inner.export(metrics));
        if result.is_err() {
            self.drops.add(Signal::Metrics, data_points(metrics));
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn data_points(rm: &ResourceMetrics) -> u64 {
    fn of<T>(d: &MetricData<T>) -> usize {
        match d {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    rm.scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => of(d),
            AggregatedMetrics::U64(d) => of(d),
            AggregatedMetrics::I64(d) => of(d),
        } as u64)
        .sum()
}

/// The resource every signal carries: `service.name`, `service.version`, then
/// `OTEL_RESOURCE_ATTRIBUTES`.
pub fn resource(cfg: &ExportConfig, version: &str) -> Resource {
    let mut attrs = vec![
        opentelemetry::KeyValue::new("service.name", cfg.service_name.clone()),
        opentelemetry::KeyValue::new("service.version", version.to_string()),
    ];
    for (k, v) in &cfg.resource_attributes {
        attrs.push(opentelemetry::KeyValue::new(k.clone(), v.clone()));
    }
    Resource::builder_empty().with_attributes(attrs).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<ExportConfig, ExportConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ExportConfig::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn config_errors_never_repeat_credentials_or_header_values() {
        let e = cfg(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "ftp://user:s3cret@collector:4317",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && e.contains("collector:4317"),
            "{e}"
        );
        assert!(!e.contains("s3cret") && !e.contains("user"), "{e}");
        let e = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-tenant=a,Authorization Bearer s3cret",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("OTEL_EXPORTER_OTLP_HEADERS: entry 2"), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("Bearer"), "{e}");
    }

    #[test]
    fn no_endpoint_means_no_export() {
        let c = cfg(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap();
        assert!(!c.any_export());
        assert_eq!(c.service_name, DEFAULT_SERVICE_NAME);
    }

    #[test]
    fn grpc_is_the_default_protocol_and_generic_endpoint_is_used_as_is() {
        let c = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]).unwrap();
        for s in Signal::ALL {
            let e = c.signal(s).unwrap();
            assert_eq!(e.protocol, Protocol::Grpc);
            assert_eq!(e.endpoint, "http://127.0.0.1:4317");
            assert_eq!(e.timeout, DEFAULT_OTLP_TIMEOUT);
        }
    }

    #[test]
    fn http_generic_endpoint_gets_the_signal_path_and_specific_one_is_kept() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:9000/custom",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.metrics.as_ref().unwrap().endpoint,
            "http://collector:4318/v1/metrics"
        );
        assert_eq!(
            c.traces.as_ref().unwrap().endpoint,
            "http://collector:4318/v1/traces"
        );
        assert_eq!(c.logs.as_ref().unwrap().endpoint, "http://logs:9000/custom");
    }

    #[test]
    fn signal_specific_settings_win_over_generic_ones() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-token=s%20t,b=2"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        let m = c.metrics.unwrap();
        assert_eq!(m.protocol, Protocol::HttpProtobuf);
        assert_eq!(m.endpoint, "http://a:4317/v1/metrics");
        assert_eq!(
            m.headers,
            vec![("x-token".into(), "s t".into()), ("b".into(), "2".into())]
        );
        assert_eq!(m.timeout, Duration::from_millis(2000));
        let t = c.traces.unwrap();
        assert_eq!(t.timeout, Duration::from_millis(700));
        assert_eq!(t.headers, vec![("a".into(), "1".into())]);
        assert_eq!(t.protocol, Protocol::Grpc);
    }

    #[test]
    fn exporter_none_and_sdk_disabled_turn_export_off() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ])
        .unwrap();
        assert!(c.logs.is_none() && c.metrics.is_some() && c.traces.is_some());
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .unwrap();
        assert!(!c.any_export());
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let c = cfg(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=x,deployment.environment=prod%2Ceu",
        )])
        .unwrap();
        assert_eq!(c.service_name, "x");
        assert_eq!(
            c.resource_attributes,
            vec![("deployment.environment".into(), "prod,eu".into())]
        );
        let c = cfg(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x"),
            ("OTEL_SERVICE_NAME", "y"),
        ])
        .unwrap();
        assert_eq!(c.service_name, "y");
    }

    #[test]
    fn batch_and_interval_settings() {
        let c = cfg(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
        ])
        .unwrap();
        assert_eq!(c.spans.max_queue_size, 10);
        assert_eq!(c.spans.max_export_batch_size, 10);
        assert_eq!(c.log_records.scheduled_delay, Duration::from_millis(200));
        assert_eq!(c.spans.scheduled_delay, Duration::from_millis(5000));
        assert_eq!(c.metric_export_interval, Duration::from_millis(1500));
    }

    #[test]
    fn bad_values_are_one_sentence_naming_the_variable() {
        let e = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5s"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "OTEL_EXPORTER_OTLP_TIMEOUT = `5s` is not a whole number of milliseconds"
        );
        let e = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]).unwrap_err();
        assert!(e.to_string().starts_with("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let e = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap_err();
        assert!(matches!(e, ExportConfigError::BadProtocol { .. }));
        // A header without `=` is named by its key, never by a value.
        let e = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "secret-token"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("OTEL_EXPORTER_OTLP_HEADERS"));
        let e = cfg(&[("OTEL_BLRP_MAX_QUEUE_SIZE", "0")]).unwrap_err();
        assert!(matches!(e, ExportConfigError::NotCount { .. }));
    }

    #[test]
    fn unknown_exporter_is_a_warning_not_an_error() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ])
        .unwrap();
        assert!(c.traces.is_some());
        assert_eq!(c.warnings.len(), 1);
    }
}
