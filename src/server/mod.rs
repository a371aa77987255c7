//! The agent's HTTP server on `server.listen` (§12): liveness, the health signal
//! alerting uses, and `/metrics` in Prometheus text. It reads shared status; it
//! never runs a check itself.

pub mod health;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use health::AgentStatus;

/// Renders the Prometheus text exposition on demand.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct ServerState {
    pub status: Arc<AgentStatus>,
    pub metrics: MetricsRenderer,
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/livez", get(health::livez))
        .route("/healthz/config_drift_detector", get(health::healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<ServerState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (state.metrics)(),
    )
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
