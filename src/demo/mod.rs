//! `demo`: a self-contained tour on loopback. A temporary Git config repo with
//! three bots and their schema, simulated bots serving their running configs with
//! an admin endpoint, then a narrated live edit (drift detected) and a commit that
//! adopts it (resolved by commit). Everything lives in one temporary folder that is
//! removed on exit, also on Ctrl-C.

mod bots;
mod repo;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::canon::secret::SecretKey;
use crate::check::{CheckOutcome, Checker};
use crate::cli::{now_ms, output::format_ms};
use crate::report::Status;

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

/// Pause between steps so a person can read along.
const BEAT: Duration = Duration::from_millis(1200);

pub fn run() -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            r = tour() => r,
            _ = tokio::signal::ctrl_c() => {
                println!("\nInterrupted; the temporary repo and bots are gone.");
                Ok(0)
            }
        }
    })
}

fn committed_config(slug: &str, drawdown: u32) -> serde_json::Value {
    json!({
        "intraday_drawdown_pct": drawdown,
        "venues": ["binance", "kraken"],
        "per_market": [ { "id": "btc-usd", "max_usd": 50000 }, { "id": "eth-usd", "max_usd": 20000 } ],
        "api_key": format!("sk-live-{slug}"),
    })
}

async fn tour() -> anyhow::Result<u8> {
    let work = tempfile::Builder::new()
        .prefix("cdd-demo-")
        .tempdir()
        .context("creating a temporary folder")?;
    println!(
        "config-drift-detector demo: everything runs on 127.0.0.1 in {} and is removed on exit.\n",
        work.path().display()
    );

    let slugs = ["arb.us", "mm.eu", "risk.killswitch"];
    let repo_dir = work.path().join("bot-configs");
    let repo = DemoRepo::init(&repo_dir).context("creating the demo repo")?;
    let mut files: Vec<(&str, String)> = vec![("schemas/bot.schema.json", SCHEMA.to_owned())];
    let paths: Vec<String> = slugs.iter().map(|s| format!("bots/{s}.json")).collect();
    for (slug, path) in slugs.iter().zip(&paths) {
        files.push((
            path,
            serde_json::to_string_pretty(&committed_config(slug, 12))?,
        ));
    }
    let first = repo
        .commit(&files, "Grace Hopper", "Sign off fleet configs")
        .context("committing")?;
    println!(
        "1. A Git config repo with {} bots and their JSON Schema: commit {} on main.",
        slugs.len(),
        short(&first)
    );

    // The running side: key order, `12.0` and spelled-out defaults differ from the
    // committed text, and the bots report a start time the schema ignores.
    let mut running = BTreeMap::new();
    for slug in slugs {
        let mut c = committed_config(slug, 12);
        c["intraday_drawdown_pct"] = json!(12.0);
        c["max_position_usd"] = json!(250000);
        c["runtime"] = json!({ "started_at": now_ms() });
        running.insert(slug.to_owned(), c);
    }
    let bots = SimulatedBots::start(running)
        .await
        .context("starting the simulated bots")?;
    println!(
        "2. Simulated bots serve their running configs, e.g. {}",
        bots.config_url("risk.killswitch")
    );
    println!(
        "   (key order, 12 vs 12.0, schema defaults and an ignored start time differ: none of that is drift)\n"
    );

    let config_path = work.path().join("config.toml");
    let mut config = format!(
        "check_interval_minutes = 1\n[repo]\nurl = {:?}\nbranch = \"main\"\nconfig_path = \"bots/{{slug}}.json\"\nschema_path = \"schemas/bot.schema.json\"\ncheckout_dir = \"state/repo\"\n\n",
        repo_dir.display().to_string()
    );
    for slug in slugs {
        config.push_str(&format!(
            "[[bots]]\nslug = {slug:?}\nruntime = {:?}\n\n",
            bots.config_url(slug)
        ));
    }
    std::fs::write(&config_path, config).context("writing the demo config")?;
    let (config, _warnings) = crate::config::load(&config_path).map_err(|errors| {
        anyhow::anyhow!(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let bot_list = config.bots.clone();
    let mut checker = Checker::new(Arc::new(config), SecretKey::random())?;

    let outcome = checker.run(&bot_list, now_ms()).await;
    println!("3. Check: {}.", tally(&outcome));
    tokio::time::sleep(BEAT).await;

    let edit = json!({ "set": { "intraday_drawdown_pct": 10, "api_key": "sk-live-rotated" } });
    admin_edit(&bots.admin_url("risk.killswitch"), &edit).await?;
    println!("\n4. An on-call edits risk.killswitch live in its admin UI, without a commit:");
    println!("   intraday_drawdown_pct 12 → 10, and rotates its API key.");
    tokio::time::sleep(BEAT).await;

    let outcome = checker.run(&bot_list, now_ms()).await;
    let first_seen = outcome.checked_at_ms;
    println!("\n5. Check: {}. Drift detected:", tally(&outcome));
    for r in outcome.reports.iter().filter(|r| r.status == Status::Drift) {
        for d in &r.drifts {
            let value = |v: &Option<Box<serde_json::value::RawValue>>| {
                v.as_deref()
                    .map_or("(absent)".into(), |v| v.get().to_owned())
            };
            println!(
                "   {}  {}: running {} → committed {}, since {}",
                r.bot_slug.as_deref().unwrap_or("-"),
                d.field,
                value(&d.running),
                value(&d.committed),
                format_ms(d.since_ts_ms)
            );
        }
        println!("   (the secret is compared, but only its HMAC token is ever shown)");
    }
    tokio::time::sleep(BEAT).await;

    let mut adopted = committed_config("risk.killswitch", 10);
    adopted["api_key"] = json!("sk-live-rotated");
    let sha = repo
        .commit(
            &[(
                "bots/risk.killswitch.json",
                serde_json::to_string_pretty(&adopted)?,
            )],
            "Ada Lovelace",
            "Adopt 10% intraday drawdown for risk.killswitch",
        )
        .context("committing the adoption")?;
    println!(
        "\n6. The governance team reviews the edit and commits it: {} \"Adopt 10% intraday drawdown for risk.killswitch\".",
        short(&sha)
    );
    tokio::time::sleep(BEAT).await;

    let outcome = checker.run(&bot_list, now_ms()).await;
    let resolved = outcome
        .reports
        .iter()
        .find(|r| r.bot_slug.as_deref() == Some("risk.killswitch"));
    println!("\n7. Check: {}.", tally(&outcome));
    if resolved.is_some_and(|r| r.status == Status::InSync) {
        let secs = (outcome.checked_at_ms - first_seen) as f64 / 1000.0;
        println!(
            "   risk.killswitch is back in sync: resolved by commit {} after {secs:.1} s.",
            short(&sha)
        );
    }
    println!(
        "\nDone. Next: `config-drift-detector check --config FILE` on your own fleet (see README)."
    );
    let clean = outcome.reports.iter().all(|r| r.status == Status::InSync);
    Ok(if clean { 0 } else { 1 })
}

async fn admin_edit(url: &str, edit: &serde_json::Value) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(edit.to_string())
        .send()
        .await
        .context("calling the simulated bot's admin endpoint")?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the simulated bot answered {}",
        resp.status()
    );
    Ok(())
}

fn tally(o: &CheckOutcome) -> String {
    format!(
        "{} bots against {}: {} in sync, {} drifting, {} unknown",
        o.reports.len(),
        o.commit.as_deref().map_or("no commit".into(), short),
        o.count(Status::InSync),
        o.count(Status::Drift),
        o.count(Status::Unknown)
    )
}

fn short(sha: &str) -> String {
    sha.chars().take(7).collect()
}
