//! `http(s)://` running configs: one `GET`, no redirects, the body bounded by
//! `max_body_bytes` while it streams. Owns the reqwest client's settings; it
//! neither parses the body nor applies the per-fetch deadline (the caller wraps
//! the whole fetch in one), and never logs or reports a header value.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, redirect};

use super::{FetchFailure, RunningDoc};
use crate::canon::Format;
use crate::config::{Header, redact_url_credentials};
use crate::report::UnknownReason;

/// Idle connections live this long, as Prometheus keeps its scrape connections:
/// long enough to be reused by the next check at short intervals, short enough
/// that a fleet of distinct hosts does not pin thousands of sockets for good.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The shared client. Proxies from the environment are ignored on purpose: bots
/// are internal services, and an `HTTPS_PROXY` meant for outbound traffic must
/// not route (and see) the fleet's running configs and their auth headers.
pub(super) fn client(
    tls: rustls::ClientConfig,
    max_in_flight: usize,
) -> Result<Client, reqwest::Error> {
    let mut defaults = HeaderMap::new();
    defaults.insert(ACCEPT, HeaderValue::from_static("application/json"));
    Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(redirect::Policy::none())
        .no_proxy()
        // Enough idle connections per host for every concurrent fetch to find one
        // at the next check, when a whole fleet sits behind one host:port.
        .pool_max_idle_per_host(max_in_flight)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .user_agent(concat!("config-drift-detector/", env!("CARGO_PKG_VERSION")))
        .default_headers(defaults)
        .build()
}

/// A configured header that HTTP cannot carry. Only the name is ever shown: the
/// value is typically a token.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("`{0}` is not a valid HTTP header name")]
    Name(String),
    #[error("the value of header `{0}` is not a valid HTTP header value")]
    Value(String),
}

/// The headers of one fetch. Values are marked sensitive so that no `Debug`
/// output of the request (ours, reqwest's or hyper's) prints them.
pub(super) fn header_map(headers: &[Header]) -> Result<HeaderMap, HeaderError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeaderError::Name(h.name.clone()))?;
        let mut value =
            HeaderValue::from_str(&h.value).map_err(|_| HeaderError::Value(h.name.clone()))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// `GET url` and the body, at most `max_body_bytes` of it.
pub(super) async fn fetch(
    client: &Client,
    url: &str,
    headers: &[Header],
    max_body_bytes: u64,
) -> Result<RunningDoc, FetchFailure> {
    let source = redact_url_credentials(url);
    let headers = header_map(headers).map_err(|e| {
        FetchFailure::new(
            UnknownReason::RuntimeUnreachable,
            format!("{source} is not asked: {e}"),
        )
    })?;
    let response = client
        .get(url)
        .headers(headers)
        .send()
        .await
        .map_err(|e| failure_from(e, &source))?;

    let status = response.status();
    if !status.is_success() {
        let note = if status.is_redirection() {
            " (redirects are not followed)"
        } else {
            ""
        };
        return Err(FetchFailure::new(
            UnknownReason::RuntimeBadResponse,
            format!("HTTP {} from {source}{note}", status.as_u16()),
        ));
    }
    if let Some(declared) = response.content_length()
        && declared > max_body_bytes
    {
        // Dropping the response closes the connection without reading the body.
        return Err(FetchFailure::new(
            UnknownReason::RuntimeTooLarge,
            format!(
                "{source} declared a body of {declared} bytes, above max_body_bytes = {max_body_bytes}"
            ),
        ));
    }
    let bytes = read_body(response, max_body_bytes, &source).await?;
    Ok(RunningDoc {
        bytes,
        format: Format::Json,
        loaded_at_ms: None,
    })
}

/// Streams the body, cutting it off as soon as it would pass the limit: at most
/// the limit is ever held, whatever the peer declared or keeps sending.
async fn read_body(
    mut response: Response,
    max_body_bytes: u64,
    source: &str,
) -> Result<Vec<u8>, FetchFailure> {
    let limit = usize::try_from(max_body_bytes).unwrap_or(usize::MAX);
    let declared = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok());
    let mut body: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failure_from(e, source))?
    {
        let needed = body.len().saturating_add(chunk.len());
        if needed > limit {
            return Err(FetchFailure::new(
                UnknownReason::RuntimeTooLarge,
                format!(
                    "{source} sent a body larger than max_body_bytes = {max_body_bytes}; it was cut off"
                ),
            ));
        }
        if needed > body.capacity() {
            // Grow by doubling as `Vec` would, but never past the limit.
            let target = needed.max(body.capacity().saturating_mul(2)).min(limit);
            body.reserve_exact(target - body.len());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a transport error to the contract's reasons. reqwest's own message names
/// the URL, so only the error chain below it is used, never the URL inside it.
fn failure_from(err: reqwest::Error, source: &str) -> FetchFailure {
    let err = err.without_url();
    let cause = root_cause(&err);
    if err.is_builder() {
        FetchFailure::new(
            UnknownReason::RuntimeUnreachable,
            format!("{source} cannot be requested: {cause}"),
        )
    } else if err.is_connect() {
        // Refused, DNS and TLS handshake failures all land here.
        FetchFailure::new(
            UnknownReason::RuntimeUnreachable,
            format!("{source} cannot be reached: {cause}"),
        )
    } else if err.is_timeout() {
        FetchFailure::new(
            UnknownReason::RuntimeTimeout,
            format!("{source} timed out: {cause}"),
        )
    } else if has_io_error(&err) {
        // The connection itself failed after it was made (reset, TLS alert such
        // as a refused client certificate): the bot could not be talked to.
        FetchFailure::new(
            UnknownReason::RuntimeUnreachable,
            format!("{source}: the connection failed: {cause}"),
        )
    } else {
        // The peer answered, but not with valid HTTP, or closed mid-answer.
        FetchFailure::new(
            UnknownReason::RuntimeBadResponse,
            format!("{source} sent no valid HTTP answer: {cause}"),
        )
    }
}

/// The innermost message of an error chain: the one that says what happened
/// ("Connection refused", "invalid peer certificate: UnknownIssuer").
fn root_cause(err: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn has_io_error(err: &reqwest::Error) -> bool {
    let mut current = err.source();
    while let Some(e) = current {
        if e.is::<std::io::Error>() {
            return true;
        }
        current = e.source();
    }
    false
}
