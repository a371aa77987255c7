//! `run --config FILE [--check-interval DUR] [--shard K/N] [--log-format text|json]`:
//! the agent. Every startup failure (config, state database, listen address,
//! telemetry environment) is one sentence and exit 1; SIGTERM/SIGINT flush state
//! and telemetry and exit 0; SIGHUP reloads the config.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::schedule;
use crate::agent::{Agent, Overrides, STATE_CACHE_BYTES, agent_info};
use crate::latch::StateStore;
use crate::server::{AgentStatus, ServerState};
use crate::shard::Shard;
use crate::telemetry::{LogFormat, Telemetry};

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
        tracing::warn!(
            "--check-interval {} overrides check_interval_minutes = {}; meant for demos and tests.",
            humantime::format_duration(interval),
            config.check_interval.as_secs() / 60
        );
    }

    let store = match StateStore::open(&config.state.path, STATE_CACHE_BYTES) {
        Ok(store) => store,
        Err(e) => return fail(&e.to_string()),
    };
    let listener = match std::net::TcpListener::bind(config.server.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
    {
        Ok(l) => l,
        Err(e) => {
            return fail(&format!(
                "cannot listen on {} (server.listen in {}): {e}",
                config.server.listen,
                args.config.display()
            ));
        }
    };
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => match crate::server::server_tls_config(cert, key) {
            Ok(tls) => Some(tls),
            Err(e) => return fail(&e.to_string()),
        },
        _ => None,
    };
    let info = agent_info(&config, &overrides);
    let telemetry = match Telemetry::init(info.clone()) {
        Ok(t) => Arc::new(t),
        Err(e) => return fail(&e.to_string()),
    };
    let status = Arc::new(AgentStatus::new(config.mode, info.check_interval));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cdd-agent")
        .build()?;
    let code = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let agent = match Agent::new(
            args.config,
            config,
            overrides,
            store,
            Arc::clone(&telemetry),
            Arc::clone(&status),
        ) {
            Ok(agent) => agent,
            Err(e) => return fail(&format!("{e:#}")),
        };
        serve_until_shutdown(agent, listener, tls, &telemetry, &status).await?;
        Ok(exit::OK)
    })?;
    // Outside the runtime: the exporters' own runtime is dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match Arc::try_unwrap(telemetry) {
        Ok(t) => {
            if let Err(e) = t.shutdown() {
                tracing::warn!(error = %e, "Telemetry was not all delivered before exit.");
            }
        }
        Err(t) => {
            let _ = t.force_flush();
        }
    }
    if code == exit::OK {
        tracing::info!("Stopped.");
    }
    Ok(code)
}

async fn serve_until_shutdown(
    agent: Agent,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    telemetry: &Arc<Telemetry>,
    status: &Arc<AgentStatus>,
) -> anyhow::Result<()> {
    let metrics_source = Arc::clone(telemetry);
    let state = ServerState {
        status: Arc::clone(status),
        metrics: Arc::new(move || metrics_source.metrics().render_prometheus()),
    };
    let (mode, interval, bots) = (agent.mode(), agent.interval(), agent.config().bots.len());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let running = schedule::start(agent, listener, tls, state)?;
    spawn_signal_handlers(&running)?;
    tracing::info!(
        listen = %format!("{scheme}://{}", running.addr),
        mode = mode.as_str(),
        interval = %humantime::format_duration(interval),
        bots,
        "Agent started."
    );
    running.join().await;
    tracing::info!("Shut down.");
    Ok(())
}

/// SIGTERM and SIGINT ask for shutdown; each SIGHUP asks for a reload.
fn spawn_signal_handlers(running: &schedule::Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let stop = running.stopper();
    let reloads = running.reloader();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config.");
                    reloads();
                }
            }
        }
        tracing::info!("Shutting down.");
        let _ = stop.send(true);
    });
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

fn fail(message: &str) -> anyhow::Result<u8> {
    eprintln!("error: {message}");
    Ok(exit::ERROR)
}
