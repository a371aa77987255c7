//! The check's trace (§11): one span `config_drift.check` per check, written after
//! the check from its reports (start = the check's start, end = start + duration),
//! with one `config_drift.field` event per drifted field up to `MAX_FIELD_EVENTS`
//! and the overflow counted in `dropped_field_events`; and the `mass_drift` rule,
//! on the span and as a log record. Must not run during the check: it reads
//! finished reports only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _};

use super::Telemetry;
use super::events::MassDrift;
use crate::report::{ConfigDriftReport, Tally};

pub const CHECK_SPAN: &str = "config_drift.check";
pub const FIELD_EVENT: &str = "config_drift.field";
pub const MASS_DRIFT_EVENT: &str = "mass_drift";
/// Field events per check span; the rest are only counted.
pub const MAX_FIELD_EVENTS: usize = 1_000;

/// One finished check.
#[derive(Debug)]
pub struct CheckSpan<'a> {
    pub checked_at_ms: i64,
    pub duration: Duration,
    pub reports: &'a [ConfigDriftReport],
    pub committed_ref: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub chain_head: Option<&'a str>,
}

/// What `CheckSpan::emit` wrote, for the caller and for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckSpanOutcome {
    pub field_events: usize,
    pub dropped_field_events: usize,
    pub mass_drift: bool,
}

fn at_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl CheckSpan<'_> {
    pub fn emit(&self, t: &Telemetry) -> CheckSpanOutcome {
        let Tally {
            drift: drifting,
            unknown,
            ..
        } = Tally::of(self.reports);
        // Evaluated: the bots whose two sides were compared this check.
        let evaluated = self.reports.len() - unknown;
        let mass = MassDrift::applies(drifting, evaluated);

        let start = at_ms(self.checked_at_ms);
        let tracer = t.tracer();
        let mut span = tracer
            .span_builder(CHECK_SPAN)
            .with_start_time(start)
            .with_attributes(vec![
                KeyValue::new("bots", self.reports.len() as i64),
                KeyValue::new("drifting", drifting as i64),
                KeyValue::new("unknown", unknown as i64),
                KeyValue::new("commit", self.commit.unwrap_or("").to_string()),
                KeyValue::new(
                    "committed_ref",
                    self.committed_ref.unwrap_or("").to_string(),
                ),
                KeyValue::new("chain_head", self.chain_head.unwrap_or("").to_string()),
                KeyValue::new("duration_ms", self.duration.as_millis() as i64),
                KeyValue::new("mass_drift", mass),
            ])
            .start(tracer);

        let mut written = 0usize;
        let mut dropped = 0usize;
        for report in self.reports {
            let slug = report.bot_slug.clone().unwrap_or_default();
            for d in &report.drifts {
                if written == MAX_FIELD_EVENTS {
                    dropped += 1;
                    continue;
                }
                let mut attrs = vec![
                    KeyValue::new("bot_slug", slug.clone()),
                    KeyValue::new("field", d.field.clone()),
                    KeyValue::new("kind", d.kind.as_str()),
                    KeyValue::new("since_ts_ms", d.since_ts_ms),
                ];
                // Values as in reports: canonical JSON text, secrets already redacted.
                for (key, value) in [
                    ("running", &d.running),
                    ("committed", &d.committed),
                    ("delta", &d.delta),
                ] {
                    if let Some(v) = value {
                        attrs.push(KeyValue::new(key, v.get().to_string()));
                    }
                }
                if d.latched {
                    attrs.push(KeyValue::new("latched", true));
                }
                span.add_event_with_timestamp(FIELD_EVENT, start, attrs);
                written += 1;
            }
        }
        span.set_attribute(KeyValue::new("dropped_field_events", dropped as i64));
        if mass {
            span.add_event_with_timestamp(
                MASS_DRIFT_EVENT,
                start,
                vec![
                    KeyValue::new("drifting", drifting as i64),
                    KeyValue::new("evaluated", evaluated as i64),
                    KeyValue::new(
                        "committed_ref",
                        self.committed_ref.unwrap_or("").to_string(),
                    ),
                    KeyValue::new("committed_commit", self.commit.unwrap_or("").to_string()),
                ],
            );
            MassDrift {
                drifting,
                evaluated,
                committed_ref: self.committed_ref,
                commit: self.commit,
            }
            .emit(t);
        }
        span.end_with_timestamp(start + self.duration);
        CheckSpanOutcome {
            field_events: written,
            dropped_field_events: dropped,
            mass_drift: mass,
        }
    }
}
