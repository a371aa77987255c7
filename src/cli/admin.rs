//! The admin API's clients (§2): `bots`, `ack`, `approve`, `clear`, `pause`,
//! `resume`, against `--server URL` with the bearer token from `CDD_TOKEN`. A
//! table for people by default, `--format json` for programs; exit 0 when the
//! API said yes, 1 otherwise with one sentence naming the HTTP status and the
//! API's error. Must not print or log the token.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use reqwest::StatusCode;
use serde_json::Value;

use super::{ReportFormat, exit};
use crate::api::protocol::{AckView, ClearedView, Method, PauseUntil, PauseView};
use crate::time::format_ms;

pub use crate::api::protocol::Call;

/// The environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "CDD_TOKEN";
/// An extra CA (PEM) for an agent serving HTTPS with a private certificate.
pub const CA_ENV: &str = "CDD_CA_FILE";

/// A manual check may wait for one in flight and then run one; the agent's
/// latency budget is at most 60 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The agent's address, e.g. http://127.0.0.1:9464 (`server.listen`). The bearer
    /// token comes from CDD_TOKEN; an HTTPS agent with a private CA needs CDD_CA_FILE.
    #[arg(long, value_name = "URL", env = "CDD_SERVER")]
    pub server: String,
    /// `table` for people, `json` (one object per line) for programs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Args, Debug)]
pub struct BotsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct AckArgs {
    /// The bot in DRIFT whose current drift the ack covers.
    #[arg(value_name = "SLUG")]
    pub slug: String,
    /// Why the drift may stand until the next check (kept in the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The id `ack` printed; another identity than the requester must approve it.
    #[arg(value_name = "ACK_ID")]
    pub ack_id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct ClearArgs {
    /// The bot whose drift episode ends as `cleared`.
    #[arg(value_name = "SLUG")]
    pub slug: String,
    /// Why the latch is cleared (kept in the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    /// Why paging is paused (kept in the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Ends the pause by itself after this long (`90s`, `15m`, `1h`, `30d`).
    #[arg(long = "for", value_name = "DUR")]
    pub duration: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(call: Call, server: &ServerArgs) -> anyhow::Result<u8> {
    if let Call::Pause {
        duration: Some(d), ..
    } = &call
    {
        crate::time::parse_duration(d).map_err(|e| anyhow!("--for: {e}"))?;
    }
    let client = ApiClient::new(&server.server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (method, path, body) = call.request(segment);
    let answer = runtime.block_on(client.call(method, &path, body))?;
    let text = match server.format {
        ReportFormat::Json => json_output(&call, &answer),
        ReportFormat::Table => table_output(&call, &answer),
    };
    print!("{text}");
    Ok(exit::OK)
}

/// A client of one agent's admin API.
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// For `server` (the agent's base URL), with the token from `CDD_TOKEN`.
    pub fn new(server: &str) -> anyhow::Result<ApiClient> {
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| anyhow!("{TOKEN_ENV} is not set: the admin API needs a bearer token"))?;
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server `{server}` is not an http:// or https:// URL");
        }
        let ca = std::env::var_os(CA_ENV).map(std::path::PathBuf::from);
        let tls = crate::runtime::tls::client_config(ca.as_deref(), None, None)
            .with_context(|| format!("the TLS setup for {server} failed"))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // The agent is an internal service; a proxy meant for outbound
            // traffic must not see its bearer tokens.
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .with_context(|| format!("an HTTP client for {server} cannot be built"))?;
        Ok(ApiClient {
            base,
            token: token.trim().to_owned(),
            http,
        })
    }

    /// `method` on `/api/v1{path}`; a non-2xx answer is an error naming its
    /// status and the API's `error`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<String> {
        let url = format!("{}{}{path}", self.base, crate::api::PREFIX);
        let method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the admin API at {}: {}",
                self.base,
                root_cause(&e)
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| anyhow!("the admin API at {} broke off its answer: {e}", self.base))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(anyhow!("{}", api_error(&self.base, status, &text)))
    }
}

fn api_error(base: &str, status: StatusCode, body: &str) -> String {
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().chars().take(200).collect());
    let retry = if status == StatusCode::TOO_MANY_REQUESTS {
        " (rate limited)"
    } else {
        ""
    };
    if said.is_empty() {
        format!("the admin API at {base} answered {status}{retry}")
    } else {
        format!("the admin API at {base} answered {status}{retry}: {said}")
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// A slug or ack id as one path segment: only characters that need no escaping
/// pass as they are.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json_output(call: &Call, answer: &str) -> String {
    match (call, serde_json::from_str::<Value>(answer)) {
        // One report per line, as `check --format json` prints them.
        (Call::Bots, Ok(Value::Array(reports))) => {
            reports.iter().map(|r| format!("{r}\n")).collect()
        }
        (_, Ok(v)) => format!("{v}\n"),
        (_, Err(_)) => format!("{answer}\n"),
    }
}

fn table_output(call: &Call, answer: &str) -> String {
    match call {
        Call::Bots => bots_table(&serde_json::from_str(answer).unwrap_or(Value::Null)),
        Call::Ack { .. } | Call::Approve { .. } => match serde_json::from_str(answer) {
            Ok(ack) => ack_table(&ack),
            Err(_) => format!("{answer}\n"),
        },
        Call::Clear { .. } => match serde_json::from_str::<ClearedView>(answer) {
            Ok(c) => table(
                &["BOT", "EPISODE", "RESOLVED BY", "MINUTES"],
                vec![vec![
                    c.bot_slug,
                    c.episode_id,
                    c.resolved_by,
                    format!("{:.1}", c.resolution_minutes),
                ]],
            ),
            Err(_) => format!("{answer}\n"),
        },
        Call::Pause { .. } | Call::Resume => match serde_json::from_str(answer) {
            Ok(pause) => pause_table(&pause),
            Err(_) => format!("{answer}\n"),
        },
    }
}

fn ack_table(a: &AckView) -> String {
    let mut out = table(
        &[
            "ACK",
            "BOT",
            "STATUS",
            "REQUESTED BY",
            "APPROVED BY",
            "EXPIRES",
            "REASON",
        ],
        vec![vec![
            a.id.clone(),
            a.bot_slug.clone(),
            a.status.clone(),
            a.requested_by.clone(),
            a.approved_by.clone().unwrap_or_default(),
            format_ms(a.expires_at_ms),
            a.reason.clone(),
        ]],
    );
    if a.status == "pending" {
        out.push_str(&format!(
            "A second person approves it with: config-drift-detector approve {}\n",
            a.id
        ));
    }
    out
}

fn pause_table(p: &PauseView) -> String {
    let until = match p.until_ms {
        PauseUntil::At(ms) => format_ms(ms),
        PauseUntil::Resumed if p.paused => "until resumed".to_owned(),
        PauseUntil::Resumed | PauseUntil::Absent => String::new(),
    };
    table(
        &["PAUSED", "BY", "SINCE", "UNTIL", "REASON"],
        vec![vec![
            if p.paused { "yes" } else { "no" }.to_owned(),
            p.by.clone().unwrap_or_default(),
            p.since_ms.map(format_ms).unwrap_or_default(),
            until,
            p.reason.clone().unwrap_or_default(),
        ]],
    )
}

/// One row per drift (a bot without drift has one row), as `check` prints.
fn bots_table(reports: &Value) -> String {
    let mut rows = Vec::new();
    for r in reports.as_array().into_iter().flatten() {
        let bot = text(&r["bot_slug"]);
        let status = text(&r["status"]);
        let drifts = r["drifts"].as_array().cloned().unwrap_or_default();
        if status == "UNKNOWN" {
            rows.push(vec![
                bot.clone(),
                status.clone(),
                text(&r["unknown_reason"]),
                text(&r["detail"]),
                String::new(),
            ]);
        } else if drifts.is_empty() {
            rows.push(vec![
                bot.clone(),
                status.clone(),
                "-".into(),
                String::new(),
                String::new(),
            ]);
        }
        for d in &drifts {
            let side = |k: &str| match d.get(k) {
                Some(v) => v.to_string(),
                None => "(absent)".into(),
            };
            let field = if d["latched"] == true {
                format!("{} (latched)", text(&d["field"]))
            } else {
                text(&d["field"])
            };
            rows.push(vec![
                bot.clone(),
                status.clone(),
                field,
                format!("{} → {}", side("running"), side("committed")),
                d["since_ts_ms"].as_i64().map(format_ms).unwrap_or_default(),
            ]);
        }
    }
    table(
        &["BOT", "STATUS", "FIELD", "RUNNING → COMMITTED", "SINCE"],
        rows,
    )
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell (by characters).
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_status_and_the_apis_sentence() {
        let e = api_error(
            "http://127.0.0.1:9464",
            StatusCode::CONFLICT,
            r#"{"error":"ack `a` is already approved"}"#,
        );
        assert_eq!(
            e,
            "the admin API at http://127.0.0.1:9464 answered 409 Conflict: ack `a` is already approved"
        );
        let e = api_error("http://h", StatusCode::TOO_MANY_REQUESTS, "");
        assert_eq!(
            e,
            "the admin API at http://h answered 429 Too Many Requests (rate limited)"
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("risk.kill_switch-1"), "risk.kill_switch-1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn the_bots_table_has_one_row_per_drift_and_one_for_a_bot_in_sync() {
        let reports = json!([
            {"bot_slug": "a", "status": "DRIFT", "drifts": [
                {"field": "limit", "running": 12, "committed": 10, "since_ts_ms": 0},
                {"field": "mode", "committed": "safe", "since_ts_ms": 0}]},
            {"bot_slug": "b", "status": "IN_SYNC", "drifts": []}
        ]);
        let t = bots_table(&reports);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[1].contains("limit") && lines[1].contains("12 → 10"),
            "{t}"
        );
        assert!(lines[2].contains("(absent) → \"safe\""), "{t}");
        assert!(
            lines[3].starts_with("b ") && lines[3].contains("IN_SYNC"),
            "{t}"
        );
    }
}
