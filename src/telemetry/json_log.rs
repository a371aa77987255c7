//! `--log-format json`: one JSON object per line on stderr, in the shape of
//! tracing-subscriber's own JSON format (`timestamp`, `level`, `fields`,
//! `target`), except that a `report` field holding a report's JSON is embedded
//! as an object, not as a string of escaped JSON: a log shipper reading the
//! GOV records gets the report as structured data, as an OTLP collector does.
//! Owns the line's shape only; which fields a record has is `events.rs`'s.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The field whose text is embedded as JSON when it parses as JSON.
const EMBEDDED_FIELD: &str = "report";

/// The JSON line formatter.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(humantime::format_rfc3339_micros(crate::time::now()).to_string()),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("fields".into(), Value::Object(fields.0));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, text_or_embedded(field, value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON form: keep their text.
        let value = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%display` fields and the message arrive here, already text.
        self.put(field, text_or_embedded(field, format!("{value:?}")));
    }
}

fn text_or_embedded(field: &Field, text: String) -> Value {
    if field.name() == EMBEDDED_FIELD
        && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(&text)
    {
        return value;
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn a_report_field_is_embedded_and_other_fields_keep_their_types() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(buffer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                target: "config_drift::gov",
                bot_slug = "a",
                drifts_count = 2_i64,
                minutes = 1.5,
                ok = true,
                report = %r#"{"kind":"ConfigDriftReport","drifts":[]}"#,
                note = %"{not json",
                "Something happened."
            );
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], "config_drift::gov");
        let fields = &line["fields"];
        assert_eq!(fields["message"], "Something happened.");
        assert_eq!(fields["bot_slug"], "a");
        assert_eq!(fields["drifts_count"], 2);
        assert_eq!(fields["minutes"], 1.5);
        assert_eq!(fields["ok"], true);
        assert_eq!(fields["report"]["kind"], "ConfigDriftReport");
        assert_eq!(fields["note"], "{not json");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
