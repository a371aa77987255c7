//! The agent's HTTP server on `server.listen` (§12): liveness, the health signal
//! alerting uses, and `/metrics` in Prometheus text, over plain HTTP or, with
//! `tls_cert`/`tls_key`, HTTPS (tls.rs). It reads shared status; it never runs a
//! check itself.

pub mod health;
pub mod tls;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::sync::oneshot;

use crate::agent::AgentStatus;
use crate::telemetry::events::ServerStop;

pub use tls::{TlsError, server_tls_config};

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

/// How long open connections get to finish their requests once shutdown begins;
/// past it `serve` returns anyway, so a stuck client cannot hold the agent's exit
/// (HTTPS connections are closed then; plain ones end with the process).
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves: plain HTTP/1.1 when
/// `tls` is `None`, HTTPS otherwise (see [`server_tls_config`]). Handlers can
/// extract `ConnectInfo<SocketAddr>` (the client's address) either way. On
/// shutdown it stops accepting at once and waits at most [`SHUTDOWN_DRAIN`] for
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => serve_http(listener, router, shutdown, SHUTDOWN_DRAIN).await,
        Some(config) => tls::serve_https(listener, router, config, shutdown, tls::LIMITS).await,
    }
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    // axum's graceful shutdown waits for every connection without a bound; the
    // signal is relayed so the wait after it can be bounded here.
    let (began_tx, began_rx) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = began_tx.send(());
    };
    let mut server = pin!(
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .into_future()
    );
    tokio::select! {
        biased;
        result = server.as_mut() => return result,
        Ok(()) = began_rx => {}
    }
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result,
        Err(_) => {
            ServerStop::Drained { open: None, drain }.emit();
            Ok(())
        }
    }
}
