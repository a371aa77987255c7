//! Every metric of §11, defined once: name, kind, unit, help and labels, on ONE
//! meter provider read twice — by a Prometheus pull reader for `GET /metrics` and,
//! when export is on, by an OTLP periodic reader. Must not carry a field path or a
//! value as a label (series stay O(bots)) and must not decide statuses: callers
//! hand in what the check and the latch found.
//!
//! Naming: instruments carry no unit suffix and no `_total`; the unit does that
//! (`drift_since_timestamp` + `s` → `drift_since_timestamp_seconds`), so the
//! Prometheus reader here and a standard OTLP→Prometheus translation (Prometheus,
//! vmagent `-opentelemetry.usePrometheusNaming`) both give the contract's names.
//! Count units are annotations (`{report}`), which translators drop; gauges that
//! are 0/1 have no unit (`1` would add `_ratio`).
//!
//! Per-bot series are observable instruments over a shared fleet table that each
//! check replaces: a bot that leaves the registry is simply not observed at the
//! next collection, so its series disappear (synchronous instruments can never
//! forget a label set). The one exception is `drift_resolution_minutes`, a
//! histogram (OTel has no observable histogram): a removed bot's histogram stays
//! until the process restarts.
//!
//! `/metrics` carries no `target_info` and no `otel_scope_*` labels: resource
//! attributes come from the environment and would make the page vary by
//! deployment, while Prometheus adds `job`/`instance` itself; identity for joins is
//! `drift_detector_info`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    Counter, Gauge, Histogram, Meter, MeterProvider as _, ObservableCounter, ObservableGauge,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{Instrument, PeriodicReader, SdkMeterProvider, Stream};

use super::AgentInfo;
use super::export::{BoundedMetricExporter, DropCounters, Signal};
use crate::report::{ConfigDriftReport, Status};

/// Per-instrument series limit: 10,000 bots × 2 statuses of `drift_reports_total`
/// plus headroom (the SDK's default of 2,000 would fold the rest into an overflow series).
pub const CARDINALITY_LIMIT: usize = 32_768;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric as the contract names it.
#[derive(Debug)]
pub struct MetricDef {
    /// The OTel instrument name (what OTLP carries).
    pub name: &'static str,
    /// What `/metrics` and an OTLP→Prometheus translation show.
    pub prometheus: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

macro_rules! metric {
    ($id:ident, $name:literal, $prom:literal, $kind:ident, $unit:literal, $labels:expr, $help:literal) => {
        pub const $id: MetricDef = MetricDef {
            name: $name,
            prometheus: $prom,
            kind: Kind::$kind,
            unit: $unit,
            help: $help,
            labels: $labels,
        };
    };
}

const BOT: &[&str] = &["bot_id"];
const NONE: &[&str] = &[];

metric!(
    DRIFT_REPORTS,
    "drift_reports",
    "drift_reports_total",
    Counter,
    "{report}",
    &["bot_id", "status"],
    "Reports whose status is DRIFT or UNKNOWN."
);
metric!(
    BOTS_IN_DRIFT,
    "bots_in_drift",
    "bots_in_drift",
    Gauge,
    "",
    BOT,
    "1 while the bot is in a drift episode, else 0."
);
metric!(
    BOTS_IN_UNKNOWN,
    "bots_in_unknown",
    "bots_in_unknown",
    Gauge,
    "",
    BOT,
    "1 while the bot's last status is UNKNOWN."
);
metric!(
    DRIFT_FIELDS,
    "drift_fields",
    "drift_fields",
    Gauge,
    "{field}",
    BOT,
    "Drifted fields now (the latched count while UNKNOWN)."
);
metric!(
    DRIFT_SINCE,
    "drift_since_timestamp",
    "drift_since_timestamp_seconds",
    Gauge,
    "s",
    BOT,
    "Start of the current drift episode in Unix seconds, 0 if none."
);
metric!(
    DRIFT_ACKNOWLEDGED,
    "drift_acknowledged",
    "drift_acknowledged",
    Gauge,
    "",
    BOT,
    "1 while a two-person ack is active."
);
metric!(
    DRIFT_RESOLUTION,
    "drift_resolution",
    "drift_resolution_minutes",
    Histogram,
    "min",
    BOT,
    "Drift episode length at resolution."
);
metric!(
    CHECK_DURATION,
    "drift_check_duration",
    "drift_check_duration_seconds",
    Histogram,
    "s",
    NONE,
    "Duration of one whole check."
);
metric!(
    CHECK_INTERVAL,
    "drift_check_interval",
    "drift_check_interval_seconds",
    Gauge,
    "s",
    NONE,
    "The configured check interval."
);
metric!(
    LAST_SUCCESS,
    "drift_last_success_timestamp",
    "drift_last_success_timestamp_seconds",
    Gauge,
    "s",
    NONE,
    "End of the last successful check in Unix seconds, 0 before the first."
);
metric!(
    BUDGET_EXCEEDED,
    "drift_check_budget_exceeded",
    "drift_check_budget_exceeded_total",
    Counter,
    "{check}",
    NONE,
    "Checks that ran out of their latency budget."
);
metric!(
    DETECTOR_INFO,
    "drift_detector_info",
    "drift_detector_info",
    Gauge,
    "",
    &["mode", "branch", "version", "shard"],
    "Always 1; carries the detector's mode, branch, version and shard for joins."
);
metric!(
    DETECTOR_PAUSED,
    "drift_detector_paused",
    "drift_detector_paused",
    Gauge,
    "",
    NONE,
    "1 while the detector is paused."
);
metric!(
    REGISTRY_BOTS,
    "drift_registry_bots",
    "drift_registry_bots",
    Gauge,
    "{bot}",
    NONE,
    "Bots in this agent's registry (its shard)."
);
metric!(
    RELOAD_FAILURES,
    "drift_config_reload_failures",
    "drift_config_reload_failures_total",
    Counter,
    "{failure}",
    NONE,
    "Config or registry re-reads refused."
);
metric!(
    LAST_RELOAD_OK,
    "drift_config_last_reload_successful",
    "drift_config_last_reload_successful",
    Gauge,
    "",
    NONE,
    "1 if the last config re-read was accepted."
);
metric!(
    REPO_FETCH_ERRORS,
    "drift_repo_fetch_errors",
    "drift_repo_fetch_errors_total",
    Counter,
    "{error}",
    NONE,
    "Failed fetches of the config repo."
);
metric!(
    REPO_LAST_FETCH,
    "drift_repo_last_fetch_timestamp",
    "drift_repo_last_fetch_timestamp_seconds",
    Gauge,
    "s",
    NONE,
    "Last successful fetch of the pinned branch in Unix seconds, 0 before the first."
);
metric!(
    BOT_FETCH_DURATION,
    "drift_bot_fetch_duration",
    "drift_bot_fetch_duration_seconds",
    Histogram,
    "s",
    NONE,
    "One bot's running-config fetch."
);
metric!(
    STATE_WRITE_ERRORS,
    "drift_state_write_errors",
    "drift_state_write_errors_total",
    Counter,
    "{error}",
    NONE,
    "Failed state flushes."
);
metric!(
    TELEMETRY_DROPPED,
    "drift_telemetry_dropped",
    "drift_telemetry_dropped_total",
    Counter,
    "{item}",
    &["signal"],
    "Telemetry items dropped (full queue or failed export), by signal."
);

/// Every metric of §11, in the contract's order.
pub const ALL: &[&MetricDef] = &[
    &DRIFT_REPORTS,
    &BOTS_IN_DRIFT,
    &BOTS_IN_UNKNOWN,
    &DRIFT_FIELDS,
    &DRIFT_SINCE,
    &DRIFT_ACKNOWLEDGED,
    &DRIFT_RESOLUTION,
    &CHECK_DURATION,
    &CHECK_INTERVAL,
    &LAST_SUCCESS,
    &BUDGET_EXCEEDED,
    &DETECTOR_INFO,
    &DETECTOR_PAUSED,
    &REGISTRY_BOTS,
    &RELOAD_FAILURES,
    &LAST_RELOAD_OK,
    &REPO_FETCH_ERRORS,
    &REPO_LAST_FETCH,
    &BOT_FETCH_DURATION,
    &STATE_WRITE_ERRORS,
    &TELEMETRY_DROPPED,
];

/// Episode lengths in minutes (the contract's buckets).
pub const RESOLUTION_BUCKETS_MIN: &[f64] = &[1.0, 5.0, 15.0, 60.0, 240.0, 1440.0];
/// A whole check: the default budget is 5 s, so resolve around it.
pub const CHECK_DURATION_BUCKETS_S: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// One bot's fetch: loopback to a slow bot near the budget.
pub const BOT_FETCH_BUCKETS_S: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One registry bot's per-bot series after a check.
#[derive(Clone, Debug, PartialEq)]
pub struct BotSeries {
    pub bot_id: String,
    pub status: Status,
    /// In a drift episode (also while UNKNOWN with a latched drift).
    pub in_episode: bool,
    /// Drifted fields now; the latched count while UNKNOWN.
    pub drift_fields: u64,
    pub episode_since_ms: Option<i64>,
    pub acknowledged: bool,
}

impl BotSeries {
    /// From a bot's report and the latch's view of its episode.
    pub fn from_report(
        report: &ConfigDriftReport,
        episode_since_ms: Option<i64>,
        acknowledged: bool,
    ) -> BotSeries {
        BotSeries {
            bot_id: report.bot_slug.clone().unwrap_or_default(),
            status: report.status,
            in_episode: episode_since_ms.is_some(),
            drift_fields: report.drifts.len() as u64,
            episode_since_ms,
            acknowledged,
        }
    }
}

/// How the pinned branch's fetch went in a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoFetch {
    Fetched {
        at_ms: i64,
    },
    Failed,
    /// No fetch this check (e.g. within the fetch interval).
    Skipped,
}

/// What one check contributes to the metrics.
#[derive(Clone, Debug)]
pub struct CheckSummary<'a> {
    /// Every bot of this agent's registry (its shard), evaluated or not.
    pub bots: &'a [BotSeries],
    pub duration: Duration,
    pub ended_at_ms: i64,
    /// §8, including the state flush.
    pub successful: bool,
    pub budget_exceeded: bool,
    pub repo: RepoFetch,
    pub fetch_durations: &'a [Duration],
}

#[derive(Clone, Debug, Default)]
struct BotEntry {
    series: Option<BotSeries>,
    drift_reports: u64,
    unknown_reports: u64,
}

type Fleet = Arc<RwLock<BTreeMap<String, BotEntry>>>;

fn read(fleet: &Fleet) -> RwLockReadGuard<'_, BTreeMap<String, BotEntry>> {
    fleet.read().unwrap_or_else(|e| e.into_inner())
}

fn write(fleet: &Fleet) -> RwLockWriteGuard<'_, BTreeMap<String, BotEntry>> {
    fleet.write().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot set up the Prometheus reader for /metrics: {0}")]
    Prometheus(String),
}

/// The instruments. Cheap to share behind the `Telemetry`.
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    fleet: Fleet,
    resolution: Histogram<f64>,
    check_duration: Histogram<f64>,
    bot_fetch_duration: Histogram<f64>,
    budget_exceeded: Counter<u64>,
    reload_failures: Counter<u64>,
    repo_fetch_errors: Counter<u64>,
    state_write_errors: Counter<u64>,
    last_success: Gauge<f64>,
    repo_last_fetch: Gauge<f64>,
    paused: Gauge<u64>,
    registry_bots: Gauge<u64>,
    last_reload_ok: Gauge<u64>,
    /// Observed rather than recorded: a reload that changes the mode or branch
    /// must replace the info series, not leave the old label set beside it.
    agent: Arc<RwLock<AgentInfo>>,
    _observed: Observed,
}

// Kept so the callbacks' instruments live as long as the provider.
#[allow(dead_code)]
struct Observed {
    reports: ObservableCounter<u64>,
    in_drift: ObservableGauge<u64>,
    in_unknown: ObservableGauge<u64>,
    fields: ObservableGauge<u64>,
    since: ObservableGauge<f64>,
    acknowledged: ObservableGauge<u64>,
    dropped: ObservableCounter<u64>,
    interval: ObservableGauge<f64>,
    info: ObservableGauge<u64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn bot_id(slug: &str) -> KeyValue {
    KeyValue::new("bot_id", slug.to_string())
}

fn per_bot_u64(
    meter: &Meter,
    fleet: &Fleet,
    def: &'static MetricDef,
    value: impl Fn(&BotSeries) -> u64 + Send + Sync + 'static,
) -> ObservableGauge<u64> {
    let fleet = fleet.clone();
    meter
        .u64_observable_gauge(def.name)
        .with_unit(def.unit)
        .with_description(def.help)
        .with_callback(move |obs| {
            for (slug, entry) in read(&fleet).iter() {
                if let Some(series) = &entry.series {
                    obs.observe(value(series), &[bot_id(slug)]);
                }
            }
        })
        .build()
}

fn per_bot_f64(
    meter: &Meter,
    fleet: &Fleet,
    def: &'static MetricDef,
    value: impl Fn(&BotSeries) -> f64 + Send + Sync + 'static,
) -> ObservableGauge<f64> {
    let fleet = fleet.clone();
    meter
        .f64_observable_gauge(def.name)
        .with_unit(def.unit)
        .with_description(def.help)
        .with_callback(move |obs| {
            for (slug, entry) in read(&fleet).iter() {
                if let Some(series) = &entry.series {
                    obs.observe(value(series), &[bot_id(slug)]);
                }
            }
        })
        .build()
}

fn counter(meter: &Meter, def: &'static MetricDef) -> Counter<u64> {
    let c = meter
        .u64_counter(def.name)
        .with_unit(def.unit)
        .with_description(def.help)
        .build();
    // Process counters start at 0 (§11), so `increase()` works from the first scrape.
    c.add(0, &[]);
    c
}

fn histogram(meter: &Meter, def: &'static MetricDef, buckets: &[f64]) -> Histogram<f64> {
    meter
        .f64_histogram(def.name)
        .with_unit(def.unit)
        .with_description(def.help)
        .with_boundaries(buckets.to_vec())
        .build()
}

fn f64_gauge(meter: &Meter, def: &'static MetricDef) -> Gauge<f64> {
    meter
        .f64_gauge(def.name)
        .with_unit(def.unit)
        .with_description(def.help)
        .build()
}

fn u64_gauge(meter: &Meter, def: &'static MetricDef) -> Gauge<u64> {
    meter
        .u64_gauge(def.name)
        .with_unit(def.unit)
        .with_description(def.help)
        .build()
}

fn read_agent(agent: &RwLock<AgentInfo>) -> AgentInfo {
    agent.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn info_labels(info: &AgentInfo) -> [KeyValue; 4] {
    [
        KeyValue::new("mode", info.mode.as_str()),
        KeyValue::new("branch", info.branch.clone()),
        KeyValue::new("version", info.version.clone()),
        KeyValue::new(
            "shard",
            format!("{}/{}", info.shard.index, info.shard.count),
        ),
    ]
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Metrics {
    /// Builds the provider: the Prometheus reader always, the OTLP periodic
    /// reader when `otlp` is given.
    pub fn new(
        info: &AgentInfo,
        resource: Resource,
        otlp: Option<(BoundedMetricExporter, Duration)>,
        drops: Arc<DropCounters>,
    ) -> Result<Metrics, MetricsError> {
        let registry = prometheus::Registry::new();
        let prometheus_reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| MetricsError::Prometheus(e.to_string()))?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(prometheus_reader)
            .with_view(|_: &Instrument| {
                Stream::builder()
                    .with_cardinality_limit(CARDINALITY_LIMIT)
                    .build()
                    .ok()
            });
        if let Some((exporter, interval)) = otlp {
            builder = builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(interval)
                    .build(),
            );
        }
        let provider = builder.build();
        let meter = provider.meter("config-drift-detector");
        let fleet: Fleet = Arc::default();
        let agent = Arc::new(RwLock::new(info.clone()));

        let reports = {
            let fleet = fleet.clone();
            meter
                .u64_observable_counter(DRIFT_REPORTS.name)
                .with_unit(DRIFT_REPORTS.unit)
                .with_description(DRIFT_REPORTS.help)
                .with_callback(move |obs| {
                    for (slug, e) in read(&fleet).iter() {
                        obs.observe(
                            e.drift_reports,
                            &[
                                bot_id(slug),
                                KeyValue::new("status", Status::Drift.as_str()),
                            ],
                        );
                        obs.observe(
                            e.unknown_reports,
                            &[
                                bot_id(slug),
                                KeyValue::new("status", Status::Unknown.as_str()),
                            ],
                        );
                    }
                })
                .build()
        };
        let dropped = {
            let drops = drops.clone();
            meter
                .u64_observable_counter(TELEMETRY_DROPPED.name)
                .with_unit(TELEMETRY_DROPPED.unit)
                .with_description(TELEMETRY_DROPPED.help)
                .with_callback(move |obs| {
                    for s in Signal::ALL {
                        obs.observe(drops.get(s), &[KeyValue::new("signal", s.as_str())]);
                    }
                })
                .build()
        };
        let observed = Observed {
            reports,
            in_drift: per_bot_u64(&meter, &fleet, &BOTS_IN_DRIFT, |b| u64::from(b.in_episode)),
            in_unknown: per_bot_u64(&meter, &fleet, &BOTS_IN_UNKNOWN, |b| {
                u64::from(b.status == Status::Unknown)
            }),
            fields: per_bot_u64(&meter, &fleet, &DRIFT_FIELDS, |b| b.drift_fields),
            since: per_bot_f64(&meter, &fleet, &DRIFT_SINCE, |b| {
                b.episode_since_ms.map(secs).unwrap_or(0.0)
            }),
            acknowledged: per_bot_u64(&meter, &fleet, &DRIFT_ACKNOWLEDGED, |b| {
                u64::from(b.acknowledged)
            }),
            dropped,
            interval: meter
                .f64_observable_gauge(CHECK_INTERVAL.name)
                .with_unit(CHECK_INTERVAL.unit)
                .with_description(CHECK_INTERVAL.help)
                .with_callback({
                    let agent = Arc::clone(&agent);
                    move |obs| obs.observe(read_agent(&agent).check_interval.as_secs_f64(), &[])
                })
                .build(),
            info: meter
                .u64_observable_gauge(DETECTOR_INFO.name)
                .with_unit(DETECTOR_INFO.unit)
                .with_description(DETECTOR_INFO.help)
                .with_callback({
                    let agent = Arc::clone(&agent);
                    move |obs| obs.observe(1, &info_labels(&read_agent(&agent)))
                })
                .build(),
        };

        let m = Metrics {
            resolution: histogram(&meter, &DRIFT_RESOLUTION, RESOLUTION_BUCKETS_MIN),
            check_duration: histogram(&meter, &CHECK_DURATION, CHECK_DURATION_BUCKETS_S),
            bot_fetch_duration: histogram(&meter, &BOT_FETCH_DURATION, BOT_FETCH_BUCKETS_S),
            budget_exceeded: counter(&meter, &BUDGET_EXCEEDED),
            reload_failures: counter(&meter, &RELOAD_FAILURES),
            repo_fetch_errors: counter(&meter, &REPO_FETCH_ERRORS),
            state_write_errors: counter(&meter, &STATE_WRITE_ERRORS),
            last_success: f64_gauge(&meter, &LAST_SUCCESS),
            repo_last_fetch: f64_gauge(&meter, &REPO_LAST_FETCH),
            paused: u64_gauge(&meter, &DETECTOR_PAUSED),
            registry_bots: u64_gauge(&meter, &REGISTRY_BOTS),
            last_reload_ok: u64_gauge(&meter, &LAST_RELOAD_OK),
            provider,
            registry,
            fleet,
            agent,
            _observed: observed,
        };
        // Before the first check: nothing succeeded or was fetched yet (0 makes
        // "too long since" alerts fire for a detector that never succeeds), not
        // paused, and the startup config was accepted.
        m.last_success.record(0.0, &[]);
        m.repo_last_fetch.record(0.0, &[]);
        m.paused.record(0, &[]);
        m.last_reload_ok.record(1, &[]);
        Ok(m)
    }

    /// Publishes one check: replaces the per-bot table (bots not in `bots` lose
    /// their series), counts DRIFT/UNKNOWN reports, and records the check-level series.
    pub fn publish_check(&self, summary: &CheckSummary<'_>) {
        {
            let mut fleet = write(&self.fleet);
            let mut next = BTreeMap::new();
            for b in summary.bots {
                let mut entry = fleet.remove(&b.bot_id).unwrap_or_default();
                match b.status {
                    Status::Drift => entry.drift_reports += 1,
                    Status::Unknown => entry.unknown_reports += 1,
                    Status::InSync => {}
                }
                entry.series = Some(b.clone());
                next.insert(b.bot_id.clone(), entry);
            }
            *fleet = next;
        }
        self.registry_bots.record(summary.bots.len() as u64, &[]);
        self.check_duration
            .record(summary.duration.as_secs_f64(), &[]);
        for d in summary.fetch_durations {
            self.bot_fetch_duration.record(d.as_secs_f64(), &[]);
        }
        if summary.budget_exceeded {
            self.budget_exceeded.add(1, &[]);
        }
        match summary.repo {
            RepoFetch::Fetched { at_ms } => self.repo_last_fetch.record(secs(at_ms), &[]),
            RepoFetch::Failed => self.repo_fetch_errors.add(1, &[]),
            RepoFetch::Skipped => {}
        }
        if summary.successful {
            self.last_success.record(secs(summary.ended_at_ms), &[]);
        }
    }

    /// A reload changed the mode, branch or interval: the info and interval
    /// series follow at the next collection.
    pub fn set_agent_info(&self, info: AgentInfo) {
        *self.agent.write().unwrap_or_else(|e| e.into_inner()) = info;
    }

    /// Mode `off` (§13): no per-bot series at all.
    pub fn forget_bots(&self) {
        write(&self.fleet).clear();
        self.registry_bots.record(0, &[]);
    }

    /// An ack became active or ended between checks.
    pub fn set_acknowledged(&self, bot: &str, active: bool) {
        if let Some(series) = write(&self.fleet)
            .get_mut(bot)
            .and_then(|e| e.series.as_mut())
        {
            series.acknowledged = active;
        }
    }

    /// An episode ended after `minutes`.
    pub fn record_resolution(&self, bot: &str, minutes: f64) {
        self.resolution.record(minutes.max(0.0), &[bot_id(bot)]);
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.record(u64::from(paused), &[]);
    }

    /// A config or registry re-read was accepted (`accepted`) or refused (which
    /// counts a reload failure); `all_accepted` is what the gauge shows: whether
    /// the latest re-read of the config file *and* of the registry were accepted,
    /// so a refused config stays visible while registry re-reads succeed.
    pub fn config_reloaded(&self, accepted: bool, all_accepted: bool) {
        self.last_reload_ok.record(u64::from(all_accepted), &[]);
        if !accepted {
            self.reload_failures.add(1, &[]);
        }
    }

    pub fn inc_state_write_errors(&self) {
        self.state_write_errors.add(1, &[]);
    }

    /// `GET /metrics`: the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        use prometheus::Encoder as _;
        let mut out = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            super::events::MetricsUnrendered { error: &e }.emit();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The content type to serve `render_prometheus` with.
    pub fn prometheus_content_type() -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }

    pub(crate) fn provider(&self) -> &SdkMeterProvider {
        &self.provider
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OTLP→Prometheus naming rules (Prometheus' translator, vmagent with
    /// `-opentelemetry.usePrometheusNaming`): a unit suffix and `_total` only when
    /// missing, `{…}` units dropped.
    fn translated(def: &MetricDef) -> String {
        let mut name = def.name.replace(['.', '-'], "_");
        let suffix = match def.unit {
            "s" => Some("seconds"),
            "min" => Some("minutes"),
            "1" => Some("ratio"),
            u if u.starts_with('{') || u.is_empty() => None,
            other => panic!("unit {other} not mapped"),
        };
        if let Some(s) = suffix
            && !name.ends_with(s)
        {
            name = format!("{name}_{s}");
        }
        if def.kind == Kind::Counter && !name.ends_with("_total") {
            name.push_str("_total");
        }
        name
    }

    #[test]
    fn every_instrument_translates_to_its_contract_name() {
        for def in ALL {
            assert_eq!(translated(def), def.prometheus, "{}", def.name);
            assert!(!def.labels.iter().any(|l| *l == "field" || *l == "value"));
        }
        assert_eq!(ALL.len(), 21);
    }
}
