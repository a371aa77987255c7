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

use super::admin::{Actor, AdminError, AdminOutcome, AdminRequest, DeniedMinute};
use super::cycle::CheckResult;
use super::{Agent, Trigger};
use crate::config::Mode;
use crate::telemetry::events::CheckOverran;

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
        reply: oneshot::Sender<Result<AdminOutcome, AdminError>>,
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
            let wait = at_ms.saturating_sub(crate::time::now_ms()).max(0);
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
            () = timer => agent.on_timer(crate::time::now_ms()).await,
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
        evaluation = agent.evaluate(crate::time::now_ms()) => evaluation,
    };
    let result = agent.settle(evaluation, trigger).await;
    if result.duration_ms > agent.interval().as_millis() as u64 {
        CheckOverran {
            duration: Duration::from_millis(result.duration_ms),
            interval: agent.interval(),
        }
        .emit();
    }
    Some(result)
}

/// Resolves once shutdown is asked for (or nobody can ask any more).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
