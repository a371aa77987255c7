//! Every log record of §11, one struct per event with an `emit`: the four
//! `GOV_CONFIG_DRIFT_*` records, the per-check record (carrying the chain head),
//! `mass_drift`, and the per-bot developer line. The GOV records go through the
//! OTel Logs API deliberately — attributes plus the report as a structured body,
//! which the tracing bridge cannot carry — and, for stderr (journald, a log
//! shipper), as a `tracing` event under the `config_drift::gov` target (which the
//! bridge skips, so OTel never sees them twice) with the same fields and the
//! report as JSON under `report`. Both come from one field list (`gov_record!`),
//! so a fact cannot reach one sink and miss the other. Must not decide when an
//! event happens: the latch and the scheduler do.

use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::{Key, StringValue};
use opentelemetry_sdk::logs::SdkLogger;

use super::Telemetry;
use crate::config::Mode;
use crate::report::{ConfigDriftReport, ReasonCode, Status};

/// The `tracing` target of the deliberately emitted records.
pub const GOV_TARGET: &str = "config_drift::gov";

pub const DETECTED_MESSAGE: &str = "The running configuration of one of the system's safeties differs from the version on file. Operators must reconcile.";
pub const UNKNOWN_MESSAGE: &str = "Whether the running configuration of one of the system's safeties matches the version on file cannot be determined.";
pub const RESOLVED_MESSAGE: &str =
    "The running configuration of one of the system's safeties matches the version on file again.";
pub const ACK_MESSAGE: &str = "A drift was acknowledged by two people until the next check.";
/// RESOLVED with `resolved_by: "cleared"`: the latch was cleared by hand, which
/// says nothing about whether the configurations match again.
pub const CLEARED_MESSAGE: &str = "A drift episode of one of the system's safeties was cleared by an administrator; the running configuration may still differ from the version on file.";

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

    fn emit(
        &self,
        event_name: &'static str,
        severity: Severity,
        body: Option<AnyValue>,
        attributes: Vec<(&'static str, AnyValue)>,
    ) {
        let mut record = self.logger.create_log_record();
        let now = SystemTime::now();
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

/// `P3` normally; `P2` for DETECTED in enforced mode past one interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityClass {
    P2,
    P3,
}

impl SeverityClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityClass::P2 => "P2",
            SeverityClass::P3 => "P3",
        }
    }

    /// The class of a DETECTED record: P2 once an enforced-mode episode has been
    /// open longer than one check interval.
    pub fn for_detected(mode: Mode, episode_since_ms: i64, now_ms: i64, interval_ms: i64) -> Self {
        if mode == Mode::Enforced && now_ms.saturating_sub(episode_since_ms) > interval_ms {
            SeverityClass::P2
        } else {
            SeverityClass::P3
        }
    }
}

pub use crate::latch::ResolvedBy;
/// The commit that changed the committed side, when it did (stored with the
/// resolution, so a re-emitted RESOLVED names the same commit).
pub use crate::latch::episode::CommitRef as ResolvingCommit;

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

fn s(text: impl Into<StringValue>) -> AnyValue {
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

/// Emits one GOV record to both sinks from one field list: the OTel record
/// (the fields as attributes, the report as its body) and the `tracing` event
/// (the same fields, the report as JSON under `report`, `message` the user
/// message). Each value is evaluated once.
macro_rules! gov_record {
    ($t:expr, $level:ident, $code:expr, $report:expr, $message:expr,
     { $($name:ident = $value:expr),* $(,)? }) => {{
        let code: ReasonCode = $code;
        let report: &ConfigDriftReport = $report;
        let message: &'static str = $message;
        let reason_code = code.as_str();
        let user_message = message;
        $(let $name = $value;)*
        let mut attributes: Vec<(&'static str, AnyValue)> = Vec::new();
        for (key, value) in [
            ("reason_code", Attribute::attribute(&reason_code)),
            ("user_message", Attribute::attribute(&user_message)),
            $((stringify!($name), Attribute::attribute(&$name)),)*
        ] {
            if let Some(value) = value {
                attributes.push((key, value));
            }
        }
        $t.logs().emit(
            reason_code,
            severity_of(tracing::Level::$level),
            Some(report_body(report)),
            attributes,
        );
        tracing::event!(
            target: GOV_TARGET,
            tracing::Level::$level,
            reason_code,
            user_message,
            $($name,)*
            report = %ReportJson(report),
            "{message}"
        );
    }};
}

fn severity_of(level: tracing::Level) -> Severity {
    match level {
        tracing::Level::ERROR => Severity::Error,
        tracing::Level::WARN => Severity::Warn,
        tracing::Level::INFO => Severity::Info,
        tracing::Level::DEBUG => Severity::Debug,
        tracing::Level::TRACE => Severity::Trace,
    }
}

fn slug(report: &ConfigDriftReport) -> &str {
    report.bot_slug.as_deref().unwrap_or("")
}

/// `GOV_CONFIG_DRIFT_DETECTED`: every check while a bot is in drift.
#[derive(Debug)]
pub struct DriftDetected<'a> {
    pub report: &'a ConfigDriftReport,
    pub severity_class: SeverityClass,
}

impl DriftDetected<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        gov_record!(t, WARN, ReasonCode::GovConfigDriftDetected, r, DETECTED_MESSAGE, {
            bot_slug = slug(r),
            severity_class = self.severity_class.as_str(),
            drifts_count = r.drifts.len() as i64,
            fields_drifted = field_list(r),
            episode_id = r.episode_id.as_deref(),
        });
    }
}

/// `GOV_CONFIG_DRIFT_UNKNOWN`: every check while a bot is UNKNOWN.
#[derive(Debug)]
pub struct DriftUnknown<'a> {
    pub report: &'a ConfigDriftReport,
}

impl DriftUnknown<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        gov_record!(t, WARN, ReasonCode::GovConfigDriftUnknown, r, UNKNOWN_MESSAGE, {
            bot_slug = slug(r),
            severity_class = SeverityClass::P3.as_str(),
            unknown_reason = r.unknown_reason.map(|u| u.as_str()),
            detail = r.detail.as_deref(),
            drifts_count = r.drifts.len() as i64,
            episode_id = r.episode_id.as_deref(),
        });
    }
}

/// `GOV_CONFIG_DRIFT_RESOLVED`: once per episode. Also records the episode's
/// length in `drift_resolution_minutes`, so the two never disagree.
#[derive(Debug)]
pub struct DriftResolved<'a> {
    /// The bot's report of the check that resolved it (its last one when cleared).
    pub report: &'a ConfigDriftReport,
    pub episode_id: &'a str,
    pub resolution_minutes: f64,
    pub resolved_by: ResolvedBy,
    pub commit: Option<&'a ResolvingCommit>,
}

impl DriftResolved<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        let message = if self.resolved_by == ResolvedBy::Cleared {
            CLEARED_MESSAGE
        } else {
            RESOLVED_MESSAGE
        };
        gov_record!(t, INFO, ReasonCode::GovConfigDriftResolved, r, message, {
            bot_slug = slug(r),
            severity_class = SeverityClass::P3.as_str(),
            episode_id = self.episode_id,
            resolution_minutes = self.resolution_minutes,
            resolved_by = self.resolved_by.as_str(),
            commit_sha = self.commit.map(|c| c.sha.as_str()),
            commit_author = self.commit.map(|c| c.author.as_str()),
            commit_summary = self.commit.map(|c| c.summary.as_str()),
        });
        t.metrics()
            .record_resolution(slug(r), self.resolution_minutes);
    }
}

/// `GOV_CONFIG_DRIFT_ACK`: an ack was approved.
#[derive(Debug)]
pub struct DriftAcknowledged<'a> {
    pub report: &'a ConfigDriftReport,
    pub ack_id: &'a str,
    pub requested_by: &'a str,
    pub approved_by: &'a str,
    pub reason: &'a str,
    /// The latest the ack can end: approval + one interval (§9).
    pub expires_at_ms: i64,
}

impl DriftAcknowledged<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let r = self.report;
        gov_record!(t, INFO, ReasonCode::GovConfigDriftAck, r, ACK_MESSAGE, {
            bot_slug = slug(r),
            severity_class = SeverityClass::P3.as_str(),
            ack_id = self.ack_id,
            requested_by = self.requested_by,
            approved_by = self.approved_by,
            ack_reason = self.reason,
            expires_at_ms = self.expires_at_ms,
        });
    }
}

/// One record per check; carries the evidence chain head so it has witnesses
/// outside the database (§10).
#[derive(Debug)]
pub struct CheckCompleted<'a> {
    pub bots: usize,
    pub drifting: usize,
    pub unknown: usize,
    pub commit: Option<&'a str>,
    pub chain_head: Option<&'a str>,
    pub duration_ms: u64,
    pub successful: bool,
}

impl CheckCompleted<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let attrs = vec![
            ("bots", AnyValue::Int(self.bots as i64)),
            ("drifting", AnyValue::Int(self.drifting as i64)),
            ("unknown", AnyValue::Int(self.unknown as i64)),
            ("commit", s(self.commit.unwrap_or("").to_string())),
            ("chain_head", s(self.chain_head.unwrap_or("").to_string())),
            ("duration_ms", AnyValue::Int(self.duration_ms as i64)),
            ("successful", AnyValue::Boolean(self.successful)),
        ];
        t.logs().emit(
            "config_drift.check",
            Severity::Info,
            Some(s("Check completed.")),
            attrs,
        );
        tracing::info!(
            target: GOV_TARGET,
            bots = self.bots,
            drifting = self.drifting,
            unknown = self.unknown,
            commit = self.commit.unwrap_or(""),
            chain_head = self.chain_head.unwrap_or(""),
            duration_ms = self.duration_ms,
            successful = self.successful,
            "Check completed."
        );
    }
}

/// More than half of the evaluated bots (at least 3) drift in one check: likely
/// a bad commit or a mass edit rather than many separate edits.
#[derive(Debug)]
pub struct MassDrift<'a> {
    pub drifting: usize,
    pub evaluated: usize,
    pub committed_ref: Option<&'a str>,
    pub commit: Option<&'a str>,
}

pub const MASS_DRIFT_MESSAGE: &str =
    "More than half of the evaluated bots drift from the committed configuration at once.";

impl MassDrift<'_> {
    /// The rule: more than half of the evaluated bots, and at least 3.
    pub fn applies(drifting: usize, evaluated: usize) -> bool {
        drifting >= 3 && drifting * 2 > evaluated
    }

    pub fn emit(&self, t: &Telemetry) {
        let attrs = vec![
            ("mass_drift", AnyValue::Boolean(true)),
            ("drifting", AnyValue::Int(self.drifting as i64)),
            ("evaluated", AnyValue::Int(self.evaluated as i64)),
            (
                "committed_ref",
                s(self.committed_ref.unwrap_or("").to_string()),
            ),
            ("committed_commit", s(self.commit.unwrap_or("").to_string())),
        ];
        t.logs().emit(
            "config_drift.mass_drift",
            Severity::Warn,
            Some(s(MASS_DRIFT_MESSAGE)),
            attrs,
        );
        tracing::warn!(
            target: GOV_TARGET,
            mass_drift = true,
            drifting = self.drifting,
            evaluated = self.evaluated,
            committed_ref = self.committed_ref.unwrap_or(""),
            committed_commit = self.commit.unwrap_or(""),
            "{MASS_DRIFT_MESSAGE}"
        );
    }
}

/// The per-bot per-check developer line (tracing only): INFO when drifting or
/// UNKNOWN, DEBUG when in sync.
#[derive(Debug)]
pub struct BotChecked<'a> {
    pub report: &'a ConfigDriftReport,
}

impl BotChecked<'_> {
    pub fn emit(&self) {
        let r = self.report;
        let fields = field_list(r);
        if r.status == Status::InSync {
            tracing::debug!(bot_slug = slug(r), status = r.status.as_str(), drifts_count = r.drifts.len(), fields_drifted = %fields, "Bot checked.");
        } else {
            tracing::info!(bot_slug = slug(r), status = r.status.as_str(), drifts_count = r.drifts.len(), fields_drifted = %fields, "Bot checked.");
        }
    }
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
    fn detected_is_p2_only_in_enforced_mode_past_one_interval() {
        let i = 900_000;
        assert_eq!(
            SeverityClass::for_detected(Mode::Enforced, 0, i + 1, i),
            SeverityClass::P2
        );
        assert_eq!(
            SeverityClass::for_detected(Mode::Enforced, 0, i, i),
            SeverityClass::P3
        );
        assert_eq!(
            SeverityClass::for_detected(Mode::Advisory, 0, 10 * i, i),
            SeverityClass::P3
        );
    }

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
    fn mass_drift_needs_three_bots_and_more_than_half() {
        assert!(!MassDrift::applies(2, 2));
        assert!(MassDrift::applies(3, 5));
        assert!(!MassDrift::applies(3, 6));
        assert!(MassDrift::applies(3, 3));
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
}
