//! One function per route of §12's table. Each authenticates first (after the
//! rate limit), then reads the published snapshot or the state database, or
//! hands a `Command` to the agent's loop and answers from its reply.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::ApiState;
use super::auth::authorize;
use super::error::ApiError;
use super::protocol::{PauseBody, ReasonBody, outcome_json};
use super::rate_limit::Source;
use crate::agent::schedule::Command;
use crate::agent::{Actor, AdminRequest};
use crate::config::Role;

/// The longest `reason` accepted (it goes into logs and the audit chain).
const MAX_REASON_CHARS: usize = 1000;

/// The largest request body read. Bodies are read only after authentication,
/// so an anonymous caller is always 401 and counted, never 413.
const MAX_BODY_BYTES: usize = 64 * 1024;

type Answer = Result<Response, ApiError>;

impl ApiState {
    /// The caller, if its token and role allow; a refusal is counted for the
    /// audit log (per source and minute).
    fn caller(&self, headers: &HeaderMap, source: IpAddr, needed: Role) -> Result<Actor, ApiError> {
        let outcome = authorize(&self.0.config.borrow().tokens, headers, needed);
        match outcome {
            Ok((name, role)) => Ok(Actor { name, role, source }),
            Err((denial, error)) => {
                self.0.denied.record(source, denial, crate::time::now_ms());
                Err(error)
            }
        }
    }

    async fn admin(&self, actor: Actor, request: AdminRequest) -> Result<String, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .commands
            .send(Command::Admin {
                actor,
                request,
                reply,
            })
            .await
            .map_err(|_| ApiError::unavailable())?;
        let outcome = answer.await.map_err(|_| ApiError::unavailable())??;
        Ok(outcome_json(&outcome))
    }
}

fn json_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    json_text(status, value.to_string())
}

pub async fn bots(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
) -> Answer {
    s.caller(&headers, ip, Role::Viewer)?;
    let snapshot = Arc::clone(&s.0.reports.borrow());
    let mut body = String::from("[");
    for (i, report) in snapshot.values().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(report);
    }
    body.push(']');
    Ok(json_text(StatusCode::OK, body))
}

pub async fn bot(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
) -> Answer {
    s.caller(&headers, ip, Role::Viewer)?;
    let slug = path(slug)?;
    let report = s.0.reports.borrow().get(&slug).cloned();
    match report {
        Some(r) => Ok(json_text(StatusCode::OK, r)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no report for bot `{slug}`: it is not in this agent's registry or has not been checked yet"
            ),
        )),
    }
}

pub async fn check(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
) -> Answer {
    let actor = s.caller(&headers, ip, Role::Oncall)?;
    let (reply, answer) = oneshot::channel();
    s.0.commands
        .send(Command::ManualCheck { actor, reply })
        .await
        .map_err(|_| ApiError::unavailable())?;
    match answer.await {
        Ok(Some(result)) => Ok(json(
            StatusCode::OK,
            &serde_json::to_value(&result).unwrap_or_default(),
        )),
        Ok(None) if s.0.status.mode() == crate::config::Mode::Off => Err(ApiError::new(
            StatusCode::CONFLICT,
            "the agent's mode is off: it runs no checks",
        )),
        _ => Err(ApiError::unavailable()),
    }
}

/// Reads and parses an optional JSON body (an empty body is `{}`), at most
/// [`MAX_BODY_BYTES`].
async fn body<T: serde::de::DeserializeOwned>(request: Body) -> Result<T, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(request, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} KiB or could not be read",
                    MAX_BODY_BYTES / 1024
                ),
            )
        })?;
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

/// A path parameter, or a JSON 400 saying why it is not one.
fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn reason(r: Option<String>) -> Result<String, ApiError> {
    let r = r.map(|r| r.trim().to_owned()).unwrap_or_default();
    if r.is_empty() {
        return Err(ApiError::bad_request("a non-empty `reason` is required"));
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(format!(
            "`reason` is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(r)
}

pub async fn request_ack(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
    request: Body,
) -> Answer {
    let actor = s.caller(&headers, ip, Role::Oncall)?;
    let slug = path(slug)?;
    let reason = reason(body::<ReasonBody>(request).await?.reason)?;
    let ack = s
        .admin(actor, AdminRequest::RequestAck { slug, reason })
        .await?;
    Ok(json_text(StatusCode::CREATED, ack))
}

pub async fn approve(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    let actor = s.caller(&headers, ip, Role::Oncall)?;
    let id = path(id)?;
    let ack = s.admin(actor, AdminRequest::Approve { id }).await?;
    Ok(json_text(StatusCode::OK, ack))
}

pub async fn clear(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
    request: Body,
) -> Answer {
    let actor = s.caller(&headers, ip, Role::Admin)?;
    let slug = path(slug)?;
    let reason = reason(body::<ReasonBody>(request).await?.reason)?;
    let answer = s.admin(actor, AdminRequest::Clear { slug, reason }).await?;
    Ok(json_text(StatusCode::OK, answer))
}

pub async fn pause(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
    request: Body,
) -> Answer {
    let actor = s.caller(&headers, ip, Role::Admin)?;
    let b: PauseBody = body(request).await?;
    let reason = reason(b.reason)?;
    let duration = match b.duration.as_deref() {
        None => None,
        Some(text) => {
            let d = crate::time::parse_duration(text)
                .map_err(|e| ApiError::bad_request(format!("`for`: {e}")))?;
            if d.is_zero() {
                return Err(ApiError::bad_request("`for` must be longer than zero"));
            }
            Some(d)
        }
    };
    let answer = s
        .admin(actor, AdminRequest::Pause { reason, duration })
        .await?;
    Ok(json_text(StatusCode::OK, answer))
}

pub async fn resume(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
) -> Answer {
    let actor = s.caller(&headers, ip, Role::Admin)?;
    let answer = s.admin(actor, AdminRequest::Resume).await?;
    Ok(json_text(StatusCode::OK, answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    since: Option<String>,
}

/// `GET /audit?since=T`: the entries as stored, one JSON object per line.
pub async fn audit(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    s.caller(&headers, ip, Role::Admin)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let since_ms = match q.since.as_deref() {
        None => i64::MIN,
        Some(t) => crate::time::parse_time(t, crate::time::now_ms())
            .map_err(|e| ApiError::bad_request(format!("`since`: {e}")))?,
    };
    let store = Arc::clone(&s.0.store);
    let lines = tokio::task::spawn_blocking(move || store.audit_lines(since_ms))
        .await
        .map_err(|_| ApiError::internal("reading the audit log did not finish"))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut body = String::new();
    for line in lines {
        body.push_str(&line);
        body.push('\n');
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response())
}

/// `GET /audit/verify`: the chain walked as `audit verify` walks it.
pub async fn audit_verify(
    State(s): State<ApiState>,
    Extension(Source(ip)): Extension<Source>,
    headers: HeaderMap,
) -> Answer {
    s.caller(&headers, ip, Role::Viewer)?;
    let store = Arc::clone(&s.0.store);
    let verdict = tokio::task::spawn_blocking(move || store.verify_audit())
        .await
        .map_err(|_| ApiError::internal("reading the audit log did not finish"))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "audit": verdict }),
    ))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route in the admin API")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method",
    )
}
