//! The composition root: how one process of the agent is put together, for `run`
//! and `demo` alike. `assemble` opens the state database, binds the listen
//! address, loads TLS, starts telemetry and builds the agent, each failure one
//! sentence; `Assembly::start` wires the agent's loop, the admin API and the
//! HTTP server together on the current tokio runtime; `Signals` turns SIGTERM,
//! SIGINT and SIGHUP into stop and reload; `shut_down` delivers what telemetry
//! still holds.
//!
//! This is the only module that knows all the parts. The agent publishes what
//! others need (its status, config, reports, check views) through channels it
//! owns and never builds the server or the API; the server and the API read
//! those and never run a check.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::agent::schedule::{self, Inputs};
use crate::agent::{Agent, AgentSetupError, AgentStatus, CheckView, Overrides, agent_info};
use crate::config::{Config, Mode};
use crate::latch::{StateError, StateStore};
use crate::server::{ServerState, TlsError};
use crate::telemetry::events::{Lifecycle, ServerStop, SystemRootsMissing, TelemetryUndelivered};
use crate::telemetry::export::EnvLookup;
use crate::telemetry::{Telemetry, TelemetryError};

/// sled's page cache: enough for a large fleet's states (a few KiB each) while
/// keeping the agent's memory predictable (§9: the cache is bounded).
pub const STATE_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long the HTTP server may take to stop once the agent's loop has ended.
const SERVER_STOP_BOUND: Duration = Duration::from_secs(5);

/// What an agent process is made from.
pub struct Setup<'a> {
    pub config_path: &'a Path,
    pub config: Config,
    pub overrides: Overrides,
    /// Where telemetry reads its `OTEL_*` settings: the process environment for
    /// `run`, the demo's own settings for `demo`.
    pub env: EnvLookup<'a>,
}

/// Why the agent could not start; each is one sentence naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr} (server.listen in {file}): {source}")]
    Listen {
        addr: SocketAddr,
        file: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error(transparent)]
    Agent(#[from] AgentSetupError),
}

/// The parts of an agent process, opened and checked, not yet running.
pub struct Assembly {
    agent: Agent,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    telemetry: Arc<Telemetry>,
    status: Arc<AgentStatus>,
}

/// Opens every part in the order an operator fixes them in: the state database,
/// the listen address, TLS, telemetry, then the agent itself. Call it inside the
/// tokio runtime that will run the agent (its clients are made for it).
pub fn assemble(setup: Setup<'_>) -> Result<Assembly, StartupError> {
    let Setup {
        config_path,
        config,
        overrides,
        env,
    } = setup;
    let store = StateStore::open(&config.state.path, STATE_CACHE_BYTES)?;
    let listener = std::net::TcpListener::bind(config.server.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| StartupError::Listen {
            addr: config.server.listen,
            file: config_path.display().to_string(),
            source,
        })?;
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(crate::server::server_tls_config(cert, key)?),
        _ => None,
    };
    let info = agent_info(&config, &overrides);
    let telemetry = Arc::new(Telemetry::init_with(info.clone(), env)?);
    if let Some(error) = crate::runtime::tls::system_roots_problem() {
        SystemRootsMissing { error: &error }.emit();
    }
    let status = Arc::new(AgentStatus::new(config.mode, info.check_interval));
    let agent = Agent::new(
        config_path,
        config,
        overrides,
        store,
        Arc::clone(&telemetry),
        Arc::clone(&status),
    )?;
    Ok(Assembly {
        agent,
        listener,
        tls,
        telemetry,
        status,
    })
}

impl Assembly {
    /// The telemetry the agent emits through; the caller shuts it down after
    /// the runtime is gone (`shut_down`).
    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
    }

    pub fn mode(&self) -> Mode {
        self.agent.mode()
    }

    pub fn interval(&self) -> Duration {
        self.agent.interval()
    }

    pub fn bot_count(&self) -> usize {
        self.agent.config().bots.len()
    }

    /// Whether the server answers over HTTPS.
    pub fn https(&self) -> bool {
        self.tls.is_some()
    }

    /// Starts the agent's loop, the admin API and the HTTP server (§12) on the
    /// current tokio runtime.
    pub fn start(self) -> std::io::Result<Running> {
        let Assembly {
            agent,
            listener,
            tls,
            telemetry,
            status,
        } = self;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let (reloads, reload_rx) = mpsc::channel(4);
        let (commands, command_rx) = mpsc::channel(16);
        let views = agent.subscribe();
        let api = crate::api::ApiState::new(
            agent.config_updates(),
            commands,
            agent.reports(),
            agent.store(),
            Arc::clone(&status),
        );
        crate::api::spawn_denied_flush(&api, stop_rx.clone());
        let metrics = ServerState {
            status,
            metrics: Arc::new(move || telemetry.metrics().render_prometheus()),
        };
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(crate::server::serve(
            listener,
            crate::server::router(metrics).merge(crate::api::router(api.clone())),
            tls,
            async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            },
        ));
        let task = tokio::spawn(async move {
            let mut agent = schedule::run(
                agent,
                Inputs {
                    reloads: reload_rx,
                    commands: command_rx,
                    shutdown: stop_rx,
                },
            )
            .await;
            match tokio::time::timeout(SERVER_STOP_BOUND, server).await {
                Ok(Ok(Err(e))) => ServerStop::Failed(&e).emit(),
                Err(_) => ServerStop::TimedOut(SERVER_STOP_BOUND.as_secs()).emit(),
                _ => {}
            }
            // §12: denied attempts of the minute still open are audited too.
            for minute in api.take_denied() {
                agent.record_denied(minute).await;
            }
            // Closes the state database (flushed by every check already).
            drop(agent);
        });
        Ok(Running {
            addr,
            views,
            reloads,
            stop,
            task,
        })
    }
}

/// An agent running on the current tokio runtime with its HTTP server.
pub struct Running {
    /// Where the server listens (the real port when `server.listen` asked for 0).
    pub addr: SocketAddr,
    views: watch::Receiver<Option<Arc<CheckView>>>,
    /// One queued reload covers any asked for before it runs.
    reloads: mpsc::Sender<()>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Follows finished checks.
    pub fn views(&self) -> watch::Receiver<Option<Arc<CheckView>>> {
        self.views.clone()
    }

    /// Asks for shutdown and waits until the agent and its server stopped.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until something asked for shutdown and everything stopped.
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// SIGTERM and SIGINT ask this agent to stop; each SIGHUP asks for a reload.
    pub fn handle_signals(&self) -> std::io::Result<()> {
        let mut signals = Signals::new()?;
        let stop = self.stop.clone();
        let reloads = self.reloads.clone();
        tokio::spawn(async move {
            while signals.next().await == Signal::Reload {
                Lifecycle::ReloadRequested.emit();
                let _ = reloads.try_send(());
            }
            Lifecycle::ShuttingDown.emit();
            let _ = stop.send(true);
        });
        Ok(())
    }
}

/// What a signal asks of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT.
    Stop,
    /// SIGHUP.
    Reload,
}

/// The process's stop and reload signals, taken over from their default
/// (termination) as soon as this exists, so they go through a clean shutdown.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Must be called inside a tokio runtime.
    pub fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }

    /// The next stop signal; reloads in between are ignored.
    pub async fn stopped(&mut self) {
        while self.next().await != Signal::Stop {}
    }
}

/// Delivers what telemetry still holds, bounded. Call it outside any tokio
/// runtime: the exporters block on their own.
pub fn shut_down(telemetry: Arc<Telemetry>) {
    let delivered = match Arc::try_unwrap(telemetry) {
        Ok(t) => t.shutdown(),
        Err(t) => t.force_flush(),
    };
    if let Err(e) = delivered {
        TelemetryUndelivered { error: &e }.emit();
    }
}
