//! How results reach a person or a program: one JSON object per line, or a table
//! with one row per drift (a bot without drift has one row). Colour only on a
//! terminal, and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::report::{ConfigDriftReport, Status};
use crate::time::format_ms;

use super::ReportFormat;

/// Whether stdout gets ANSI colour.
pub fn colour_on_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn print_reports(reports: &[ConfigDriftReport], format: ReportFormat) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => {
            for r in reports {
                writeln!(out, "{}", r.to_json_line())?;
            }
        }
        ReportFormat::Table => {
            out.write_all(render_table(reports, colour_on_stdout()).as_bytes())?
        }
    }
    out.flush()
}

pub fn render_table(reports: &[ConfigDriftReport], colour: bool) -> String {
    let header = ["BOT", "STATUS", "FIELD", "RUNNING → COMMITTED", "SINCE"].map(String::from);
    let mut rows: Vec<([String; 5], Status)> = Vec::new();
    for r in reports {
        let bot = r.bot_slug.clone().unwrap_or_else(|| "-".into());
        let status = r.status.as_str().to_owned();
        if r.status == Status::Unknown {
            // The reason in FIELD, the detail after it: details are long sentences
            // and must not widen the drift columns.
            let reason = r.unknown_reason.map_or("", |u| u.as_str());
            let detail = r.detail.as_deref().unwrap_or("");
            rows.push((
                [
                    bot.clone(),
                    status.clone(),
                    reason.to_owned(),
                    detail.to_owned(),
                    String::new(),
                ],
                r.status,
            ));
        }
        if r.drifts.is_empty() && r.status != Status::Unknown {
            rows.push((
                [bot, status, "-".into(), String::new(), String::new()],
                r.status,
            ));
            continue;
        }
        for d in &r.drifts {
            let shown = |v: &Option<Box<serde_json::value::RawValue>>| {
                v.as_deref()
                    .map_or("(absent)".to_owned(), |v| v.get().to_owned())
            };
            let values = format!("{} → {}", shown(&d.running), shown(&d.committed));
            let field = if d.latched {
                format!("{} (latched)", d.field)
            } else {
                d.field.clone()
            };
            rows.push((
                [
                    bot.clone(),
                    status.clone(),
                    field,
                    values,
                    format_ms(d.since_ts_ms),
                ],
                r.status,
            ));
        }
    }
    let mut widths = header.clone().map(|h| h.chars().count());
    for (row, status) in &rows {
        for (i, (w, cell)) in widths.iter_mut().zip(row).enumerate() {
            if *status == Status::Unknown && i == 3 {
                continue;
            }
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_row(&mut out, &header, &widths, None);
    for (row, status) in &rows {
        push_row(&mut out, row, &widths, colour.then_some(*status));
    }
    out.push_str(&render_schema_errors(reports));
    out
}

/// Schema errors below the drift table, one row each: a committed file that
/// violates its schema must not look clean. Empty when there are none.
fn render_schema_errors(reports: &[ConfigDriftReport]) -> String {
    let rows: Vec<[String; 4]> = reports
        .iter()
        .flat_map(|r| {
            let bot = r.bot_slug.clone().unwrap_or_else(|| "-".into());
            r.schema_errors.iter().map(move |e| {
                let path = if e.path.is_empty() {
                    "(root)".to_owned()
                } else {
                    e.path.clone()
                };
                [
                    bot.clone(),
                    e.side.as_str().to_owned(),
                    path,
                    e.message.clone(),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let header = ["BOT", "SIDE", "PATH", "SCHEMA ERROR"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row).take(3) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::from("\n");
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < 3 {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn push_row(out: &mut String, cells: &[String; 5], widths: &[usize; 5], status: Option<Status>) {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        let pad = w.saturating_sub(cell.chars().count());
        let text = match (i, status) {
            (1, Some(s)) => format!("{}{cell}\x1b[0m", colour_code(s)),
            _ => cell.clone(),
        };
        line.push_str(&text);
        if i + 1 < cells.len() {
            line.extend(std::iter::repeat_n(' ', pad + 2));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn colour_code(s: Status) -> &'static str {
    match s {
        Status::InSync => "\x1b[32m",
        Status::Drift => "\x1b[31m",
        Status::Unknown => "\x1b[33m",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Drift, DriftKind};

    #[test]
    fn table_has_a_row_per_drift_and_one_for_a_bot_in_sync() {
        let mut a = ConfigDriftReport::new(Some("a".into()), 0);
        a.drifts = vec![
            Drift {
                field: "x".into(),
                kind: DriftKind::Changed,
                running: serde_json::value::RawValue::from_string("10".into()).ok(),
                committed: serde_json::value::RawValue::from_string("12".into()).ok(),
                delta: None,
                since_ts_ms: 0,
                latched: false,
            },
            Drift {
                field: "y".into(),
                kind: DriftKind::MissingInRunning,
                running: None,
                committed: serde_json::value::RawValue::from_string("1".into()).ok(),
                delta: None,
                since_ts_ms: 0,
                latched: false,
            },
        ];
        a.settle();
        let b = ConfigDriftReport::new(Some("b".into()), 0);
        let t = render_table(&[a, b], false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[1].contains("10 → 12") && lines[1].contains("1970-01-01T00:00:00Z"));
        assert!(lines[2].contains("(absent) → 1"));
        assert!(lines[3].starts_with("b ") && lines[3].contains("IN_SYNC"));
        assert!(!t.contains('\x1b'));
    }

    #[test]
    fn schema_errors_are_listed_below_the_drifts() {
        let mut a = ConfigDriftReport::new(Some("a".into()), 0);
        a.schema_errors.push(crate::report::SchemaError {
            side: crate::report::Side::Committed,
            path: "limits.max_usd".into(),
            message: "100 is greater than the maximum of 50".into(),
        });
        a.settle();
        let t = render_table(&[a, ConfigDriftReport::new(Some("b".into()), 0)], false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 6, "{t}");
        assert_eq!(lines[3], "");
        assert!(
            lines[4].starts_with("BOT") && lines[4].contains("SCHEMA ERROR"),
            "{t}"
        );
        assert!(
            lines[5].starts_with("a ")
                && lines[5].contains("committed")
                && lines[5].contains("limits.max_usd")
                && lines[5].ends_with("100 is greater than the maximum of 50"),
            "{t}"
        );
    }
}
