//! The admin API's errors: `{ "error": "…" }` with the status §12 names, plus
//! `Retry-After` on 429 and `WWW-Authenticate` on 401. Must not echo a token.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::agent::AdminError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn rate_limited(retry_after_s: u64) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many requests from this address; retry after {retry_after_s} s"),
            retry_after_s: Some(retry_after_s),
        }
    }

    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent is shutting down",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// §12's status for each reason an admin action was not carried out.
impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        let status = match e {
            AdminError::UnknownBot(_) | AdminError::UnknownAck(_) => StatusCode::NOT_FOUND,
            AdminError::Ack(_)
            | AdminError::NoEpisode(_)
            | AdminError::NotChecked(_)
            | AdminError::Off => StatusCode::CONFLICT,
            AdminError::State(_) | AdminError::Interrupted => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"config-drift-detector\""),
            );
        }
        response
    }
}
