//! `/livez` (the process serves) and `/healthz/config_drift_detector` (the last
//! successful check is recent enough: an alerting signal, not a liveness probe),
//! both read from the agent's published `AgentStatus`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::ServerState;

#[derive(Serialize)]
struct Health {
    mode: &'static str,
    paused: bool,
    last_success_ms: Option<i64>,
}

pub(super) async fn livez() -> &'static str {
    "ok\n"
}

pub(super) async fn healthz(
    State(state): State<ServerState>,
) -> (StatusCode, Json<serde_json::Value>) {
    let status = &state.status;
    let body = Health {
        mode: status.mode().as_str(),
        paused: status.paused(),
        last_success_ms: status.last_success_ms(),
    };
    let code = if status.healthy(crate::time::now_ms()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(serde_json::to_value(body).unwrap_or_default()))
}
