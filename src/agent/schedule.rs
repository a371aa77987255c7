//! When checks run (§2 `run`, §8, §13): one at start, then one per interval
//! (measured start to start), never two at once; a reload checks at once; mode
//! `off` runs none. On shutdown a check still evaluating is dropped (nothing is
//! written yet); one already storing or emitting finishes first.
//!
//! The loop also carries out the admin API's requests (`Command`), one at a
//! time and never during a check, once the first check after start has settled;
//! and it wakes when an ack or a pause falls due.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::admin::{Actor, AdminError, AdminRequest, DeniedMinute};
use super::cycle::CheckResult;
use super::{Agent, Trigger};
use crate::config::Mode;

/// Requests from outside the loop (the admin API's manual check, §12).
#[derive(Debug)]
pub enum Command {
    /// Runs a check after any in flight and answers with its result; `None`
    /// when the agent shut down first or its mode is `off`.
    Check(oneshot::Sender<Option<CheckResult>>),
    /// `POST /api/v1/check`: as `Check`, and recorded in the audit log.
    ManualCheck {
        actor: Actor,
        reply: oneshot::Sender<Option<CheckResult>>,
    },
    /// A state-changing admin request (acks, clear, pause, resume).
    Admin {
        actor: Actor,
        request: AdminRequest,
        reply: oneshot::Sender<Result<serde_json::Value, AdminError>>,
    },
    /// Denied requests of one source and minute, for the audit log.
    Denied(DeniedMinute),
}

/// The loop's inputs besides the agent.
pub struct Inputs {
    /// One message per SIGHUP.
    pub reloads: mpsc::Receiver<()>,
    pub commands: mpsc::Receiver<Command>,
    /// Turns `true` on SIGTERM/SIGINT.
    pub shutdown: watch::Receiver<bool>,
}

/// Runs checks until shutdown, then hands the agent back for the caller to close.
pub async fn run(mut agent: Agent, mut inputs: Inputs) -> Agent {
    let mut next = first_check(&agent);
    let mut trigger = Trigger::Startup;
    loop {
        let due = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let timer = agent.next_timer_ms().map(|at_ms| {
            let wait = at_ms.saturating_sub(crate::cli::now_ms()).max(0);
            Instant::now() + Duration::from_millis(wait as u64)
        });
        let timer = async {
            match timer {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let ready = agent.ready();
        tokio::select! {
            biased;
            _ = stopping(&mut inputs.shutdown) => break,
            Some(()) = inputs.reloads.recv() => {
                if agent.reload() {
                    // §9: after a reload, check at once and re-emit every status.
                    trigger = Trigger::Startup;
                    next = first_check(&agent);
                }
            }
            Some(command) = inputs.commands.recv(), if ready => match command {
                Command::Check(reply) => {
                    let result = manual_check(&mut agent, &mut inputs.shutdown).await;
                    let _ = reply.send(result);
                }
                Command::ManualCheck { actor, reply } => {
                    let result = manual_check(&mut agent, &mut inputs.shutdown).await;
                    if let Some(r) = &result {
                        agent.record_check(&actor, r).await;
                    }
                    let _ = reply.send(result);
                }
                Command::Admin { actor, request, reply } => {
                    let answer = agent.admin(&actor, request).await;
                    let _ = reply.send(answer);
                }
                Command::Denied(denied) => agent.record_denied(denied).await,
            },
            () = timer => agent.on_timer(crate::cli::now_ms()).await,
            _ = due => {
                let started = Instant::now();
                if one_check(&mut agent, trigger, &mut inputs.shutdown).await.is_none() {
                    break;
                }
                trigger = Trigger::Scheduled;
                // Start to start; a check longer than the interval is followed at once.
                next = Some(started + agent.interval());
            }
        }
    }
    agent
}

async fn manual_check(
    agent: &mut Agent,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<CheckResult> {
    if agent.mode() == Mode::Off {
        return None;
    }
    one_check(agent, Trigger::Manual, shutdown).await
}

fn first_check(agent: &Agent) -> Option<Instant> {
    (agent.mode() != Mode::Off).then(Instant::now)
}

/// A check, unless shutdown arrives while it is still evaluating.
async fn one_check(
    agent: &mut Agent,
    trigger: Trigger,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<CheckResult> {
    let evaluation = tokio::select! {
        biased;
        _ = stopping(shutdown) => return None,
        evaluation = agent.evaluate(crate::cli::now_ms()) => evaluation,
    };
    let result = agent.settle(evaluation, trigger).await;
    if result.duration_ms > agent.interval().as_millis() as u64 {
        tracing::warn!(
            duration = ?Duration::from_millis(result.duration_ms),
            interval = ?agent.interval(),
            "The check took longer than the check interval; the next one starts at once."
        );
    }
    Some(result)
}

/// Resolves once shutdown is asked for (or nobody can ask any more).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// An agent running on the current tokio runtime with its HTTP server.
pub struct Running {
    /// Where the server listens (the real port when `server.listen` asked for 0).
    pub addr: std::net::SocketAddr,
    views: watch::Receiver<Option<std::sync::Arc<super::CheckView>>>,
    commands: mpsc::Sender<Command>,
    reloads: mpsc::Sender<()>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the scheduler and the server (§12) on `listener`, over HTTPS when
/// `tls` is given.
pub fn start(
    agent: Agent,
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    server: crate::server::ServerState,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let (reloads, reload_rx) = mpsc::channel(4);
    let (commands, command_rx) = mpsc::channel(16);
    let views = agent.subscribe();
    let api = crate::api::ApiState::new(
        agent.tokens(),
        &agent.config().server,
        commands.clone(),
        agent.reports(),
        agent.store(),
        std::sync::Arc::clone(&server.status),
    );
    crate::api::spawn_denied_flush(&api, stop_rx.clone());
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(crate::server::serve(
        listener,
        crate::server::router(server).merge(crate::api::router(api.clone())),
        tls,
        async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        },
    ));
    let task = tokio::spawn(async move {
        let mut agent = run(
            agent,
            Inputs {
                reloads: reload_rx,
                commands: command_rx,
                shutdown: stop_rx,
            },
        )
        .await;
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "The HTTP server stopped with an error."),
            Err(_) => tracing::warn!("The HTTP server did not stop within 5 s."),
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
        commands,
        reloads,
        stop,
        task,
    })
}

impl Running {
    /// Follows finished checks.
    pub fn views(&self) -> watch::Receiver<Option<std::sync::Arc<super::CheckView>>> {
        self.views.clone()
    }

    /// For the admin API: manual checks.
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// As SIGHUP: reload the config, then check at once.
    pub fn reload(&self) {
        // One queued reload covers any asked for before it runs.
        let _ = self.reloads.try_send(());
    }

    /// A reload trigger that outlives borrowing `self` (signal handlers).
    pub fn reloader(&self) -> impl Fn() + Send + 'static {
        let reloads = self.reloads.clone();
        move || {
            let _ = reloads.try_send(());
        }
    }

    /// A handle that asks for shutdown (SIGTERM/SIGINT).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
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
}
