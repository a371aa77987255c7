//! The shipped alert rules, Alertmanager example and dashboard against the real
//! agent (CONTRACT §11, §13, §14). The agent (`run`, 1 s checks) watches
//! fixture bots and a fixture repo with real commits; a real Prometheus scrapes
//! its `/metrics` every second with `alerts/config-drift.rules.yml` loaded
//! unchanged, so every join meets the `job` and `instance` labels a scrape adds.
//!
//! - The issue's flow, mode advisory: a real Alertmanager runs the example config
//!   (receivers pointed at a webhook sink in this test, group timers at 1 s). A
//!   live edit through a bot's admin endpoint reaches the sink as a firing
//!   ConfigDriftDetected (warning); a commit adopting the edit reaches it as
//!   resolved; then every dashboard panel query returns data from that
//!   Prometheus, and the counts it shows are what happened.
//! - Restarts mid-drift, mode advisory, through the same Alertmanager and sink:
//!   the agent stopped with SIGTERM and with kill -9 (Prometheus sees every
//!   series go stale) and started again with the same config and state keeps
//!   one incident (the same `activeAt`, the same `startsAt`, no resolved
//!   notification) until a commit resolves it; then resolutions on both sides
//!   of a restart are counted exactly by the dashboard.
//! - Mode enforced: every other rule that can start within seconds is driven
//!   into pending or firing by the situation it is about, proving its joins
//!   match the real series, not only promtool's hand-written ones.
//!
//! Only loopback. Prometheus and Alertmanager come from `.ci/install-tools` (or
//! PATH): missing, a test skips with a printed reason, or fails under `CI=true`.
//! Cost: the flow takes about 12 s (checks, scrapes, rule evaluations and group
//! timers of 1 s each); the restarts about 20 s (three stops, each waiting for
//! Prometheus to see the gap and for the restarted agent's first check); the
//! rules test 15–70 s, because ConfigDriftUnknown reads a 1 m subquery grid and
//! needs a minute boundary after the bot's series appear. Two run side by side.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use support::agent::AgentProcess;
use support::bots::Reply;
use support::fleet_agent::{Fleet, SYNCED, with_limit};
use support::tools::{self, Alertmanager, Prometheus, grafana};

/// Generous bound for one hop of the pipeline (a check, a scrape, a rule
/// evaluation, an Alertmanager group flush, each 1 s): a busy 2-core CI machine
/// must not make this flaky.
const SOON: Duration = Duration::from_secs(45);

/// Where the example config's placeholders point: paths are kept, so the sink
/// tells the receivers apart.
const ONCALL_PATH: &str = "/v1/webhook/gov-oncall";
const CHAT_PATH: &str = "/services/REPLACE/ME";

// ---------------------------------------------------------------------------
// The fleet (tests/support/fleet_agent.rs) with this file's config shapes

/// The agent's config: `top` at the top level, one `[[bots]]` per slug.
fn agent_config(fleet: &Fleet, slugs: &[&str], top: &str) -> PathBuf {
    fleet.config(slugs, top, "")
}

/// The agent's config reading its bots from `registry.toml` (re-read before
/// every check), which starts with `slugs`.
fn config_with_registry(fleet: &Fleet, slugs: &[&str], top: &str) -> PathBuf {
    let bots: String = slugs
        .iter()
        .map(|s| Fleet::bot_entry(s, &fleet.bots.url(&format!("/{s}"))))
        .collect();
    std::fs::write(fleet.dir.path().join("registry.toml"), bots).expect("registry written");
    agent_config(
        fleet,
        &[],
        &format!("{top}\nregistry_file = \"registry.toml\""),
    )
}

// ---------------------------------------------------------------------------
// The webhook sink: every POST Alertmanager makes, with its path and JSON body

#[derive(Clone, Debug)]
struct Post {
    path: String,
    body: Value,
}

struct Sink {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let addr = listener.local_addr().expect("the sink's address");
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let shared = Arc::clone(&posts);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let posts = Arc::clone(&shared);
                std::thread::spawn(move || serve_sink(stream, &posts));
            }
        });
        Sink { addr, posts }
    }

    fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("sink posts").clone()
    }

    /// Polls until a post to `path` satisfies `pred`; returns it.
    async fn wait(&self, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + SOON;
        loop {
            if let Some(p) = self
                .posts()
                .into_iter()
                .find(|p| p.path == path && pred(&p.body))
            {
                return p.body;
            }
            assert!(
                Instant::now() < end,
                "no {what} reached {path} within {SOON:?}; the sink got:\n{:#?}",
                self.posts()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// HTTP/1.1 with keep-alive (Alertmanager's client reuses connections); bodies
/// by Content-Length or chunked. Anything unparsable ends the connection.
fn serve_sink(stream: TcpStream, posts: &Mutex<Vec<Post>>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if chunked {
            match read_chunked(&mut reader) {
                Some(b) => b,
                None => return,
            }
        } else {
            let mut b = vec![0u8; length];
            if reader.read_exact(&mut b).is_err() {
                return;
            }
            b
        };
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        posts.lock().expect("sink posts").push(Post { path, body });
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

// ---------------------------------------------------------------------------
// Configs for the real tools

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()))
}

/// The example Alertmanager config with its placeholder URLs pointed at the
/// sink and every group_wait/group_interval at 1 s (the shipped 10 s–5 m would
/// make the test wait minutes). Nothing else changes: routes, receivers,
/// `send_resolved` and inhibitions are the shipped ones.
fn alertmanager_config(sink: &Sink) -> String {
    let text = repo_file("alerts/alertmanager.example.yml");
    let receiver_configs = text.matches("_configs:").count();
    assert_eq!(
        text.matches("send_resolved: true").count(),
        receiver_configs,
        "every receiver of the example config must send resolved notifications"
    );
    let mut timers = 0;
    let rewritten: Vec<String> = text
        .lines()
        .map(|line| {
            let key = line.trim_start();
            if key.starts_with("group_wait:") || key.starts_with("group_interval:") {
                timers += 1;
                let indent = &line[..line.len() - key.len()];
                let name = key.split(':').next().unwrap_or(key);
                format!("{indent}{name}: 1s")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(
        timers >= 2,
        "the example config has no group timers to shorten"
    );
    let replaced = rewritten
        .join("\n")
        .replace("https://pager.example.invalid/", &sink.base_url())
        .replace("https://hooks.slack.example.invalid/", &sink.base_url());
    assert!(!replaced.contains("example.invalid"), "a placeholder left");
    replaced
}

/// Scrapes the agent every second, evaluates the shipped rules every second and
/// sends to `alertmanager` if there is one. `job` and `instance` are the ones
/// any scrape adds.
fn prometheus_config(agent: SocketAddr, alertmanager: Option<&Alertmanager>) -> String {
    let alerting = alertmanager.map_or(String::new(), |am| {
        format!(
            "alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{}']
",
            am.port
        )
    });
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - config-drift.rules.yml
{alerting}scrape_configs:
  - job_name: config-drift-detector
    static_configs:
      - targets: ['{agent}']
"
    )
}

/// Prometheus with the shipped rules, copied unchanged, scraping `agent`.
async fn start_prometheus(agent: SocketAddr, alertmanager: Option<&Alertmanager>) -> Prometheus {
    Prometheus::start_with_files(
        &prometheus_config(agent, alertmanager),
        &[(
            "config-drift.rules.yml",
            &repo_file("alerts/config-drift.rules.yml"),
        )],
    )
    .await
    .expect("Prometheus starts with the shipped rules")
}

// ---------------------------------------------------------------------------
// Prometheus' HTTP API beyond what the starter offers

/// GET `path` with `params` from Prometheus' API; returns `data` of a
/// successful reply.
async fn api(prom: &Prometheus, path: &str, params: &[(&str, &str)]) -> Value {
    let mut url = reqwest::Url::parse(&format!("{}{path}", prom.url())).expect("a loopback URL");
    url.query_pairs_mut().extend_pairs(params);
    let reply = tools::http_client()
        .get(url.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let text = reply.text().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    assert_eq!(v["status"], "success", "{url}: {text}");
    v["data"].clone()
}

/// The shipped rule group as Prometheus runs it (`/api/v1/rules`).
async fn rules(prom: &Prometheus) -> Vec<Value> {
    let data = api(prom, "/api/v1/rules", &[]).await;
    data["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn rfc3339(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(ts).ok()
}

/// Polls until every rule has been evaluated after `after`; asserts each
/// evaluation succeeded (a join that does not match the real series' labels,
/// e.g. many-to-many, shows up here as `health: err`).
async fn wait_rules_evaluated_after(prom: &Prometheus, after: SystemTime) -> Vec<Value> {
    let end = Instant::now() + SOON;
    loop {
        let rules = rules(prom).await;
        let bad: Vec<String> = rules
            .iter()
            .filter(|r| r["health"] == "err")
            .map(|r| format!("{}: {}", r["name"], r["lastError"]))
            .collect();
        assert!(
            bad.is_empty(),
            "rules fail against the agent's series: {bad:#?}"
        );
        let evaluated = !rules.is_empty()
            && rules.iter().all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .and_then(rfc3339)
                    .is_some_and(|t| t > after)
            });
        if evaluated {
            return rules;
        }
        assert!(
            Instant::now() < end,
            "the rules were not all evaluated within {SOON:?}: {rules:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls an instant query until it returns a series whose value is `value`.
async fn wait_value(prom: &Prometheus, promql: &str, value: f64) {
    let end = Instant::now() + SOON;
    loop {
        let result = prom.query(promql).await.expect("query");
        let hit = result.as_array().into_iter().flatten().any(|s| {
            s["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v == value)
        });
        if hit {
            return;
        }
        assert!(
            Instant::now() < end,
            "{promql} did not reach {value} within {SOON:?}; last: {result}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Alertmanager's notifications

/// The ConfigDriftDetected alert for `bot` inside a webhook notification with
/// this overall `status`, if it has one.
fn drift_alert<'a>(notification: &'a Value, bot: &str, status: &str) -> Option<&'a Value> {
    if notification["status"] != status {
        return None;
    }
    notification["alerts"].as_array()?.iter().find(|a| {
        a["labels"]["alertname"] == "ConfigDriftDetected"
            && a["labels"]["bot_id"] == bot
            && a["status"] == status
    })
}

/// Whether any notification so far names `bot`.
fn notified_about(sink: &Sink, bot: &str) -> bool {
    sink.posts().iter().any(|p| {
        p.body
            .to_string()
            .contains(&format!("\"bot_id\":\"{bot}\""))
    })
}

// ---------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edit_pages_through_alertmanager_a_commit_resolves_it_and_every_panel_has_data() {
    if !tools::require_all(&["prometheus", "alertmanager"]) {
        return;
    }
    let began = Instant::now();
    let sink = Sink::start();
    let am = Alertmanager::start(&alertmanager_config(&sink))
        .await
        .expect("Alertmanager starts with the example config");

    let slugs = ["alpha", "beta"];
    let fleet = Fleet::new(&slugs);
    let config = agent_config(&fleet, &slugs, "mode = \"advisory\"");
    let agent = tokio::task::block_in_place(|| fleet.start(&config, "1s"));

    let prom = start_prometheus(agent.addr, Some(&am)).await;
    let instance = agent.addr.to_string();

    // Bots in sync: the rules see the agent's series, evaluate cleanly, page nothing.
    for slug in slugs {
        wait_value(
            &prom,
            &format!(r#"bots_in_drift{{bot_id="{slug}",instance="{instance}"}}"#),
            0.0,
        )
        .await;
    }
    wait_value(
        &prom,
        r#"drift_detector_info{job="config-drift-detector",mode="advisory"}"#,
        1.0,
    )
    .await;
    let in_sync = wait_rules_evaluated_after(&prom, SystemTime::now()).await;
    let active: Vec<&Value> = in_sync
        .iter()
        .flat_map(|r| r["alerts"].as_array().into_iter().flatten())
        .collect();
    assert!(
        active.is_empty(),
        "alerts while every bot is in sync: {active:#?}"
    );
    assert!(
        sink.posts().is_empty(),
        "notifications while in sync: {:#?}",
        sink.posts()
    );

    // A live edit: ConfigDriftDetected for alpha reaches gov-oncall, and the chat.
    tokio::task::block_in_place(|| fleet.edit("alpha", &with_limit(12)));
    let fired = sink
        .wait(ONCALL_PATH, "a firing ConfigDriftDetected for alpha", |n| {
            drift_alert(n, "alpha", "firing").is_some()
        })
        .await;
    let alert = drift_alert(&fired, "alpha", "firing").expect("the alert");
    assert_eq!(fired["receiver"], "gov-oncall", "{fired:#}");
    assert_eq!(alert["labels"]["severity"], "warning", "{alert:#}");
    assert_eq!(alert["labels"]["job"], "config-drift-detector", "{alert:#}");
    assert_eq!(alert["labels"]["shard"], "1/1", "{alert:#}");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("alpha") && s.contains("1 field")),
        "{alert:#}"
    );
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("runbook.md#configdriftdetected")),
        "{alert:#}"
    );
    sink.wait(CHAT_PATH, "the #polytraders-gov copy", |n| {
        n["channel"] == "#polytraders-gov" && n.to_string().contains("alpha")
    })
    .await;
    assert!(
        !notified_about(&sink, "beta"),
        "beta is in sync but was notified: {:#?}",
        sink.posts()
    );

    // A commit adopting the edit: the resolved notification arrives.
    fleet.repo.write("bots/alpha.json", &with_limit(12));
    fleet.repo.commit("adopt limit 12 for alpha");
    let resolved = sink
        .wait(
            ONCALL_PATH,
            "a resolved ConfigDriftDetected for alpha",
            |n| drift_alert(n, "alpha", "resolved").is_some(),
        )
        .await;
    assert_eq!(resolved["receiver"], "gov-oncall", "{resolved:#}");

    // For the dashboard: a drift open now (tables of drifting bots), next to
    // alpha's resolved episode (resolution histograms).
    tokio::task::block_in_place(|| fleet.edit("beta", &with_limit(7)));
    wait_value(
        &prom,
        &format!(r#"bots_in_drift{{bot_id="beta",instance="{instance}"}}"#),
        1.0,
    )
    .await;
    let after_flow = wait_rules_evaluated_after(&prom, SystemTime::now()).await;
    assert!(!after_flow.is_empty(), "Prometheus lists no rules");
    assert!(
        after_flow.iter().all(|r| r["health"] == "ok"),
        "{after_flow:#?}"
    );

    let panels = run_panel_queries(&prom, &instance, began.elapsed()).await;
    let failing: Vec<String> = panels
        .iter()
        .filter(|q| !has_data(&q.data))
        .map(|q| {
            format!(
                "{:?} {} ({}): {}\n  → {}",
                q.title,
                q.ref_id,
                if q.instant { "instant" } else { "range" },
                q.expr,
                q.data["result"]
            )
        })
        .collect();
    assert!(
        failing.is_empty(),
        "dashboard panels without data from a Prometheus fed by the agent:\n{}",
        failing.join("\n")
    );
    // A count that falls back to `or vector(0)` has data whatever its selector
    // matches: its selector must match the agent's series by itself. Opened up
    // (`== 1` → `>= 0`) and without the fallback, each must still have data.
    let mut fallbacks = 0;
    for q in &panels {
        let Some(core) = q.expr.strip_suffix(" or vector(0)") else {
            continue;
        };
        fallbacks += 1;
        let opened = core.replace(" == 1", " >= 0");
        let data = api(&prom, "/api/v1/query", &[("query", &opened)]).await;
        assert!(
            has_data(&data),
            "{:?} {}: without its fallback, {opened} matches no series of the agent: {}",
            q.title,
            q.ref_id,
            data["result"]
        );
    }
    assert!(fallbacks >= 4, "only {fallbacks} queries with a fallback");
    // What the panels show is what happened: one bot drifting now (beta), one
    // episode resolved (alpha's), counted once.
    let max_of = |title: &str, ref_id: &str| {
        let q = panels
            .iter()
            .find(|q| q.title == title && q.ref_id == ref_id)
            .unwrap_or_else(|| panic!("no panel {title:?} {ref_id}"));
        max_sample(&q.data)
    };
    assert_eq!(max_of("Bots in drift", "A"), Some(1.0));
    assert_eq!(max_of("Episodes resolved", "A"), Some(1.0));
    let drifting = &panels
        .iter()
        .find(|q| q.title == "Drifting bots" && q.ref_id == "A")
        .expect("the drifting bots table")
        .data["result"];
    assert_eq!(drifting[0]["metric"]["bot_id"], "beta", "{drifting}");
    assert!(
        max_of("Resolution time, dashboard range", "A").is_some_and(|m| m > 0.0 && m <= 1.0),
        "alpha's episode lasted seconds, so its median falls in the first bucket (≤ 1 min)"
    );
    eprintln!("alerts e2e took {:?}", began.elapsed());
}

/// One dashboard query and Prometheus' answer (`data` of the reply).
struct PanelResult {
    title: String,
    ref_id: String,
    expr: String,
    instant: bool,
    data: Value,
}

/// Runs every dashboard query against `prom` as Grafana would for a dashboard
/// showing the test's whole run: stat and table panels as instant queries,
/// time series as range queries over the run with a 1 s step.
async fn run_panel_queries(prom: &Prometheus, instance: &str, ran: Duration) -> Vec<PanelResult> {
    let range_s = ran.as_secs() + 5;
    let vars = grafana::Vars {
        // Grafana sends one selected value as is (its dots match themselves too).
        instance: instance.to_owned(),
        rate_interval: "15s".to_owned(),
        interval: "1s".to_owned(),
        range: format!("{range_s}s"),
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let (start, end) = (format!("{}", now - range_s as f64), format!("{now}"));
    let mut results = Vec::new();
    for (title, ref_id, expr, instant) in grafana::runnable_queries(&vars) {
        let data = if instant {
            api(prom, "/api/v1/query", &[("query", &expr), ("time", &end)]).await
        } else {
            api(
                prom,
                "/api/v1/query_range",
                &[
                    ("query", &expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", "1"),
                ],
            )
            .await
        };
        results.push(PanelResult {
            title,
            ref_id,
            expr,
            instant,
            data,
        });
    }
    let titles: BTreeSet<&str> = results.iter().map(|r| r.title.as_str()).collect();
    assert!(titles.len() >= 15, "only {} panels queried", titles.len());
    results
}

/// Every sample's value, of an instant (`value`) or a range (`values`) reply.
fn samples(data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for s in data["result"].as_array().into_iter().flatten() {
        let points = s
            .get("value")
            .into_iter()
            .chain(s["values"].as_array().into_iter().flatten());
        out.extend(points.filter_map(|p| p[1].as_str().map(str::to_owned)));
    }
    out
}

fn max_sample(data: &Value) -> Option<f64> {
    samples(data)
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .reduce(f64::max)
}

/// A query has data when it returns a series with at least one sample that is
/// not NaN (Grafana draws NaN as nothing).
fn has_data(data: &Value) -> bool {
    samples(data).iter().any(|v| v != "NaN")
}

// ---------------------------------------------------------------------------
// Every rule's joins against the real agent's series

/// Polls the rules API until rule `name` holds an alert (pending or firing)
/// whose labels include `labels`; returns that alert. A `for:` of minutes does
/// not delay this: a pending alert already proves the expression matched the
/// agent's real series through every join.
async fn wait_alert(
    prom: &Prometheus,
    name: &str,
    labels: &[(&str, &str)],
    within: Duration,
) -> Value {
    let end = Instant::now() + within;
    loop {
        let rules = rules(prom).await;
        let rule = rules
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no rule {name} loaded"));
        assert_eq!(rule["health"], "ok", "{rule:#}");
        let found = rule["alerts"].as_array().into_iter().flatten().find(|a| {
            labels.iter().all(|(k, v)| a["labels"][*k] == *v)
                && matches!(a["state"].as_str(), Some("pending" | "firing"))
        });
        if let Some(alert) = found {
            return alert.clone();
        }
        assert!(
            Instant::now() < end,
            "{name} with {labels:?} was neither pending nor firing within {within:?}: {rule:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rules other than ConfigDriftDetected, each driven by what would raise it
/// in production, until it is pending or firing against the real agent's series
/// as Prometheus labels them (`job`, `instance`). Not covered, because they
/// need what this test cannot make in seconds: ConfigDriftCheckStale (a minute
/// without a successful check) and ConfigDriftDetectorPausedTooLong (a pause
/// held for hours; its expression is unit-tested with promtool, and a pause's
/// effect on paging is proven by `a_pause_silences_paging_and_resume_restores_it`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_quick_rule_goes_pending_or_firing_against_the_real_agent() {
    if tools::require("prometheus").is_none() {
        return;
    }
    let slugs = ["a", "b", "c", "d"];
    let fleet = Fleet::new(&slugs);
    let config = agent_config(&fleet, &slugs, "mode = \"enforced\"");
    let mut agent = tokio::task::block_in_place(|| fleet.start(&config, "1s"));
    let prom = start_prometheus(agent.addr, None).await;
    for slug in slugs {
        wait_value(&prom, &format!(r#"bots_in_drift{{bot_id="{slug}"}}"#), 0.0).await;
    }

    // d stops answering: UNKNOWN. The rule reconstructs the spell's start on a
    // 1 m subquery grid, so it needs a minute boundary with data: up to 60 s.
    fleet.bots.set("/d", Reply::Status(503));
    // Three of four bots drift: each one's drift, its enforced escalation, and
    // the fleet-wide mass drift.
    tokio::task::block_in_place(|| {
        for slug in ["a", "b", "c"] {
            fleet.edit(slug, &with_limit(20));
        }
    });
    for slug in ["a", "b", "c"] {
        let detected = wait_alert(&prom, "ConfigDriftDetected", &[("bot_id", slug)], SOON).await;
        assert_eq!(detected["labels"]["severity"], "warning", "{detected:#}");
        let unresolved =
            wait_alert(&prom, "ConfigDriftUnresolved", &[("bot_id", slug)], SOON).await;
        assert_eq!(
            unresolved["labels"]["severity"], "critical",
            "{unresolved:#}"
        );
    }
    let mass = wait_alert(
        &prom,
        "ConfigDriftMassDrift",
        &[("job", "config-drift-detector"), ("branch", "main")],
        SOON,
    )
    .await;
    assert_eq!(mass["value"], "3e+00", "{mass:#}");
    wait_alert(
        &prom,
        "ConfigDriftUnknown",
        &[("bot_id", "d"), ("shard", "1/1")],
        Duration::from_secs(90),
    )
    .await;

    // The registry loses a bot (4 → 3, under 80 %) through an accepted reload.
    let instance = agent.addr.to_string();
    let good = agent_config(&fleet, &["a", "b", "c"], "mode = \"enforced\"");
    agent.signal(libc::SIGHUP);
    wait_alert(
        &prom,
        "ConfigDriftRegistryShrank",
        &[("instance", &instance)],
        SOON,
    )
    .await;

    // A re-read config is refused: the alert holds across the checks that
    // follow (it waits 10 m before paging).
    refuse_config_reload(&agent, &good);
    let refused = [("instance", instance.as_str())];
    wait_alert(&prom, "ConfigDriftConfigReloadFailing", &refused, SOON).await;
    stays_active(&prom, "ConfigDriftConfigReloadFailing", &refused).await;

    // The agent dies: no healthy detector for its shard.
    tokio::task::block_in_place(|| agent.kill9());
    wait_alert(
        &prom,
        "ConfigDriftDetectorDown",
        &[("job", "config-drift-detector"), ("shard", "1/1")],
        SOON,
    )
    .await;
}

/// Rewrites the agent's config with an unknown key and sends SIGHUP, which the
/// agent must refuse.
fn refuse_config_reload(agent: &AgentProcess, config: &Path) {
    let good = std::fs::read_to_string(config).expect("config");
    std::fs::write(config, format!("chek_interval_minutes = 5\n{good}")).expect("config written");
    agent.signal(libc::SIGHUP);
}

/// How long an alert must stay pending to show it survives the checks after it
/// began: five 1 s checks, scrapes and evaluations.
const HOLD: Duration = Duration::from_secs(5);

/// Polls the rules API for [`HOLD`], asserting at every poll that the alert is
/// still pending or firing (a `for:` restarts from zero if it drops once).
async fn stays_active(prom: &Prometheus, name: &str, labels: &[(&str, &str)]) {
    let end = Instant::now() + HOLD;
    while Instant::now() < end {
        let rules = rules(prom).await;
        let alerts: Vec<&Value> = rules
            .iter()
            .filter(|r| r["name"] == name)
            .flat_map(|r| r["alerts"].as_array().into_iter().flatten())
            .collect();
        assert!(
            alerts
                .iter()
                .any(|a| labels.iter().all(|(k, v)| a["labels"][*k] == *v)),
            "{name} with {labels:?} dropped within {HOLD:?} of going pending: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// ConfigDriftConfigReloadFailing must also hold for an agent that reads its
/// bots from a registry file: the accepted registry re-read before every check
/// must not hide a refused config (`drift_config_last_reload_successful` shows
/// both), or the alert's 10 m `for:` would never complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_config_keeps_alerting_while_the_registry_file_is_reread() {
    if tools::require("prometheus").is_none() {
        return;
    }
    let slugs = ["a", "b"];
    let fleet = Fleet::new(&slugs);
    let config = config_with_registry(&fleet, &slugs, "mode = \"advisory\"");
    let agent = tokio::task::block_in_place(|| fleet.start(&config, "1s"));
    let prom = start_prometheus(agent.addr, None).await;
    wait_value(&prom, r#"bots_in_drift{bot_id="b"}"#, 0.0).await;
    let instance = agent.addr.to_string();
    let refused = [("instance", instance.as_str())];
    refuse_config_reload(&agent, &config);
    wait_alert(&prom, "ConfigDriftConfigReloadFailing", &refused, SOON).await;
    stays_active(&prom, "ConfigDriftConfigReloadFailing", &refused).await;
}

// ---------------------------------------------------------------------------
// Pause and acks against the real agent

/// The admin identities of [`a_pause_and_a_two_person_ack_silence_the_drift_alert`].
const TOKENS: &[(&str, &str, &str)] = &[
    ("olga", "oncall", "tok-oncall-olga"),
    ("oscar", "oncall", "tok-oncall-oscar"),
    ("ada", "admin", "tok-admin-ada"),
];

/// `POST` to the agent's admin API with `token`; the status and JSON answer.
async fn admin_post(agent: &AgentProcess, path: &str, token: &str, body: &str) -> (u16, Value) {
    let url = format!("http://{}/api/v1{path}", agent.addr);
    let reply = tools::http_client()
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The alerts (pending or firing) rule `name` holds for bot `bot`.
fn alerts_for<'a>(rules: &'a [Value], name: &str, bot: &str) -> Vec<&'a Value> {
    rules
        .iter()
        .filter(|r| r["name"] == name)
        .flat_map(|r| r["alerts"].as_array().into_iter().flatten())
        .filter(|a| a["labels"]["bot_id"] == bot)
        .collect()
}

/// Waits until Prometheus holds `promql` at `value`, then for a rule evaluation
/// after that, and returns the rules as evaluated then.
async fn rules_once_seen(prom: &Prometheus, promql: &str, value: f64) -> Vec<Value> {
    wait_value(prom, promql, value).await;
    wait_rules_evaluated_after(prom, SystemTime::now()).await
}

/// §9 and §13 end to end: while the agent is paused, or while a drift carries
/// an active two-person ack, the shipped rules do not page the drift that the
/// agent still reports; resuming pages it again. A 300 s interval keeps the ack
/// alive for the whole test (only a scheduled check ends it); checks are run
/// through `POST /check`, which does not end acks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_and_a_two_person_ack_silence_the_drift_alert() {
    if tools::require("prometheus").is_none() {
        return;
    }
    let fleet = Fleet::new(&["alpha"]);
    let mut extra = Fleet::bot_entry("alpha", &fleet.bots.url("/alpha"));
    for (name, role, token) in TOKENS {
        use sha2::Digest as _;
        let sha = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        extra.push_str(&format!(
            "[[auth.tokens]]\nname = {name:?}\nrole = {role:?}\nsha256 = {sha:?}\n\n"
        ));
    }
    let config = fleet.write_config("mode = \"advisory\"", "", &extra);
    let agent = tokio::task::block_in_place(|| fleet.start(&config, "300s"));
    let prom = start_prometheus(agent.addr, None).await;
    wait_value(&prom, r#"bots_in_drift{bot_id="alpha"}"#, 0.0).await;
    let [olga, oscar, ada] = [TOKENS[0].2, TOKENS[1].2, TOKENS[2].2];

    tokio::task::block_in_place(|| fleet.edit("alpha", &with_limit(12)));
    assert_eq!(admin_post(&agent, "/check", olga, "").await.0, 200);
    wait_alert(&prom, "ConfigDriftDetected", &[("bot_id", "alpha")], SOON).await;

    // Paused: the drift is still reported, and nothing pages it.
    let (status, _) = admin_post(&agent, "/pause", ada, r#"{"reason":"maintenance"}"#).await;
    assert_eq!(status, 200);
    let rules = rules_once_seen(&prom, "drift_detector_paused", 1.0).await;
    assert_eq!(
        alerts_for(&rules, "ConfigDriftDetected", "alpha"),
        Vec::<&Value>::new(),
        "paused, yet paging"
    );
    wait_value(&prom, r#"bots_in_drift{bot_id="alpha"}"#, 1.0).await;
    wait_alert(&prom, "ConfigDriftDetectorPausedTooLong", &[], SOON).await;

    // Resumed: it pages again.
    assert_eq!(admin_post(&agent, "/resume", ada, "").await.0, 200);
    let rules = rules_once_seen(&prom, "drift_detector_paused", 0.0).await;
    assert_eq!(alerts_for(&rules, "ConfigDriftDetected", "alpha").len(), 1);

    // Acknowledged by two people: quiet while the ack is active.
    let (status, ack) = admin_post(
        &agent,
        "/bots/alpha/acks",
        olga,
        r#"{"reason":"hotfix in flight"}"#,
    )
    .await;
    assert_eq!(status, 201, "{ack}");
    let id = ack["id"].as_str().expect("an ack id");
    let (status, active) = admin_post(&agent, &format!("/acks/{id}/approve"), oscar, "").await;
    assert_eq!(status, 200, "{active}");
    let rules = rules_once_seen(&prom, r#"drift_acknowledged{bot_id="alpha"}"#, 1.0).await;
    assert_eq!(
        alerts_for(&rules, "ConfigDriftDetected", "alpha"),
        Vec::<&Value>::new(),
        "acknowledged, yet paging"
    );
    wait_value(&prom, r#"bots_in_drift{bot_id="alpha"}"#, 1.0).await;
}

// ---------------------------------------------------------------------------
// Restarts mid-drift: the pager sees one incident, the dashboard every resolution

/// How an agent goes away before it is started again.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// A clean shutdown (systemd's stop, an upgrade).
    Sigterm,
    /// A crash.
    Kill9,
}

/// The ConfigDriftDetected alert for `bot` as Alertmanager holds it now (API
/// v2), if it holds one.
async fn am_drift_alert(am: &Alertmanager, bot: &str) -> Option<Value> {
    let alerts = am.alerts().await.expect("Alertmanager's /api/v2/alerts");
    alerts.as_array()?.iter().find_map(|a| {
        (a["labels"]["alertname"] == "ConfigDriftDetected" && a["labels"]["bot_id"] == bot)
            .then(|| a.clone())
    })
}

/// Every alert about ConfigDriftDetected for `bot` that reached gov-oncall,
/// firing or resolved, in arrival order.
fn oncall_drift_alerts(sink: &Sink, bot: &str) -> Vec<Value> {
    sink.posts()
        .into_iter()
        .filter(|p| p.path == ONCALL_PATH)
        .flat_map(|p| p.body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["labels"]["alertname"] == "ConfigDriftDetected" && a["labels"]["bot_id"] == bot
        })
        .collect()
}

/// The one firing ConfigDriftDetected alert Prometheus holds for `bot`.
fn prom_drift_alert(rules: &[Value], bot: &str) -> Value {
    let alerts = alerts_for(rules, "ConfigDriftDetected", bot);
    assert_eq!(
        alerts.len(),
        1,
        "ConfigDriftDetected for {bot}: {alerts:#?}"
    );
    assert_eq!(alerts[0]["state"], "firing", "{:#}", alerts[0]);
    alerts[0].clone()
}

/// Stops `agent` as `how`, waits until Prometheus has seen it gone (a failed
/// scrape: every series stale) and has evaluated the rules in that gap, and
/// returns those rules. A restart quicker than one scrape would prove nothing.
async fn stop_and_see_the_gap(
    prom: &Prometheus,
    agent: &mut AgentProcess,
    how: Stop,
) -> Vec<Value> {
    let instance = agent.addr.to_string();
    tokio::task::block_in_place(|| match how {
        Stop::Sigterm => {
            let status = agent.terminate(SOON);
            assert!(status.success(), "SIGTERM: {status}\n{}", agent.log_text());
        }
        Stop::Kill9 => agent.kill9(),
    });
    let up = format!(r#"up{{job="config-drift-detector",instance="{instance}"}}"#);
    wait_value(prom, &up, 0.0).await;
    let rules = wait_rules_evaluated_after(prom, SystemTime::now()).await;
    let gone = prom
        .query(&format!(r#"bots_in_drift{{instance="{instance}"}}"#))
        .await
        .expect("query");
    assert_eq!(
        gone,
        serde_json::json!([]),
        "no gap: the agent's series are still current"
    );
    rules
}

/// Starts the agent again with the same config and state, waits for its first
/// check and for Prometheus to have scraped its result (a successful check
/// newer than the start), then for a rule evaluation after that; returns the
/// agent and those rules.
async fn start_and_see_it_checked(
    prom: &Prometheus,
    fleet: &Fleet,
    config: &Path,
) -> (AgentProcess, Vec<Value>) {
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let agent = tokio::task::block_in_place(|| {
        let agent = fleet.start(config, "1s");
        agent.wait_checks(1, SOON);
        agent
    });
    let instance = agent.addr.to_string();
    prom.wait_for_series(
        &format!(
            r#"drift_last_success_timestamp_seconds{{instance="{instance}"}} > {started}
               and on (instance) bots_in_drift{{bot_id="alpha"}}"#
        ),
        SOON,
    )
    .await
    .expect("Prometheus scrapes the restarted agent's first check");
    let rules = wait_rules_evaluated_after(prom, SystemTime::now()).await;
    (agent, rules)
}

/// An RFC 3339 time from Alertmanager as an instant: its API and its webhook
/// write the same one with and without trailing zeros (`.760Z`, `.76Z`).
fn instant(v: &Value) -> SystemTime {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    rfc3339(text).unwrap_or_else(|| panic!("`{text}` is not an RFC 3339 time"))
}

/// The issue's restart case, against the real Prometheus and Alertmanager: a bot
/// drifts (advisory) and gov-oncall is paged; the agent is stopped (SIGTERM,
/// then kill -9) long enough for Prometheus to see every series go stale, and
/// started again with the same config and state. Through each gap and after the
/// agent is back and has checked, Prometheus holds the same firing alert (same
/// `activeAt`), Alertmanager the same `startsAt`, and no resolved notification
/// reaches the sink; a commit then delivers the one resolved notification, with
/// the original `startsAt`. Then resolutions on both sides of a restart (a
/// commit, a revert, a clear followed at once by a new episode, a revert) are
/// what the dashboard's "Episodes resolved, dashboard range" counts, exactly as
/// many as the agents logged `GOV_CONFIG_DRIFT_RESOLVED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_drift_neither_resolves_nor_repages_and_the_dashboard_counts_every_resolution()
 {
    if !tools::require_all(&["prometheus", "alertmanager"]) {
        return;
    }
    let began = Instant::now();
    let sink = Sink::start();
    let am = Alertmanager::start(&alertmanager_config(&sink))
        .await
        .expect("Alertmanager starts with the example config");
    let slugs = ["alpha", "beta"];
    let fleet = Fleet::new(&slugs);
    let mut extra: String = slugs
        .iter()
        .map(|s| Fleet::bot_entry(s, &fleet.bots.url(&format!("/{s}"))))
        .collect();
    for (name, role, token) in TOKENS {
        use sha2::Digest as _;
        let sha = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        extra.push_str(&format!(
            "[[auth.tokens]]\nname = {name:?}\nrole = {role:?}\nsha256 = {sha:?}\n\n"
        ));
    }
    let config = fleet.write_config("mode = \"advisory\"", "", &extra);
    let ada = TOKENS[2].2;
    let mut agent = tokio::task::block_in_place(|| fleet.start(&config, "1s"));
    // Every process the test ran, for their RESOLVED records at the end.
    let mut stopped: Vec<AgentProcess> = Vec::new();
    let prom = start_prometheus(agent.addr, Some(&am)).await;
    let instance = agent.addr.to_string();
    for slug in slugs {
        wait_value(&prom, &format!(r#"bots_in_drift{{bot_id="{slug}"}}"#), 0.0).await;
    }

    // alpha drifts: gov-oncall is paged once.
    tokio::task::block_in_place(|| fleet.edit("alpha", &with_limit(12)));
    sink.wait(ONCALL_PATH, "a firing ConfigDriftDetected for alpha", |n| {
        drift_alert(n, "alpha", "firing").is_some()
    })
    .await;
    let starts_at = oncall_drift_alerts(&sink, "alpha")[0]["startsAt"].clone();
    let am_alert = am_drift_alert(&am, "alpha")
        .await
        .expect("Alertmanager holds it");
    assert_eq!(
        instant(&am_alert["startsAt"]),
        instant(&starts_at),
        "{am_alert:#}"
    );
    let rules = wait_rules_evaluated_after(&prom, SystemTime::now()).await;
    let active_at = prom_drift_alert(&rules, "alpha")["activeAt"].clone();

    for how in [Stop::Sigterm, Stop::Kill9] {
        let in_gap = stop_and_see_the_gap(&prom, &mut agent, how).await;
        assert_eq!(
            prom_drift_alert(&in_gap, "alpha")["activeAt"],
            active_at,
            "{how:?}: the alert went inactive in the gap"
        );
        let (restarted, back) = start_and_see_it_checked(&prom, &fleet, &config).await;
        stopped.push(std::mem::replace(&mut agent, restarted));
        assert_eq!(
            prom_drift_alert(&back, "alpha")["activeAt"],
            active_at,
            "{how:?}: the alert started over after the restart"
        );
        let am_alert = am_drift_alert(&am, "alpha")
            .await
            .unwrap_or_else(|| panic!("{how:?}: Alertmanager dropped the alert"));
        assert_eq!(
            am_alert["status"]["state"], "active",
            "{how:?}: {am_alert:#}"
        );
        assert_eq!(
            instant(&am_alert["startsAt"]),
            instant(&starts_at),
            "{how:?}: {am_alert:#}"
        );
        let notified = oncall_drift_alerts(&sink, "alpha");
        assert!(
            notified
                .iter()
                .all(|a| a["status"] == "firing" && instant(&a["startsAt"]) == instant(&starts_at)),
            "{how:?}: gov-oncall saw the incident resolve or start again: {notified:#?}"
        );
        assert!(
            !notified_about(&sink, "beta"),
            "beta is in sync but was notified"
        );
    }

    // The commit resolves it: one resolved notification, for the same incident.
    fleet.repo.write("bots/alpha.json", &with_limit(12));
    fleet.repo.commit("adopt limit 12 for alpha");
    sink.wait(
        ONCALL_PATH,
        "a resolved ConfigDriftDetected for alpha",
        |n| drift_alert(n, "alpha", "resolved").is_some(),
    )
    .await;
    let notified = oncall_drift_alerts(&sink, "alpha");
    let resolved: Vec<&Value> = notified
        .iter()
        .filter(|a| a["status"] == "resolved")
        .collect();
    assert_eq!(resolved.len(), 1, "{notified:#?}");
    assert_eq!(
        instant(&resolved[0]["startsAt"]),
        instant(&starts_at),
        "{notified:#?}"
    );

    // Resolutions on both sides of another restart. alpha's resolution
    // histogram starts over with the process and reappears at 1, as it was
    // before: the count must not depend on it.
    stop_and_see_the_gap(&prom, &mut agent, Stop::Sigterm).await;
    let (restarted, _) = start_and_see_it_checked(&prom, &fleet, &config).await;
    stopped.push(std::mem::replace(&mut agent, restarted));
    let drift = |slug: &str| format!(r#"bots_in_drift{{bot_id="{slug}"}}"#);
    // alpha drifts again and is reverted to what is committed.
    tokio::task::block_in_place(|| fleet.edit("alpha", &with_limit(13)));
    wait_value(&prom, &drift("alpha"), 1.0).await;
    tokio::task::block_in_place(|| fleet.edit("alpha", &with_limit(12)));
    wait_value(&prom, &drift("alpha"), 0.0).await;
    // beta drifts, is cleared while still drifting (the next check opens a new
    // episode: its start jumps to a later time, never through 0), then reverted.
    tokio::task::block_in_place(|| fleet.edit("beta", &with_limit(7)));
    wait_value(&prom, &drift("beta"), 1.0).await;
    let first_since = prom
        .wait_for_series(r#"drift_since_timestamp_seconds{bot_id="beta"} > 0"#, SOON)
        .await
        .expect("beta's episode start")[0]["value"][1]
        .as_str()
        .expect("a sample value")
        .to_owned();
    let (status, cleared) = admin_post(
        &agent,
        "/bots/beta/clear",
        ada,
        r#"{"reason":"test: clear"}"#,
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    prom.wait_for_series(
        &format!(r#"drift_since_timestamp_seconds{{bot_id="beta"}} > {first_since}"#),
        SOON,
    )
    .await
    .expect("a new episode for beta after the clear");
    wait_value(&prom, &drift("beta"), 1.0).await;
    tokio::task::block_in_place(|| fleet.edit("beta", SYNCED));
    wait_value(&prom, &drift("beta"), 0.0).await;

    let logged: usize = stopped
        .iter()
        .chain(std::iter::once(&agent))
        .map(|a| a.gov("GOV_CONFIG_DRIFT_RESOLVED", None).len())
        .sum();
    assert_eq!(logged, 4, "commit, revert, clear, revert");
    wait_rules_evaluated_after(&prom, SystemTime::now()).await;
    let panels = run_panel_queries(&prom, &instance, began.elapsed()).await;
    let counted = panels
        .iter()
        .find(|q| q.title == "Episodes resolved, dashboard range" && q.ref_id == "A")
        .expect("the resolved-episodes stat");
    assert_eq!(
        max_sample(&counted.data),
        Some(logged as f64),
        "{}: {}",
        counted.expr,
        counted.data
    );
    let per_window = panels
        .iter()
        .find(|q| q.title == "Episodes resolved" && q.ref_id == "A")
        .expect("the resolved-episodes time series");
    assert!(
        max_sample(&per_window.data).is_some_and(|m| m >= 1.0),
        "{}: {}",
        per_window.expr,
        per_window.data
    );
    eprintln!("restart e2e took {:?}", began.elapsed());
}
