//! `run --config FILE [--check-interval DUR] [--shard K/N] [--log-format text|json]`:
//! the agent. Every startup failure (config, state database, listen address,
//! telemetry environment) is one sentence and exit 1; SIGTERM/SIGINT flush state
//! and telemetry and exit 0; SIGHUP reloads the config.

use std::path::Path;
use std::time::Duration;

use crate::agent::Overrides;
use crate::app::{self, Assembly, Setup};
use crate::shard::Shard;
use crate::telemetry::LogFormat;
use crate::telemetry::events::{AgentStarted, IntervalOverridden, Lifecycle};

use super::{exit, load_config};

pub struct RunArgs<'a> {
    pub config: &'a Path,
    pub check_interval: Option<&'a str>,
    pub shard: Option<&'a str>,
    pub log_format: LogFormat,
}

/// Shortest `--check-interval` (§2).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: RunArgs<'_>) -> anyhow::Result<u8> {
    let Some(config) = load_config(args.config) else {
        return Ok(exit::ERROR);
    };
    let shard = match args.shard.map(Shard::parse).transpose() {
        Ok(s) => s.unwrap_or(Shard::ALL),
        Err(e) => return fail(&e),
    };
    let check_interval = match args.check_interval.map(parse_interval).transpose() {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    if let Err(e) = crate::telemetry::init_logging(args.log_format) {
        return fail(&e.to_string());
    }
    let overrides = Overrides {
        check_interval,
        shard,
    };
    if let Some(interval) = check_interval {
        IntervalOverridden {
            interval,
            configured: config.check_interval,
        }
        .emit();
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cdd-agent")
        .build()?;
    let assembled = {
        let _in_runtime = runtime.enter();
        app::assemble(Setup {
            config_path: args.config,
            config,
            overrides,
            env: &|k| std::env::var(k).ok(),
        })
    };
    let assembly = match assembled {
        Ok(a) => a,
        // The agent's own setup errors wrap their causes (a TLS or Git setup
        // failure); every other part's message already names its cause.
        Err(app::StartupError::Agent(e)) => return fail(&with_causes(&e)),
        Err(e) => return fail(&e.to_string()),
    };
    let telemetry = assembly.telemetry();
    runtime.block_on(serve_until_shutdown(assembly))?;
    // Outside the runtime: the exporters' own runtime is dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    app::shut_down(telemetry);
    Lifecycle::Stopped.emit();
    Ok(exit::OK)
}

async fn serve_until_shutdown(assembly: Assembly) -> std::io::Result<()> {
    let (mode, interval, bots) = (assembly.mode(), assembly.interval(), assembly.bot_count());
    let scheme = if assembly.https() { "https" } else { "http" };
    let running = assembly.start()?;
    running.handle_signals()?;
    AgentStarted {
        listen: &format!("{scheme}://{}", running.addr),
        mode: mode.as_str(),
        interval,
        bots,
    }
    .emit();
    running.join().await;
    Lifecycle::ShutDown.emit();
    Ok(())
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = crate::time::parse_duration(text).map_err(|e| format!("--check-interval: {e}"))?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "--check-interval must be at least 1s, not `{text}`"
        ));
    }
    Ok(d)
}

/// An error and its causes in one sentence, as `anyhow` writes `{:#}`, without
/// repeating a cause its message already says.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

fn fail(message: &str) -> anyhow::Result<u8> {
    eprintln!("error: {message}");
    Ok(exit::ERROR)
}
