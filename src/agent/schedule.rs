//! When checks run (§2 `run`, §8, §13): one at start, then one per interval
//! (measured start to start), never two at once; a reload checks at once; mode
//! `off` runs none. On shutdown a check still evaluating is dropped (nothing is
//! written yet); one already storing or emitting finishes first.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::cycle::CheckResult;
use super::{Agent, Trigger};
use crate::config::Mode;

/// Requests from outside the loop (the admin API's manual check, §12).
#[derive(Debug)]
pub enum Command {
    /// Runs a check after any in flight and answers with its result; `None`
    /// when the agent shut down first or its mode is `off`.
    Check(oneshot::Sender<Option<CheckResult>>),
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
            Some(command) = inputs.commands.recv() => match command {
                Command::Check(reply) => {
                    let result = if agent.mode() == Mode::Off {
                        None
                    } else {
                        one_check(&mut agent, Trigger::Manual, &mut inputs.shutdown).await
                    };
                    let _ = reply.send(result);
                }
            },
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
