//! The admin API (§12) through the agent's binary: bearer tokens and roles,
//! the per-source rate limit, the last reports and manual checks, the two-person
//! ack with its exact lifetime (§9), clear, pause/resume, the audit chain and
//! `audit verify`, and the CLI clients. Real parts only: fixture repos with real
//! commits, bots on loopback HTTP, the agent as a child process, a real sled
//! database.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::agent::{AgentProcess, field};
use support::fleet_agent::{Fleet, with_limit};
use support::pki::Pki;
use support::{binary, poll, stderr, stdout};

/// Generous bound for anything that should take one or two short intervals.
const SOON: Duration = Duration::from_secs(30);

/// Tokens of the test identities: name, role, token.
const IDENTITIES: &[(&str, &str, &str)] = &[
    ("vic", "viewer", "tok-viewer-vic"),
    ("olga", "oncall", "tok-oncall-olga"),
    ("oscar", "oncall", "tok-oncall-oscar"),
    ("ada", "admin", "tok-admin-ada"),
];
const VIEWER: &str = "tok-viewer-vic";
const OLGA: &str = "tok-oncall-olga";
const OSCAR: &str = "tok-oncall-oscar";
const ADMIN: &str = "tok-admin-ada";

/// The admin tests' config: the shared fleet (tests/support/fleet_agent.rs)
/// with `[server]` rate limits and `[[auth.tokens]]`, this rate limit (per
/// second, burst).
fn admin_config(fleet: &Fleet, slugs: &[&str], rate: (u32, u32)) -> PathBuf {
    admin_config_at(
        fleet,
        &fleet.dir.path().join("config.toml"),
        "state/db",
        slugs,
        rate,
    )
}

fn admin_config_at(
    fleet: &Fleet,
    path: &Path,
    state: &str,
    slugs: &[&str],
    rate: (u32, u32),
) -> PathBuf {
    let bots: String = slugs
        .iter()
        .map(|s| Fleet::bot_entry(s, &fleet.bots.url(&format!("/{s}"))))
        .collect();
    let tokens: String = IDENTITIES
        .iter()
        .map(|(name, role, token)| {
            format!(
                "[[auth.tokens]]\nname = {name:?}\nrole = {role:?}\nsha256 = {:?}\n\n",
                hex::encode(Sha256::digest(token.as_bytes()))
            )
        })
        .collect();
    let text = format!(
        "[repo]\nurl = {:?}\nbranch = \"main\"\nconfig_path = \"bots/{{slug}}.json\"\ncheckout_dir = \"state/repo\"\n\n[state]\npath = {state:?}\n\n[server]\nlisten = \"{}\"\nrate_limit_per_s = {}\nrate_limit_burst = {}\n\n{bots}{tokens}",
        fleet.repo.path().display().to_string(),
        fleet.addr,
        rate.0,
        rate.1,
    );
    std::fs::write(path, text).expect("config written");
    path.to_path_buf()
}

fn base_url(fleet: &Fleet) -> String {
    format!("http://{}", fleet.addr)
}

/// An HTTP answer: status, headers (names lower-cased) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `{ "error": "…" }` of an error answer.
    fn error(&self) -> String {
        let v = self.json();
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no `error` in {v}"))
            .to_owned()
    }
}

/// One HTTP/1.0 request over loopback.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("the agent answers");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    // A server may answer (401, 413) before reading a large body, and then reset
    // the connection: what it answered before the reset is the answer.
    let reset = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
    };
    if let Err(e) = s.write_all(request.as_bytes()) {
        assert!(reset(&e), "request not sent: {e}");
    }
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if reset(&e) && !bytes.is_empty() => break,
            Err(e) => panic!("answer not read: {e}"),
        }
    }
    let text = String::from_utf8(bytes).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get(agent: &AgentProcess, path: &str, token: Option<&str>) -> Answer {
    call(agent.addr, "GET", path, token, None)
}

fn post(agent: &AgentProcess, path: &str, token: Option<&str>, body: &str) -> Answer {
    call(agent.addr, "POST", path, token, Some(body))
}

/// Polls until `GET /api/v1/bots` lists `n` reports.
fn wait_reports(agent: &AgentProcess, n: usize) -> Value {
    poll(SOON, &format!("{n} reports"), || {
        let a = get(agent, "/api/v1/bots", Some(VIEWER));
        let v = a.json();
        (a.status == 200 && v.as_array().is_some_and(|r| r.len() == n)).then_some(v)
    })
}

fn gauge(agent: &AgentProcess, bot: &str) -> Option<f64> {
    agent.series(&format!(r#"drift_acknowledged{{bot_id="{bot}"}}"#))
}

#[test]
fn api_answers_401_without_a_known_token_403_below_the_role_and_json_errors() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    let agent = fleet.start(&config, "60s");

    let none = get(&agent, "/api/v1/bots", None);
    assert_eq!(none.status, 401);
    assert!(none.error().contains("bearer token"), "{}", none.error());
    assert!(
        none.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    let unknown = get(&agent, "/api/v1/bots", Some("not-a-token"));
    assert_eq!(unknown.status, 401);
    assert!(
        !unknown.body.contains("not-a-token"),
        "a token is never echoed"
    );

    let reports = wait_reports(&agent, 1);
    assert_eq!(reports[0]["kind"], "ConfigDriftReport");
    assert_eq!(reports[0]["bot_slug"], "alpha");
    assert_eq!(reports[0]["status"], "IN_SYNC");
    let one = get(&agent, "/api/v1/bots/alpha", Some(VIEWER));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["bot_slug"], "alpha");
    let missing = get(&agent, "/api/v1/bots/nope", Some(VIEWER));
    assert_eq!(missing.status, 404);
    assert!(missing.error().contains("nope"));

    // POST /check: oncall and up.
    let denied = post(&agent, "/api/v1/check", Some(VIEWER), "");
    assert_eq!(denied.status, 403);
    assert!(denied.error().contains("oncall"), "{}", denied.error());
    let checked = post(&agent, "/api/v1/check", Some(OLGA), "");
    assert_eq!(checked.status, 200, "{}", checked.body);
    let r = checked.json();
    for key in [
        "checked_at_ms",
        "bots",
        "drifting",
        "unknown",
        "commit",
        "duration_ms",
    ] {
        assert!(r.get(key).is_some(), "POST /check lacks {key}: {r}");
    }
    assert_eq!(r["bots"], 1);
    assert_eq!(r["commit"].as_str().map(str::len), Some(40));
    assert_eq!(post(&agent, "/api/v1/check", Some(ADMIN), "").status, 200);

    // Admin-only routes.
    for path in [
        "/api/v1/pause",
        "/api/v1/resume",
        "/api/v1/bots/alpha/clear",
    ] {
        let a = post(&agent, path, Some(OLGA), r#"{"reason":"x"}"#);
        assert_eq!(a.status, 403, "{path}: {}", a.body);
    }
    assert_eq!(get(&agent, "/api/v1/audit", Some(OLGA)).status, 403);

    // Unknown routes and methods answer JSON too.
    let nowhere = get(&agent, "/api/v1/nowhere", Some(VIEWER));
    assert_eq!(nowhere.status, 404);
    assert!(!nowhere.error().is_empty());
    let wrong = get(&agent, "/api/v1/check", Some(VIEWER));
    assert_eq!(wrong.status, 405);
    assert!(!wrong.error().is_empty());

    // Everything under /api/ is the API's: JSON 404 for another version.
    for path in ["/api", "/api/v2/bots", "/api/"] {
        let other = get(&agent, path, Some(VIEWER));
        assert_eq!(other.status, 404, "{path}: {}", other.body);
        assert!(!other.error().is_empty(), "{path}: {}", other.body);
    }

    // A body is read only after authentication, and only up to 64 KiB.
    let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(80 * 1024));
    let anonymous = post(&agent, "/api/v1/pause", None, &big);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let too_large = post(&agent, "/api/v1/pause", Some(ADMIN), &big);
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(
        too_large.error().contains("64 KiB"),
        "{}",
        too_large.error()
    );

    // Health and metrics stay open.
    assert_eq!(agent.get("/livez").map(|a| a.0), Some(200));
    assert_eq!(agent.get("/metrics").map(|a| a.0), Some(200));
    let log = agent.log_text();
    for token in ["tok-", "not-a-token"] {
        assert!(!log.contains(token), "tokens never appear in logs: {token}");
    }
}

#[test]
fn rate_limit_answers_429_with_retry_after_past_the_burst_before_auth_and_never_on_metrics() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (1, 3));
    let agent = fleet.start(&config, "60s");

    let statuses: Vec<Answer> = (0..8)
        .map(|_| get(&agent, "/api/v1/bots", Some(VIEWER)))
        .collect();
    for (i, a) in statuses.iter().take(3).enumerate() {
        assert_eq!(a.status, 200, "request {i} is within the burst: {}", a.body);
    }
    let limited = statuses
        .iter()
        .find(|a| a.status == 429)
        .expect("a 429 past the burst");
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry >= 1);
    assert!(limited.error().contains("too many requests"));

    // Before authentication: without a token it is still 429, not 401.
    let anonymous = get(&agent, "/api/v1/bots", None);
    assert_eq!(anonymous.status, 429);

    // Health and metrics are never limited.
    for _ in 0..30 {
        assert_eq!(agent.get("/metrics").map(|a| a.0), Some(200));
        assert_eq!(agent.get("/livez").map(|a| a.0), Some(200));
    }

    // The bucket refills at rate_limit_per_s.
    poll(SOON, "a token back in the bucket", || {
        (get(&agent, "/api/v1/bots", Some(VIEWER)).status == 200).then_some(())
    });
}

#[test]
fn ack_needs_a_second_person_lives_until_the_next_scheduled_check_and_survives_a_restart() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let config = admin_config(&fleet, &["alpha", "beta"], (100, 100));
    // A long interval: a restart on a loaded machine must fit in the pending
    // ack's lifetime, and the approval and a manual check before the next
    // scheduled check.
    fleet.edit("alpha", &with_limit(12));
    let mut first = fleet.start(&config, "60s");
    let detected = first.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let episode = field(&detected, "episode_id").expect("episode").to_owned();
    first.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);
    assert_eq!(gauge(&first, "alpha"), Some(0.0));

    // Only a drift can be acknowledged, only by oncall and up, only a known bot.
    let in_sync = post(
        &first,
        "/api/v1/bots/beta/acks",
        Some(OLGA),
        r#"{"reason":"x"}"#,
    );
    assert_eq!(in_sync.status, 409, "{}", in_sync.body);
    assert!(in_sync.error().contains("IN_SYNC"), "{}", in_sync.error());
    assert_eq!(
        post(
            &first,
            "/api/v1/bots/ghost/acks",
            Some(OLGA),
            r#"{"reason":"x"}"#
        )
        .status,
        404
    );
    assert_eq!(
        post(
            &first,
            "/api/v1/bots/alpha/acks",
            Some(VIEWER),
            r#"{"reason":"x"}"#
        )
        .status,
        403
    );
    assert_eq!(
        post(&first, "/api/v1/bots/alpha/acks", Some(OLGA), r#"{}"#).status,
        400,
        "a reason is required"
    );

    let requested = post(
        &first,
        "/api/v1/bots/alpha/acks",
        Some(OLGA),
        r#"{"reason":"hotfix in flight, PR 42"}"#,
    );
    assert_eq!(requested.status, 201, "{}", requested.body);
    let ack = requested.json();
    assert_eq!(ack["status"], "pending");
    assert_eq!(ack["bot_slug"], "alpha");
    assert_eq!(ack["requested_by"], "olga");
    assert_eq!(ack["reason"], "hotfix in flight, PR 42");
    assert_eq!(ack["episode_id"], episode.as_str());
    let id = ack["id"].as_str().expect("an id").to_owned();
    let pending_until = ack["expires_at_ms"].as_i64().expect("expires_at_ms");
    assert!(
        (pending_until - ack["requested_at_ms"].as_i64().unwrap_or(0) - 60_000).abs() < 5,
        "a pending ack lapses after one interval: {ack}"
    );

    // The same person cannot approve.
    let own = post(
        &first,
        &format!("/api/v1/acks/{id}/approve"),
        Some(OLGA),
        "",
    );
    assert_eq!(own.status, 409, "{}", own.body);
    assert!(own.error().contains("different person"), "{}", own.error());
    assert_eq!(
        post(&first, "/api/v1/acks/ack-nope/approve", Some(OSCAR), "").status,
        404
    );

    // A restart keeps the pending ack.
    assert!(first.terminate(SOON).success());
    let agent = fleet.start(&config, "60s");
    agent.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);

    // A second person approves: active, the gauge is 1, and the ACK record says
    // who asked, who approved, why and until when.
    let approved = post(
        &agent,
        &format!("/api/v1/acks/{id}/approve"),
        Some(OSCAR),
        "",
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let active = approved.json();
    assert_eq!(active["status"], "active");
    assert_eq!(active["approved_by"], "oscar");
    assert_eq!(active["requested_by"], "olga");
    let approved_at = active["approved_at_ms"].as_i64().expect("approved_at_ms");
    assert_eq!(active["expires_at_ms"].as_i64(), Some(approved_at + 60_000));
    assert_eq!(gauge(&agent, "alpha"), Some(1.0));
    assert_eq!(gauge(&agent, "beta"), Some(0.0));
    let record = agent.wait_gov("GOV_CONFIG_DRIFT_ACK", Some("alpha"), SOON, |_| true);
    assert_eq!(field(&record, "requested_by"), Some("olga"));
    assert_eq!(field(&record, "approved_by"), Some("oscar"));
    assert_eq!(
        field(&record, "ack_reason"),
        Some("hotfix in flight, PR 42")
    );
    assert_eq!(
        record["fields"]["expires_at_ms"].as_i64(),
        Some(approved_at + 60_000)
    );
    assert_eq!(record["level"], "INFO");

    // A manual check does not end it.
    let checked = post(&agent, "/api/v1/check", Some(OLGA), "");
    assert_eq!(checked.status, 200);
    assert_eq!(
        gauge(&agent, "alpha"),
        Some(1.0),
        "a manual check keeps the ack"
    );
    let again = post(
        &agent,
        &format!("/api/v1/acks/{id}/approve"),
        Some(ADMIN),
        "",
    );
    assert_eq!(again.status, 409, "already approved");

    // The next scheduled check ends it.
    let lapsed = poll(Duration::from_secs(150), "the ack to lapse", || {
        agent.records().into_iter().find(|r| {
            field(r, "message") == Some("Ack lapsed.") && field(r, "ack_id") == Some(id.as_str())
        })
    });
    assert_eq!(field(&lapsed, "ended_by"), Some("scheduled_check"));
    assert_eq!(gauge(&agent, "alpha"), Some(0.0));
    let after = post(
        &agent,
        &format!("/api/v1/acks/{id}/approve"),
        Some(ADMIN),
        "",
    );
    assert_eq!(after.status, 409);
    assert!(after.error().contains("lapsed"), "{}", after.error());
}

/// §9: an active ack survives a restart, and the check run at startup does not
/// end it (a 300 s interval: no scheduled check comes before the test ends).
#[test]
fn an_active_ack_survives_a_restart_and_its_startup_check() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    fleet.edit("alpha", &with_limit(12));
    let mut first = fleet.start(&config, "300s");
    first.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);
    let requested = post(
        &first,
        "/api/v1/bots/alpha/acks",
        Some(OLGA),
        r#"{"reason":"hotfix in flight"}"#,
    );
    assert_eq!(requested.status, 201, "{}", requested.body);
    let id = requested.json()["id"].as_str().expect("an id").to_owned();
    let approved = post(
        &first,
        &format!("/api/v1/acks/{id}/approve"),
        Some(OSCAR),
        "",
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(gauge(&first, "alpha"), Some(1.0));
    assert!(first.terminate(SOON).success());

    let agent = fleet.start(&config, "300s");
    agent.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);
    assert_eq!(agent.checks(), 1, "the startup check has run");
    assert_eq!(gauge(&agent, "alpha"), Some(1.0), "still acknowledged");
    assert!(
        !agent
            .records()
            .iter()
            .any(|r| field(r, "message") == Some("Ack lapsed.")),
        "{}",
        agent.log_text()
    );
    let again = post(
        &agent,
        &format!("/api/v1/acks/{id}/approve"),
        Some(ADMIN),
        "",
    );
    assert_eq!(again.status, 409, "already approved: {}", again.body);
}

#[test]
fn approval_after_the_drift_changed_is_refused() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    // A long interval, and manual checks: the pending ack must not lapse first.
    fleet.edit("alpha", &with_limit(12));
    let agent = fleet.start(&config, "60s");
    agent.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);
    let requested = post(
        &agent,
        "/api/v1/bots/alpha/acks",
        Some(OLGA),
        r#"{"reason":"r"}"#,
    );
    assert_eq!(requested.status, 201, "{}", requested.body);
    let id = requested.json()["id"].as_str().expect("id").to_owned();

    fleet.edit("alpha", &with_limit(13));
    assert_eq!(post(&agent, "/api/v1/check", Some(OLGA), "").status, 200);
    let r = get(&agent, "/api/v1/bots/alpha", Some(VIEWER)).json();
    assert_eq!(r["drifts"][0]["running"], 13);
    let refused = post(
        &agent,
        &format!("/api/v1/acks/{id}/approve"),
        Some(OSCAR),
        "",
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.error().contains("changed"), "{}", refused.error());
    assert_eq!(gauge(&agent, "alpha"), Some(0.0));
}

/// The binary with `args`, the token (if any) in `CDD_TOKEN`.
fn cli(args: &[&str], token: Option<&str>, cwd: &Path) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("CDD_TOKEN")
        .env_remove("CDD_SERVER")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("CDD_TOKEN", t);
    }
    cmd.output().expect("the binary runs")
}

/// The audit log as the API lists it.
fn audit_entries(agent: &AgentProcess, since: &str) -> Vec<Value> {
    let a = get(agent, &format!("/api/v1/audit?since={since}"), Some(ADMIN));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/x-ndjson"));
    a.body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn clear_ends_the_episode_as_cleared_and_a_lasting_drift_starts_a_new_one() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let config = admin_config(&fleet, &["alpha", "beta"], (100, 100));
    let agent = fleet.start(&config, "2s");
    fleet.edit("alpha", &with_limit(12));
    let detected = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |_| true);
    let episode = field(&detected, "episode_id").expect("episode").to_owned();

    let body = r#"{"reason":"false positive, bot restarted"}"#;
    assert_eq!(
        post(&agent, "/api/v1/bots/alpha/clear", Some(OLGA), body).status,
        403
    );
    assert_eq!(
        post(&agent, "/api/v1/bots/ghost/clear", Some(ADMIN), body).status,
        404
    );
    assert_eq!(
        post(&agent, "/api/v1/bots/alpha/clear", Some(ADMIN), "").status,
        400
    );
    let nothing = post(&agent, "/api/v1/bots/beta/clear", Some(ADMIN), body);
    assert_eq!(nothing.status, 409, "{}", nothing.body);

    let cleared = post(&agent, "/api/v1/bots/alpha/clear", Some(ADMIN), body);
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let c = cleared.json();
    assert_eq!(c["resolved_by"], "cleared");
    assert_eq!(c["episode_id"], episode.as_str());
    let resolved = agent.wait_gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha"), SOON, |_| true);
    assert_eq!(field(&resolved, "resolved_by"), Some("cleared"));
    assert_eq!(field(&resolved, "episode_id"), Some(episode.as_str()));
    // A clear says what it is, not "matches again", and names no commit.
    let message = field(&resolved, "user_message").expect("user_message");
    assert!(
        message.contains("cleared") && !message.contains("matches the version on file again"),
        "{message}"
    );
    assert_eq!(field(&resolved, "message"), Some(message));
    assert!(resolved["fields"].get("commit_sha").is_none(), "{resolved}");

    // The drift is still there: the next check starts a new episode.
    let anew = agent.wait_gov("GOV_CONFIG_DRIFT_DETECTED", Some("alpha"), SOON, |r| {
        field(r, "episode_id").is_some_and(|e| e != episode)
    });
    assert!(field(&anew, "episode_id").is_some());
    assert_eq!(
        agent.gov("GOV_CONFIG_DRIFT_RESOLVED", Some("alpha")).len(),
        1,
        "RESOLVED once for the cleared episode"
    );

    let entries = audit_entries(&agent, "-1h");
    let clear = entries
        .iter()
        .find(|e| e["action"] == "clear")
        .expect("an audit entry for the clear");
    assert_eq!(clear["actor"], "ada");
    assert_eq!(clear["role"], "admin");
    assert_eq!(clear["bot_slug"], "alpha");
    assert_eq!(clear["reason"], "false positive, bot restarted");
    assert_eq!(clear["source"], "127.0.0.1");
    let record = poll(SOON, "the audit log record", || {
        agent.records().into_iter().find(|r| {
            field(r, "message") == Some("Admin action recorded.")
                && field(r, "action") == Some("clear")
        })
    });
    assert_eq!(field(&record, "actor"), Some("ada"));
}

#[test]
fn pause_stops_paging_survives_a_restart_and_ends_on_resume_or_after_its_duration() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    let mut first = fleet.start(&config, "2s");
    assert_eq!(first.series("drift_detector_paused"), Some(0.0));

    let paused = post(
        &first,
        "/api/v1/pause",
        Some(ADMIN),
        r#"{"reason":"maintenance window"}"#,
    );
    assert_eq!(paused.status, 200, "{}", paused.body);
    let p = paused.json();
    assert_eq!(p["paused"], true);
    assert_eq!(p["by"], "ada");
    assert_eq!(p["until_ms"], Value::Null);
    assert_eq!(first.series("drift_detector_paused"), Some(1.0));
    let health = first.get("/healthz/config_drift_detector").expect("health");
    assert_eq!(
        serde_json::from_str::<Value>(&health.1).expect("JSON")["paused"],
        true
    );
    assert_eq!(
        post(
            &first,
            "/api/v1/pause",
            Some(ADMIN),
            r#"{"reason":"x","for":"soon"}"#
        )
        .status,
        400
    );

    // A restart keeps the pause; checks and state go on meanwhile.
    assert!(first.terminate(SOON).success());
    let agent = fleet.start(&config, "2s");
    assert_eq!(agent.series("drift_detector_paused"), Some(1.0));
    fleet.edit("alpha", &with_limit(12));
    agent.wait_series(r#"bots_in_drift{bot_id="alpha"}"#, 1.0, SOON);

    let resumed = post(&agent, "/api/v1/resume", Some(ADMIN), "");
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.json()["paused"], false);
    assert_eq!(agent.series("drift_detector_paused"), Some(0.0));

    // A pause `for` a while ends by itself.
    let timed = post(
        &agent,
        "/api/v1/pause",
        Some(ADMIN),
        r#"{"reason":"deploy","for":"5s"}"#,
    );
    assert_eq!(timed.status, 200, "{}", timed.body);
    let t = timed.json();
    assert_eq!(
        t["until_ms"].as_i64(),
        t["since_ms"].as_i64().map(|s| s + 5_000)
    );
    assert_eq!(agent.series("drift_detector_paused"), Some(1.0));
    agent.wait_series("drift_detector_paused", 0.0, SOON);

    let actions: Vec<String> = audit_entries(&agent, "-1h")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(actions, ["pause", "resume", "pause"]);
}

#[test]
fn audit_chain_verifies_and_one_flipped_byte_in_a_copy_names_that_entry() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    let dir = fleet.dir.path();
    let mut agent = fleet.start(&config, "60s");
    assert_eq!(
        post(&agent, "/api/v1/pause", Some(ADMIN), r#"{"reason":"a"}"#).status,
        200
    );
    assert_eq!(post(&agent, "/api/v1/check", Some(OLGA), "").status, 200);
    assert_eq!(post(&agent, "/api/v1/resume", Some(ADMIN), "").status, 200);

    let entries = audit_entries(&agent, "-1h");
    assert_eq!(entries.len(), 3);
    let lines = get(&agent, "/api/v1/audit", Some(ADMIN)).body;
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["prev"].as_str().map(str::len), Some(64));
    for i in 1..3 {
        assert_eq!(entries[i]["seq"], i as u64 + 1);
        assert_eq!(
            entries[i]["prev"].as_str(),
            Some(hex::encode(Sha256::digest(lines[i - 1].as_bytes())).as_str()),
            "each entry holds the SHA-256 of the one before"
        );
    }
    assert_eq!(entries[1]["action"], "check");
    assert_eq!(entries[1]["detail"]["bots"], 1);
    let future = audit_entries(&agent, "2999-01-01T00:00:00Z");
    assert!(future.is_empty());
    assert_eq!(
        get(&agent, "/api/v1/audit?since=yesterday", Some(ADMIN)).status,
        400
    );

    // While the agent holds the database: only through the agent.
    let config_arg = config.to_str().expect("utf-8 path");
    let held = cli(&["audit", "verify", "--config", config_arg], None, dir);
    assert_eq!(held.status.code(), Some(1), "{}", stderr(&held));
    assert!(stderr(&held).contains("--server"), "{}", stderr(&held));
    assert_eq!(stderr(&held).trim().lines().count(), 1, "one sentence");
    let remote = cli(
        &[
            "audit",
            "verify",
            "--config",
            config_arg,
            "--server",
            &base_url(&fleet),
        ],
        Some(VIEWER),
        dir,
    );
    assert_eq!(remote.status.code(), Some(0), "{}", stderr(&remote));
    assert!(
        stdout(&remote).contains("intact: 3 entries"),
        "{}",
        stdout(&remote)
    );

    assert!(agent.terminate(SOON).success());
    let local = cli(&["audit", "verify", "--config", config_arg], None, dir);
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    assert!(
        stdout(&local).contains("intact: 3 entries"),
        "{}",
        stdout(&local)
    );

    // A copy of the database with one byte of entry 2 flipped.
    let copy = dir.join("copy");
    copy_dir(&fleet.state_db(), &copy.join("db"));
    {
        let db = sled::open(copy.join("db")).expect("the copy opens");
        let tree = db.open_tree("audit").expect("the audit tree");
        let key = 2u64.to_be_bytes();
        let mut value = tree.get(key).expect("read").expect("entry 2").to_vec();
        let at = value.len() - 20;
        value[at] ^= 0x01;
        tree.insert(key, value).expect("write");
        db.flush().expect("flush");
    }
    let copy_config = admin_config_at(
        &fleet,
        &dir.join("copy.toml"),
        "copy/db",
        &["alpha"],
        (100, 100),
    );
    let broken = cli(
        &[
            "audit",
            "verify",
            "--config",
            copy_config.to_str().expect("utf-8"),
        ],
        None,
        dir,
    );
    assert_eq!(
        broken.status.code(),
        Some(2),
        "{}{}",
        stdout(&broken),
        stderr(&broken)
    );
    assert!(
        stdout(&broken).contains("broken at entry 2"),
        "{}",
        stdout(&broken)
    );
    // The original is untouched.
    let again = cli(&["audit", "verify", "--config", config_arg], None, dir);
    assert_eq!(again.status.code(), Some(0));
}

/// Every file under `dir` with its bytes, for "left exactly as it was".
fn files_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            out.extend(files_of(&entry.path()));
        } else {
            out.push((entry.path(), std::fs::read(entry.path()).expect("read")));
        }
    }
    out.sort();
    out
}

#[test]
fn a_damaged_log_is_named_and_no_command_changes_the_database() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    let dir = fleet.dir.path();
    let mut agent = fleet.start(&config, "60s");
    let reason = "window-7f3a9c-for-the-damage-test";
    let body = format!(r#"{{"reason":"{reason}"}}"#);
    assert_eq!(
        post(&agent, "/api/v1/pause", Some(ADMIN), &body).status,
        200
    );
    assert_eq!(post(&agent, "/api/v1/check", Some(OLGA), "").status, 200);
    assert_eq!(post(&agent, "/api/v1/resume", Some(ADMIN), "").status, 200);
    assert_eq!(audit_entries(&agent, "-1h").len(), 3);
    assert!(agent.terminate(SOON).success());

    // One flipped byte inside the newest write holding the pause's audit entry.
    let log = fleet.state_db().join("db");
    let mut bytes = std::fs::read(&log).expect("the log");
    let at = bytes
        .windows(reason.len())
        .rposition(|w| w == reason.as_bytes())
        .expect("the reason is in the log");
    bytes[at + 3] ^= 0x01;
    std::fs::write(&log, &bytes).expect("damaged");
    let before = files_of(&fleet.state_db());
    assert!(!before.is_empty());

    let config_arg = config.to_str().expect("utf-8 path");
    let verify = cli(&["audit", "verify", "--config", config_arg], None, dir);
    let shown = format!("{}{}", stdout(&verify), stderr(&verify));
    assert_eq!(verify.status.code(), Some(2), "{shown}");
    assert!(stdout(&verify).starts_with("audit chain broken"), "{shown}");
    assert!(stdout(&verify).contains("damaged at byte"), "{shown}");
    assert_eq!(stdout(&verify).trim().lines().count(), 1, "{shown}");
    assert!(
        files_of(&fleet.state_db()) == before,
        "audit verify changed the database"
    );

    for _ in 0..2 {
        let mut refused = AgentProcess::spawn(&config, fleet.addr, &[], &[]);
        let status = refused.wait_exit(SOON);
        assert_eq!(status.code(), Some(1), "{}", refused.log_text());
        let log = refused.log_text();
        assert!(
            log.contains("is corrupt") && log.contains("damaged at byte"),
            "{log}"
        );
        assert!(
            files_of(&fleet.state_db()) == before,
            "run changed the database it refused:\n{log}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn cli_clients_drive_the_api_with_a_table_by_default_and_json_on_request() {
    let fleet = Fleet::new(&["alpha", "beta"]);
    let config = admin_config(&fleet, &["alpha", "beta"], (100, 100));
    let dir = fleet.dir.path();
    let agent = fleet.start(&config, "30s");
    fleet.edit("alpha", &with_limit(12));
    assert_eq!(post(&agent, "/api/v1/check", Some(OLGA), "").status, 200);
    let url = base_url(&fleet);
    let server = ["--server", url.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(&server)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let run = |args: &[&str], token: &str| {
        let args = with(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&refs, Some(token), dir)
    };

    let table = run(&["bots"], VIEWER);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("BOT"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("alpha")
            && l.contains("DRIFT")
            && l.contains("limit")
            && l.contains("12 → 10")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("beta") && l.contains("IN_SYNC")),
        "{text}"
    );
    let json = run(&["bots", "--format", "json"], VIEWER);
    let lines: Vec<Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["bot_slug"], "alpha");

    let asked = run(
        &["ack", "alpha", "--reason", "hotfix", "--format", "json"],
        OLGA,
    );
    assert_eq!(asked.status.code(), Some(0), "{}", stderr(&asked));
    let ack: Value = serde_json::from_str(stdout(&asked).trim()).expect("JSON");
    assert_eq!(ack["status"], "pending");
    let id = ack["id"].as_str().expect("id").to_owned();

    let own = run(&["approve", &id], OLGA);
    assert_eq!(own.status.code(), Some(1));
    let err = stderr(&own);
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(
        err.contains("409 Conflict") && err.contains("different person"),
        "{err}"
    );

    let approved = run(&["approve", &id], OSCAR);
    assert_eq!(approved.status.code(), Some(0), "{}", stderr(&approved));
    let text = stdout(&approved);
    assert!(
        text.starts_with("ACK") && text.contains("active") && text.contains("oscar"),
        "{text}"
    );

    let forbidden = run(&["clear", "alpha", "--reason", "r"], OLGA);
    assert_eq!(forbidden.status.code(), Some(1));
    assert!(
        stderr(&forbidden).contains("403 Forbidden"),
        "{}",
        stderr(&forbidden)
    );
    let cleared = run(&["clear", "alpha", "--reason", "r"], ADMIN);
    assert_eq!(cleared.status.code(), Some(0), "{}", stderr(&cleared));
    assert!(stdout(&cleared).contains("cleared"), "{}", stdout(&cleared));

    let paused = run(&["pause", "--reason", "window", "--for", "1h"], ADMIN);
    assert_eq!(paused.status.code(), Some(0), "{}", stderr(&paused));
    assert!(
        stdout(&paused)
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("yes")),
        "{}",
        stdout(&paused)
    );
    let resumed = run(&["resume", "--format", "json"], ADMIN);
    assert_eq!(stdout(&resumed).trim(), r#"{"paused":false}"#);

    let no_token = cli(&["bots", "--server", &url], None, dir);
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        stderr(&no_token).contains("CDD_TOKEN"),
        "{}",
        stderr(&no_token)
    );
    let nobody = cli(
        &["bots", "--server", "http://127.0.0.1:9"],
        Some(VIEWER),
        dir,
    );
    assert_eq!(nobody.status.code(), Some(1));
    assert!(
        stderr(&nobody).contains("cannot reach"),
        "{}",
        stderr(&nobody)
    );
    let bad_for = run(&["pause", "--reason", "x", "--for", "soon"], ADMIN);
    assert_eq!(bad_for.status.code(), Some(1));
    assert!(stderr(&bad_for).contains("--for"), "{}", stderr(&bad_for));
}

/// `api/openapi.json` parses, lists exactly the routes the router serves
/// (`api::ROUTES`), and each route answers as documented: 401 without a token,
/// 403 just below its `x-role`.
#[test]
fn openapi_description_lists_exactly_the_served_routes_with_their_roles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("api/openapi.json");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("api/openapi.json"))
            .expect("it parses");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let mut documented: Vec<(String, String, String)> = Vec::new();
    for (p, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let role = op["x-role"].as_str().expect("x-role").to_owned();
            assert!(
                op["responses"]["401"].is_object() && op["responses"]["429"].is_object(),
                "{method} {p}"
            );
            documented.push((method.clone(), p.clone(), role));
        }
    }
    let mut served: Vec<(String, String)> = config_drift_detector::api::ROUTES
        .iter()
        .map(|(m, p)| {
            (
                (*m).to_owned(),
                format!("{}{p}", config_drift_detector::api::PREFIX),
            )
        })
        .collect();
    let mut listed: Vec<(String, String)> = documented
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    served.sort();
    listed.sort();
    assert_eq!(
        listed, served,
        "the description lists exactly the router's routes"
    );

    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (1000, 1000));
    let agent = fleet.start(&config, "60s");
    let below = |role: &str| match role {
        "oncall" => Some(VIEWER),
        "admin" => Some(OLGA),
        _ => None,
    };
    for (method, p, role) in &documented {
        let concrete = p.replace("{slug}", "alpha").replace("{id}", "ack-x");
        let m = method.to_ascii_uppercase();
        let anonymous = call(agent.addr, &m, &concrete, None, None);
        assert_eq!(
            anonymous.status, 401,
            "{m} {concrete} is served: {}",
            anonymous.body
        );
        if let Some(token) = below(role) {
            let low = call(
                agent.addr,
                &m,
                &concrete,
                Some(token),
                Some(r#"{"reason":"x"}"#),
            );
            assert_eq!(low.status, 403, "{m} {concrete} needs {role}: {}", low.body);
        }
    }
}

/// Refused requests are one audit entry per source and minute, written once the
/// minute is over (so this test waits up to about a minute).
#[test]
fn denied_requests_are_aggregated_per_source_and_minute_in_the_audit_log() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (1000, 1000));
    let agent = fleet.start(&config, "60s");
    for _ in 0..5 {
        assert_eq!(get(&agent, "/api/v1/bots", Some("guess")).status, 401);
    }
    for _ in 0..2 {
        assert_eq!(
            post(&agent, "/api/v1/pause", Some(VIEWER), r#"{"reason":"x"}"#).status,
            403
        );
    }
    let denied = poll(Duration::from_secs(90), "the denied entries", || {
        let entries: Vec<Value> = audit_entries(&agent, "-1h")
            .into_iter()
            .filter(|e| e["action"] == "denied")
            .collect();
        let total = |k: &str| {
            entries
                .iter()
                .map(|e| e["detail"][k].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        (total("unauthorized") == 5 && total("forbidden") == 2).then_some(entries)
    });
    // Seven refusals within a minute are one entry (two if they straddled one).
    assert!(denied.len() <= 2, "{denied:?}");
    for e in &denied {
        assert_eq!(e["source"], "127.0.0.1");
        assert_eq!(e["actor"], "");
        assert!(
            e["detail"]["minute_start_ms"]
                .as_i64()
                .is_some_and(|m| m % 60_000 == 0)
        );
    }
    let minutes: std::collections::HashSet<i64> = denied
        .iter()
        .filter_map(|e| e["detail"]["minute_start_ms"].as_i64())
        .collect();
    assert_eq!(minutes.len(), denied.len(), "one entry per minute");
}

/// A shutdown must not lose the minute still open.
#[test]
fn denied_requests_of_the_open_minute_are_audited_at_shutdown() {
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (1000, 1000));
    let mut first = fleet.start(&config, "60s");
    for _ in 0..3 {
        assert_eq!(get(&first, "/api/v1/bots", Some("guess")).status, 401);
    }
    assert!(first.terminate(SOON).success());

    let agent = fleet.start(&config, "60s");
    let denied: Vec<Value> = audit_entries(&agent, "-1h")
        .into_iter()
        .filter(|e| e["action"] == "denied")
        .collect();
    let unauthorized: u64 = denied
        .iter()
        .map(|e| e["detail"]["unauthorized"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(unauthorized, 3, "{denied:?}");
}

/// §12 as described by `api/openapi.json`, checked by a property-based client
/// (schemathesis, installed by .ci/install-tools): every operation, with valid
/// and invalid input, as a viewer, an oncall and an admin, including stateful
/// sequences (an ack's id fed to its approval). No answer may be a 5xx, and
/// every answer (status, content type, headers, body) must be one the
/// description lists.
#[test]
fn the_api_answers_as_its_openapi_description_says_to_a_property_based_client() {
    let Some(st) = support::tools::require("schemathesis") else {
        return;
    };
    let fleet = Fleet::new(&["alpha", "beta"]);
    let config = admin_config(&fleet, &["alpha", "beta"], (10_000, 10_000));
    fleet.edit("alpha", &with_limit(12));
    fleet.edit("beta", &with_limit(13));
    let agent = fleet.start(&config, "60s");
    agent.wait_series(r#"bots_in_drift{bot_id="beta"}"#, 1.0, SOON);
    // Random slugs and ids would all be 404. Known ones let the operations
    // reach their logic: a drifting bot to ack and clear, and an ack someone
    // else requested, which the oncall run can approve.
    let pending = post(
        &agent,
        "/api/v1/bots/beta/acks",
        Some(OSCAR),
        r#"{"reason":"for the property-based client"}"#,
    );
    assert_eq!(pending.status, 201, "{}", pending.body);
    let ack_id = pending.json()["id"].as_str().expect("an id").to_owned();
    std::fs::write(
        fleet.dir.path().join("schemathesis.toml"),
        format!(
            "[[operations]]\ninclude-path-regex = \"/bots/\\\\{{slug\\\\}}\"\nparameters = {{ slug = \"alpha\" }}\n\n\
             [[operations]]\ninclude-path-regex = \"/acks/\\\\{{id\\\\}}\"\nparameters = {{ id = {ack_id:?} }}\n"
        ),
    )
    .expect("schemathesis.toml written");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("api/openapi.json");
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi/ndjson_lines.py");
    for (name, _, token) in IDENTITIES.iter().filter(|(n, ..)| *n != "oscar") {
        let out = Command::new(&st)
            .arg("run")
            .arg(&spec)
            .args(["--url", &base_url(&fleet)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all", "--max-examples", "30"])
            // One worker: CPython 3.11's parser is not safe for hypothesis's
            // concurrent lambda descriptions ("AST constructor recursion depth
            // mismatch").
            .args(["--workers", "1", "--seed", "20261125", "--no-color"])
            .args(["--request-timeout", "20", "--generation-database", "none"])
            .current_dir(fleet.dir.path())
            // The audit log's NDJSON, held line by line to its schema.
            .env("SCHEMATHESIS_HOOKS", &hooks)
            .env("CDD_OPENAPI", &spec)
            .stdin(Stdio::null())
            .output()
            .expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-{name}.log"));
        let _ = std::fs::write(&log, stdout.as_bytes());
        // The findings, not the whole progress log.
        let from = stdout
            .find("=== FAILURES")
            .or_else(|| stdout.find("=== ERRORS"))
            .unwrap_or(0);
        let findings: String = stdout[from..].chars().take(20_000).collect();
        assert!(
            out.status.success(),
            "schemathesis as {name} found answers outside api/openapi.json (whole log: {}):\n{findings}\n{}",
            log.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The runs reached the operations' logic, not only their refusals: the
    // oncall run approved the ack someone else asked for, and the audit chain
    // the admin run read so often still verifies.
    let approved = audit_entries(&agent, "-1h").into_iter().any(|e| {
        e["action"] == "ack_approve" && e["ack_id"] == ack_id.as_str() && e["actor"] == "olga"
    });
    assert!(approved, "the oncall run approved {ack_id}");
    let verify = get(&agent, "/api/v1/audit/verify", Some(VIEWER));
    assert_eq!(verify.status, 200);
    assert_eq!(
        verify.json()["audit"]["verdict"],
        "intact",
        "{}",
        verify.body
    );
}

/// `audit_retention_days` (§10): entries past it go, an anchor stays, and the
/// chain still verifies from the anchor, through the API and offline.
#[test]
fn audit_entries_past_retention_are_pruned_and_the_chain_verifies_from_its_anchor() {
    use config_drift_detector::latch::store::PauseChange;
    use config_drift_detector::latch::{AuditAction, AuditDraft, StateStore};
    let fleet = Fleet::new(&["alpha"]);
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("[state]\n", "[state]\naudit_retention_days = 1\n"),
    )
    .expect("config written");
    // Two entries from three days ago and one from an hour ago, written as the
    // agent writes them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    {
        let store = StateStore::open(&fleet.state_db(), 1 << 20).expect("state db");
        for ago_h in [72, 71, 1] {
            let draft = AuditDraft {
                at_ms: now - ago_h * 3_600_000,
                action: AuditAction::Pause,
                actor: "ada".into(),
                role: Some("admin".into()),
                source: "127.0.0.1".into(),
                bot_slug: None,
                ack_id: None,
                reason: Some(format!("{ago_h} h ago")),
                detail: None,
            };
            store
                .write_admin(&[], &PauseChange::Keep, Some(draft))
                .expect("entry written");
        }
    }
    let mut agent = fleet.start(&config, "60s");
    let record = poll(SOON, "the prune record", || {
        agent.records().into_iter().find(|r| {
            field(r, "message").is_some_and(|m| m.starts_with("Audit entries past retention"))
        })
    });
    assert_eq!(record["fields"]["anchor_seq"], 2, "{record}");
    let kept = audit_entries(&agent, "-30d");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (kept[0]["seq"].as_u64(), kept[0]["reason"].as_str()),
        (Some(3), Some("1 h ago"))
    );
    assert_eq!(
        kept[0]["prev"].as_str(),
        record["fields"]["anchor_hash"].as_str(),
        "the first kept entry links to the anchor"
    );
    // The chain goes on after the anchor.
    assert_eq!(post(&agent, "/api/v1/check", Some(OLGA), "").status, 200);
    let verify = get(&agent, "/api/v1/audit/verify", Some(VIEWER)).json();
    assert_eq!(verify["audit"]["verdict"], "intact", "{verify}");
    assert_eq!(verify["audit"]["entries"], 2);
    assert_eq!(verify["audit"]["pruned_through"], 2);

    assert!(agent.terminate(SOON).success());
    let offline = cli(
        &[
            "audit",
            "verify",
            "--config",
            config.to_str().expect("utf-8"),
        ],
        None,
        fleet.dir.path(),
    );
    assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
    let said = String::from_utf8_lossy(&offline.stdout);
    assert!(
        said.contains("2 entries after the retention anchor at entry 2"),
        "{said}"
    );
}

/// The clients against an agent serving HTTPS (`[server] tls_cert`/`tls_key`)
/// with a private CA: trusted through `CDD_CA_FILE`, refused in one sentence
/// without it. The agent is the real binary; the CA and its certificate for
/// 127.0.0.1 are the test PKI's.
#[test]
fn cli_clients_reach_an_https_agent_through_cdd_ca_file() {
    let fleet = Fleet::new(&["alpha"]);
    let dir = fleet.dir.path();
    let pki = Pki::new();
    let ca = pki.ca.to_str().expect("utf-8");
    let config = admin_config(&fleet, &["alpha"], (100, 100));
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "[server]\n",
            &format!(
                "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
                pki.server_cert, pki.server_key
            ),
        ),
    )
    .expect("config written");

    let mut agent = AgentProcess::spawn(
        &config,
        fleet.addr,
        &["--check-interval", "60s", "--log-format", "json"],
        &[],
    );
    let url = format!("https://{}", fleet.addr);
    let bots = |ca: Option<&str>| {
        Command::new(binary())
            .args(["bots", "--server", url.as_str(), "--format", "json"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("CDD_TOKEN", VIEWER)
            .env_remove("CDD_SERVER")
            .env_remove("CDD_CA_FILE")
            .envs(ca.map(|c| ("CDD_CA_FILE", c)))
            .stdin(Stdio::null())
            .output()
            .expect("the client runs")
    };
    let listed = poll(SOON, "the HTTPS agent listing alpha", || {
        if let Some(status) = agent.exited() {
            panic!(
                "the agent exited at start ({status}):\n{}",
                agent.log_text()
            );
        }
        let out = bots(Some(ca));
        // One report per line (JSON lines).
        let text = stdout(&out);
        let reports: Vec<Value> = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .ok()?;
        (out.status.success() && !reports.is_empty()).then_some(reports)
    });
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["bot_slug"], "alpha");
    assert_eq!(listed[0]["kind"], "ConfigDriftReport");

    let untrusted = bots(None);
    assert_eq!(untrusted.status.code(), Some(1));
    let said = stderr(&untrusted);
    assert_eq!(said.trim().lines().count(), 1, "one sentence: {said}");
    assert!(said.contains(url.as_str()), "names the server: {said}");

    assert!(agent.terminate(SOON).success());
}
