//! The admin API under `/api/v1` (§12): the last reports, manual checks, two-
//! person acks, clear, pause/resume and the audit log, behind bearer tokens with
//! roles and a per-source rate limit applied before authentication.
//!
//! Owns HTTP concerns only: parsing, authentication, status codes, JSON errors.
//! Every state change is handed to the agent's loop as a `Command` and answered
//! from its reply, so nothing here races a check; reads come from the published
//! report snapshot and the state database (audit). Nothing in the audit log can
//! be changed through it.

pub mod auth;
pub mod denied;
pub mod error;
pub mod handlers;
pub mod protocol;
pub mod rate_limit;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{MethodRouter, any, get, post};
use tokio::sync::{mpsc, watch};

use crate::agent::schedule::Command;
use crate::agent::{AgentStatus, ReportSnapshot};
use crate::config::Config;
use crate::latch::StateStore;

/// The routes, as (method, path under `/api/v1`), in the order of §12's table.
/// The OpenAPI description (`api/openapi.json`) lists exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/bots"),
    ("get", "/bots/{slug}"),
    ("post", "/check"),
    ("post", "/bots/{slug}/acks"),
    ("post", "/acks/{id}/approve"),
    ("post", "/bots/{slug}/clear"),
    ("post", "/pause"),
    ("post", "/resume"),
    ("get", "/audit"),
    ("get", "/audit/verify"),
];

pub use protocol::PREFIX;

/// How often ended minutes of denied requests are handed to the audit log.
const DENIED_FLUSH: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

struct Inner {
    /// The config in force, as the agent publishes it: its tokens authenticate.
    config: watch::Receiver<Arc<Config>>,
    limiter: rate_limit::RateLimiter,
    denied: denied::DeniedLog,
    commands: mpsc::Sender<Command>,
    reports: watch::Receiver<ReportSnapshot>,
    store: Arc<StateStore>,
    status: Arc<AgentStatus>,
}

impl ApiState {
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        commands: mpsc::Sender<Command>,
        reports: watch::Receiver<ReportSnapshot>,
        store: Arc<StateStore>,
        status: Arc<AgentStatus>,
    ) -> ApiState {
        // The rate limit is a [server] setting: a restart changes it, not a reload.
        let server = config.borrow().server.clone();
        ApiState(Arc::new(Inner {
            config,
            limiter: rate_limit::RateLimiter::new(server.rate_limit_per_s, server.rate_limit_burst),
            denied: denied::DeniedLog::default(),
            commands,
            reports,
            store,
            status,
        }))
    }

    pub(crate) fn limiter(&self) -> &rate_limit::RateLimiter {
        &self.0.limiter
    }

    /// Every denied minute not yet handed over, the open one too (at shutdown,
    /// once the server has stopped answering).
    pub fn take_denied(&self) -> Vec<crate::agent::DeniedMinute> {
        self.0.denied.drain_all()
    }
}

/// The API's router, to merge into the server's: exactly [`ROUTES`], its own
/// fallbacks (JSON 404 and 405, for all of `/api/`), and the rate limit on all
/// of it.
pub fn router(state: ApiState) -> Router {
    let mut api = Router::new();
    for (method, path) in ROUTES {
        if let Some(handler) = handler(method, path) {
            api = api.route(path, handler);
        }
    }
    let api = api
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed);
    // Everything under /api/ is the API's: rate-limited, and a JSON 404 for a
    // version or path it does not serve.
    Router::new()
        .nest(PREFIX, api)
        .route("/api", any(handlers::not_found))
        .route("/api/", any(handlers::not_found))
        .route("/api/{*rest}", any(handlers::not_found))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ))
        .with_state(state)
}

/// The handler of one entry of [`ROUTES`]: the table is the one list of routes,
/// which the OpenAPI description is tested against.
fn handler(method: &str, path: &str) -> Option<MethodRouter<ApiState>> {
    Some(match (method, path) {
        ("get", "/bots") => get(handlers::bots),
        ("get", "/bots/{slug}") => get(handlers::bot),
        ("post", "/check") => post(handlers::check),
        ("post", "/bots/{slug}/acks") => post(handlers::request_ack),
        ("post", "/acks/{id}/approve") => post(handlers::approve),
        ("post", "/bots/{slug}/clear") => post(handlers::clear),
        ("post", "/pause") => post(handlers::pause),
        ("post", "/resume") => post(handlers::resume),
        ("get", "/audit") => get(handlers::audit),
        ("get", "/audit/verify") => get(handlers::audit_verify),
        _ => return None,
    })
}

/// Hands each ended minute of denied requests to the agent's loop for the audit
/// log, until `stop` turns true.
pub fn spawn_denied_flush(state: &ApiState, mut stop: watch::Receiver<bool>) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DENIED_FLUSH);
        loop {
            tokio::select! {
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => break,
                _ = tick.tick() => {}
            }
            for minute in state.0.denied.drain_ended(crate::time::now_ms()) {
                if state
                    .0
                    .commands
                    .send(Command::Denied(minute))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_has_a_handler_and_paths_are_unique() {
        for (method, path) in ROUTES {
            assert!(handler(method, path).is_some(), "{method} {path}");
        }
        let mut paths: Vec<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(
            paths.len(),
            ROUTES.len(),
            "one method per path: the router adds each path once"
        );
    }
}
