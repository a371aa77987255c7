//! `demo`: a self-contained tour on loopback, running the real agent in-process.
//! A temporary Git config repo with three bots and their schema, simulated bots
//! serving their running configs with an admin endpoint, the agent (the one `run`
//! starts: real config file, state database, telemetry, `/metrics`) checking every
//! two seconds, then a narrated live edit (drift detected) and a commit that adopts
//! it (resolved by commit). Everything lives in one temporary folder that is
//! removed on exit, also on Ctrl-C.
//!
//! Owns the story and its pacing only. Must not decide anything the agent decides
//! (statuses, episodes, resolutions): it narrates the agent's published check
//! views and its live `/metrics`, and waits for them with deadlines, never by
//! sleeping until something has probably happened.

mod bots;
mod repo;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::agent::{CheckResult, CheckView, Overrides};
use crate::app::{self, Setup, Signals};
use crate::latch::Resolution;
use crate::report::{ConfigDriftReport, MatchesCommit, Status};
use crate::shard::Shard;
use crate::telemetry::Telemetry;
use crate::telemetry::events::AgentNotStopped;
use crate::telemetry::export::{Protocol, Signal as OtelSignal};
use crate::time::{format_ms, now_ms};

use bots::SimulatedBots;
use repo::DemoRepo;

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "intraday_drawdown_pct": { "type": "number", "minimum": 0, "maximum": 100 },
    "max_position_usd": { "type": "integer", "default": 250000 },
    "venues": { "type": "array", "uniqueItems": true, "items": { "type": "string" } },
    "per_market": { "type": "array", "x-drift-key": "id",
                    "items": { "type": "object", "properties": { "id": { "type": "string" }, "max_usd": { "type": "number" } } } },
    "api_key": { "type": "string", "x-drift-secret": true },
    "runtime": { "type": "object", "x-drift-ignore": true }
  }
}"#;

const SLUGS: [&str; 3] = ["arb.us", "mm.eu", "risk.killswitch"];
/// The bot the on-call edits live.
const EDITED: &str = "risk.killswitch";
const ADOPTION_SUMMARY: &str = "Adopt 10% intraday drawdown for risk.killswitch";

/// The agent's check interval: short, so the story moves along.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Pause between steps so a person can read along.
const BEAT: Duration = Duration::from_millis(2500);
/// The whole story must be over by then (the first check clones the repo, so it
/// gets the most of it); past it the demo says what it was waiting for and ends.
const STORY_DEADLINE: Duration = Duration::from_secs(45);
/// Stopping the agent: a check in flight is dropped or finishes, the server stops.
const STOP_BOUND: Duration = Duration::from_secs(10);
/// OTLP metrics are pushed this often during the demo unless
/// `OTEL_METRIC_EXPORT_INTERVAL` says otherwise: the SDK's 60 s would outlast it.
const DEMO_METRIC_EXPORT_INTERVAL_MS: &str = "5000";

/// How the story ended (both exit 0).
enum Ending {
    Finished,
    Interrupted,
}

/// Tells the story; an error is one the command line reports (the demo keeps
/// `anyhow`: its failures are all "this step of the tour could not be done").
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cdd-demo")
        .build()?;
    // Taken before anything exists on disk: from here on Ctrl-C (or a SIGTERM)
    // ends the story through the cleanup below instead of killing the process.
    let mut stop = {
        let _in_runtime = runtime.enter();
        Signals::new().context("listening for Ctrl-C")?
    };
    let work = tempfile::Builder::new()
        .prefix("cdd-demo-")
        .tempdir()
        .context("creating a temporary folder")?;
    let folder = work.path().to_path_buf();
    println!(
        "config-drift-detector demo: everything runs on 127.0.0.1 in {} and is removed on exit.",
        folder.display()
    );
    println!("It takes about 10 s and ends by itself; Ctrl-C ends it earlier.\n");

    let mut telemetry = None;
    let story = tell(&runtime, &folder, &mut stop, &mut telemetry);

    // Tear down in order: the agent was stopped inside the story; what is left of
    // the runtime (the simulated bots) goes, then telemetry is flushed outside any
    // runtime (its providers block), then the folder goes.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Some(telemetry) = telemetry {
        app::shut_down(telemetry);
    }
    let removed = work
        .close()
        .with_context(|| format!("removing {}", folder.display()));
    let ending = story?;
    removed?;
    match ending {
        Ending::Finished => println!("\nRemoved {}. Done.", folder.display()),
        Ending::Interrupted => println!("Removed {}.", folder.display()),
    }
    if let Ending::Finished = ending {
        println!(
            "Next: `config-drift-detector validate --config FILE`, then `run --config FILE` on your own fleet (see README)."
        );
    }
    Ok(())
}

/// Everything the narration uses once the agent runs.
struct Scene<'a> {
    repo: &'a DemoRepo,
    bots: &'a SimulatedBots,
    first_commit: String,
    client: reqwest::Client,
    metrics_url: String,
}

/// Sets the scene, starts the agent, narrates, stops the agent. `telemetry` is
/// handed back to the caller, which shuts it down outside the runtime.
fn tell(
    runtime: &tokio::runtime::Runtime,
    folder: &Path,
    stop: &mut Signals,
    telemetry: &mut Option<Arc<Telemetry>>,
) -> anyhow::Result<Ending> {
    let repo_dir = folder.join("bot-configs");
    let repo = DemoRepo::init(&repo_dir).context("creating the demo repo")?;
    let mut files: Vec<(&str, String)> = vec![("schemas/bot.schema.json", SCHEMA.to_owned())];
    let paths: Vec<String> = SLUGS.iter().map(|s| format!("bots/{s}.json")).collect();
    for (slug, path) in SLUGS.iter().zip(&paths) {
        files.push((
            path,
            serde_json::to_string_pretty(&committed_config(slug, 12))?,
        ));
    }
    let first_commit = repo
        .commit(&files, "Grace Hopper", "Sign off fleet configs")
        .context("committing the fleet's configs")?;
    println!(
        "1. A Git config repo with {} bots and their JSON Schema: commit {} on main.",
        SLUGS.len(),
        short(&first_commit)
    );

    let bots = runtime
        .block_on(SimulatedBots::start(running_configs()))
        .context("starting the simulated bots")?;
    println!(
        "2. Simulated bots serve their running configs, e.g. {}",
        bots.config_url(EDITED)
    );
    println!(
        "   (key order, 12 vs 12.0, schema defaults and an ignored start time differ: none of that is drift)"
    );

    // The agent is assembled exactly as `run` assembles it, from a real config file.
    let config_path = folder.join("config.toml");
    std::fs::write(&config_path, config_toml(&repo_dir, &bots))
        .with_context(|| format!("writing {}", config_path.display()))?;
    let (config, _warnings) = crate::config::load(&config_path).map_err(|errors| {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the demo's own config is refused: {}", all.join("; "))
    })?;
    let overrides = Overrides {
        check_interval: Some(CHECK_INTERVAL),
        shard: Shard::ALL,
    };
    let assembly = {
        let _in_runtime = runtime.enter();
        app::assemble(Setup {
            config_path: &config_path,
            config,
            overrides,
            env: &demo_env,
        })?
    };
    let started = assembly.telemetry();
    *telemetry = Some(Arc::clone(&started));

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;

    runtime.block_on(async {
        let running = assembly.start()?;
        let base = format!("http://{}", running.addr);
        println!(
            "3. The agent runs here (as `config-drift-detector run --config {} --check-interval {interval}s` would), checking every {interval} s:",
            config_path.display(),
            interval = CHECK_INTERVAL.as_secs()
        );
        println!("   metrics  {base}/metrics");
        println!("   health   {base}/healthz/config_drift_detector");
        println!("   {}", otlp_line(&started));
        let scene = Scene {
            repo: &repo,
            bots: &bots,
            first_commit,
            client,
            metrics_url: format!("{base}/metrics"),
        };
        let ending = tokio::select! {
            biased;
            () = stop.stopped() => {
                println!("\nInterrupted: stopping the agent and cleaning up.");
                Ok(Ending::Interrupted)
            }
            told = narrate(&scene, running.views()) => told.map(|()| Ending::Finished),
        };
        if tokio::time::timeout(STOP_BOUND, running.stop())
            .await
            .is_err()
        {
            // Whatever still runs is dropped with the runtime.
            AgentNotStopped { bound: STOP_BOUND }.emit();
        }
        ending
    })
}

/// The story proper, told from the agent's own check views.
async fn narrate(
    scene: &Scene<'_>,
    mut views: watch::Receiver<Option<Arc<CheckView>>>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STORY_DEADLINE;
    tokio::time::sleep(BEAT).await;

    let first = next_view(&mut views, deadline, "the agent's first check", |_| true).await?;
    println!("\n4. First check: {}.", tally(&first.result));
    tokio::time::sleep(BEAT).await;

    let edit = json!({ "set": { "intraday_drawdown_pct": 10, "api_key": "sk-live-rotated" } });
    admin_edit(&scene.client, &scene.bots.admin_url(EDITED), &edit).await?;
    println!("\n5. An on-call edits {EDITED} live in its admin UI, without a commit:");
    println!("   intraday_drawdown_pct 12 → 10, and rotates its API key.");

    let drifting = next_view(&mut views, deadline, "the check that sees the edit", |v| {
        report(v, EDITED).is_some_and(|r| r.status == Status::Drift)
    })
    .await?;
    println!(
        "\n6. Next check: {}. Drift detected:",
        tally(&drifting.result)
    );
    if let Some(r) = report(&drifting, EDITED) {
        describe_drift(r, &scene.first_commit);
    }
    let line = metrics_line(scene, "bots_in_drift", EDITED).await?;
    println!("   Live {}: {line}", scene.metrics_url);
    println!(
        "   The agent logs GOV_CONFIG_DRIFT_DETECTED with this report (stderr, and OTLP logs when on) at every check until it is resolved."
    );
    tokio::time::sleep(BEAT).await;

    let mut adopted = committed_config(EDITED, 10);
    adopted["api_key"] = json!("sk-live-rotated");
    let sha = scene
        .repo
        .commit(
            &[(
                &format!("bots/{EDITED}.json"),
                serde_json::to_string_pretty(&adopted)?,
            )],
            "Ada Lovelace",
            ADOPTION_SUMMARY,
        )
        .context("committing the adoption")?;
    println!(
        "\n7. The governance team reviews the edit and commits it: {} \"{ADOPTION_SUMMARY}\".",
        short(&sha)
    );

    let settled = next_view(
        &mut views,
        deadline,
        "the check that sees the commit",
        |v| {
            resolution(v, EDITED).is_some()
                || report(v, EDITED).is_some_and(|r| r.status == Status::InSync)
        },
    )
    .await?;
    println!("\n8. Next check: {}.", tally(&settled.result));
    match resolution(&settled, EDITED) {
        Some(r) => describe_resolution(r),
        // Only if two checks finished while this task was not looking.
        None => println!("   {EDITED} is back in sync."),
    }
    let line = metrics_line(scene, "bots_in_drift", EDITED).await?;
    println!("   Live {}: {line}", scene.metrics_url);
    if let Ok(count) = metrics_line(scene, "drift_resolution_minutes_count", EDITED).await {
        println!("   and {count}");
    }
    Ok(())
}

/// Waits for a published check that satisfies `wanted`, until `deadline`.
async fn next_view(
    views: &mut watch::Receiver<Option<Arc<CheckView>>>,
    deadline: Instant,
    what: &str,
    wanted: impl Fn(&CheckView) -> bool,
) -> anyhow::Result<Arc<CheckView>> {
    let waited = tokio::time::timeout_at(
        deadline,
        views.wait_for(|v| v.as_deref().is_some_and(&wanted)),
    )
    .await;
    match waited {
        Ok(Ok(view)) => view
            .as_ref()
            .map(Arc::clone)
            .ok_or_else(|| anyhow::anyhow!("the agent published no check before {what}")),
        Ok(Err(_)) => anyhow::bail!("the agent stopped before {what}"),
        Err(_) => anyhow::bail!(
            "gave up waiting for {what}: the demo allows {} s in all",
            STORY_DEADLINE.as_secs()
        ),
    }
}

fn report<'a>(view: &'a CheckView, slug: &str) -> Option<&'a ConfigDriftReport> {
    view.reports
        .iter()
        .find(|r| r.bot_slug.as_deref() == Some(slug))
}

fn resolution<'a>(view: &'a CheckView, slug: &str) -> Option<&'a Resolution> {
    view.resolved
        .iter()
        .find(|(s, _)| s == slug)
        .map(|(_, r)| r)
}

fn describe_drift(r: &ConfigDriftReport, first_commit: &str) {
    let slug = r.bot_slug.as_deref().unwrap_or("-");
    for d in &r.drifts {
        let value = |v: &Option<Box<serde_json::value::RawValue>>| {
            v.as_deref()
                .map_or("(absent)".into(), |v| v.get().to_owned())
        };
        println!(
            "   {slug}  {}: running {} → committed {}, since {}",
            d.field,
            value(&d.running),
            value(&d.committed),
            format_ms(d.since_ts_ms)
        );
    }
    println!("   (the secret is compared, but only its HMAC token is ever shown)");
    if let Some(episode) = &r.episode_id {
        println!("   Drift episode {episode} is open; it ends when every field is back in sync.");
    }
    match &r.matches_commit {
        Some(MatchesCommit::Found {
            commit,
            exact: true,
            commits_behind,
            ..
        }) => println!(
            "   The running config equals commit {} ({commits_behind} commits behind main).",
            short(commit)
        ),
        Some(MatchesCommit::Found {
            commit,
            differing_fields,
            ..
        }) => println!(
            "   No commit on main has this config: the closest, {}{}, differs in {} field(s).",
            short(commit),
            if commit == first_commit {
                " (the signed-off one)"
            } else {
                ""
            },
            differing_fields.unwrap_or(0)
        ),
        Some(MatchesCommit::Skipped { .. }) | None => {}
    }
}

fn describe_resolution(r: &Resolution) {
    let seconds = r.resolution_minutes * 60.0;
    let by = r.resolved_by.as_str();
    match &r.commit {
        Some(c) => println!(
            "   {EDITED}: resolved by {by} {} ({}, \"{}\") after {seconds:.1} s.",
            short(&c.sha),
            c.author,
            c.summary
        ),
        None => println!("   {EDITED}: resolved by {by} after {seconds:.1} s."),
    }
    println!(
        "   Episode {} closed: GOV_CONFIG_DRIFT_RESOLVED with resolved_by={by}, resolution_minutes={:.3}.",
        r.episode_id, r.resolution_minutes
    );
}

/// The agent's own `/metrics`, fetched over HTTP as Prometheus would: the line
/// of `name` for `bot`.
async fn metrics_line(scene: &Scene<'_>, name: &str, bot: &str) -> anyhow::Result<String> {
    let text = scene
        .client
        .get(&scene.metrics_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("fetching {}", scene.metrics_url))?
        .text()
        .await
        .with_context(|| format!("reading {}", scene.metrics_url))?;
    let prefix = format!("{name}{{");
    let label = format!("bot_id=\"{bot}\"");
    text.lines()
        .find(|l| l.starts_with(&prefix) && l.contains(&label))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no {name} for {bot}", scene.metrics_url))
}

async fn admin_edit(
    client: &reqwest::Client,
    url: &str,
    edit: &serde_json::Value,
) -> anyhow::Result<()> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(edit.to_string())
        .send()
        .await
        .context("calling the simulated bot's admin endpoint")?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the simulated bot's admin endpoint answered {}",
        resp.status()
    );
    Ok(())
}

fn committed_config(slug: &str, drawdown: u32) -> serde_json::Value {
    json!({
        "intraday_drawdown_pct": drawdown,
        "venues": ["binance", "kraken"],
        "per_market": [ { "id": "btc-usd", "max_usd": 50000 }, { "id": "eth-usd", "max_usd": 20000 } ],
        "api_key": format!("sk-live-{slug}"),
    })
}

/// The running side: key order, `12.0` and spelled-out defaults differ from the
/// committed text, and the bots report a start time the schema ignores.
fn running_configs() -> BTreeMap<String, serde_json::Value> {
    SLUGS
        .iter()
        .map(|slug| {
            let mut c = committed_config(slug, 12);
            c["intraday_drawdown_pct"] = json!(12.0);
            c["max_position_usd"] = json!(250000);
            c["runtime"] = json!({ "started_at": now_ms() });
            ((*slug).to_owned(), c)
        })
        .collect()
}

/// A real config file: every path inside the demo's folder (relative paths
/// resolve against the file's folder), the server on a free loopback port.
fn config_toml(repo_dir: &Path, bots: &SimulatedBots) -> String {
    let mut config = format!(
        "check_interval_minutes = 1\n\n\
         [repo]\nurl = {:?}\nbranch = \"main\"\nconfig_path = \"bots/{{slug}}.json\"\n\
         schema_path = \"schemas/bot.schema.json\"\ncheckout_dir = \"state/repo\"\n\n\
         [state]\npath = \"state/db\"\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\n\n",
        repo_dir.display().to_string()
    );
    for slug in SLUGS {
        config.push_str(&format!(
            "[[bots]]\nslug = {slug:?}\nruntime = {:?}\n\n",
            bots.config_url(slug)
        ));
    }
    config
}

/// The process environment, with a metric export interval that fits the demo.
fn demo_env(key: &str) -> Option<String> {
    with_demo_defaults(key, std::env::var(key).ok())
}

fn with_demo_defaults(key: &str, value: Option<String>) -> Option<String> {
    let value = value.filter(|v| !v.trim().is_empty());
    if key == "OTEL_METRIC_EXPORT_INTERVAL" {
        return value.or_else(|| Some(DEMO_METRIC_EXPORT_INTERVAL_MS.to_owned()));
    }
    value
}

/// Where telemetry goes besides `/metrics`.
fn otlp_line(telemetry: &Telemetry) -> String {
    let export = telemetry.export_config();
    if !export.any_export() {
        return "OTLP     off; set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4317) to also send metrics, logs and traces to a collector".to_owned();
    }
    let parts: Vec<String> = OtelSignal::ALL
        .iter()
        .map(|s| match export.signal(*s) {
            Some(e) => format!(
                "{} → {} ({})",
                s.as_str(),
                crate::config::redact_url_credentials(&e.endpoint),
                match e.protocol {
                    Protocol::Grpc => "grpc",
                    Protocol::HttpProtobuf => "http/protobuf",
                }
            ),
            None => format!("{} off", s.as_str()),
        })
        .collect();
    format!(
        "OTLP     {}; metrics pushed every {} s",
        parts.join(", "),
        export.metric_export_interval.as_secs()
    )
}

fn tally(r: &CheckResult) -> String {
    let in_sync = r.bots.saturating_sub(r.drifting + r.unknown);
    format!(
        "{} bots against {}: {in_sync} in sync, {} drifting, {} unknown",
        r.bots,
        r.commit.as_deref().map_or("no commit".into(), short),
        r.drifting,
        r.unknown
    )
}

fn short(sha: &str) -> String {
    sha.chars().take(7).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_pushed_within_the_demo_unless_the_environment_says_otherwise() {
        let interval = "OTEL_METRIC_EXPORT_INTERVAL";
        assert_eq!(with_demo_defaults(interval, None).as_deref(), Some("5000"));
        assert_eq!(
            with_demo_defaults(interval, Some(" ".into())).as_deref(),
            Some("5000")
        );
        assert_eq!(
            with_demo_defaults(interval, Some("1000".into())).as_deref(),
            Some("1000")
        );
        assert_eq!(with_demo_defaults("OTEL_SERVICE_NAME", None), None);
    }

    #[test]
    fn the_demo_config_goes_through_the_real_loader() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let bots = rt
            .block_on(SimulatedBots::start(running_configs()))
            .expect("bots");
        let dir = tempfile::tempdir().expect("tmp");
        let repo_dir = dir.path().join("bot-configs");
        DemoRepo::init(&repo_dir).expect("repo");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config_toml(&repo_dir, &bots)).expect("write");
        let (config, warnings) = crate::config::load(&path).expect("the demo's config loads");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.bots.len(), SLUGS.len());
        assert_eq!(config.server.listen.port(), 0, "a free port is asked for");
        assert!(config.state.path.starts_with(dir.path()));
        assert!(config.repo.checkout_dir.starts_with(dir.path()));
    }
}
