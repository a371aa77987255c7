//! `[runtime]` (§4): fetch bounds (`timeout_ms`, `max_in_flight`,
//! `max_body_bytes`, `latency_budget_ms`), the headers every bot inherits, the
//! TLS files (which must exist; a client cert and key come together), and the
//! shape of a bot's `runtime =` URL ([`runtime_source`]).
//!
//! Contacts no bot. Errors show a URL only with its credentials redacted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Env, Sink, existing_file, headers, int_in, pair};
use crate::config::error::{HeaderOwner, Place, RuntimeUrlError};
use crate::config::raw::RawRuntime;
use crate::config::{
    DEFAULT_LATENCY_BUDGET_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_MS,
    LATENCY_BUDGET_MS_RANGE, MAX_BODY_BYTES_RANGE, MAX_IN_FLIGHT_RANGE, RuntimeConfig,
    RuntimeSource, TIMEOUT_MS_RANGE, Warning, redact_url_credentials,
};

pub(super) fn runtime(
    raw: Option<RawRuntime>,
    dir: &Path,
    env: Env<'_>,
    sink: &mut Sink<'_>,
    warnings: &mut Vec<Warning>,
) -> RuntimeConfig {
    let raw = raw.unwrap_or_default();
    let here = || Place::Table("runtime");
    let timeout_ms = int_in(
        sink,
        "timeout_ms",
        here(),
        raw.timeout_ms,
        DEFAULT_TIMEOUT_MS,
        TIMEOUT_MS_RANGE,
    );
    let max_in_flight = int_in(
        sink,
        "max_in_flight",
        here(),
        raw.max_in_flight,
        DEFAULT_MAX_IN_FLIGHT,
        MAX_IN_FLIGHT_RANGE,
    );
    let max_body_bytes = int_in(
        sink,
        "max_body_bytes",
        here(),
        raw.max_body_bytes,
        DEFAULT_MAX_BODY_BYTES,
        MAX_BODY_BYTES_RANGE,
    );
    let latency_budget_ms = int_in(
        sink,
        "latency_budget_ms",
        here(),
        raw.latency_budget_ms,
        DEFAULT_LATENCY_BUDGET_MS,
        LATENCY_BUDGET_MS_RANGE,
    );
    if timeout_ms > latency_budget_ms {
        warnings.push(Warning::TimeoutAboveBudget {
            timeout_ms,
            latency_budget_ms,
        });
    }
    let headers = headers::headers(raw.headers, &HeaderOwner::Runtime, env, sink);
    let ca_file = existing_file(dir, raw.ca_file, "ca_file", "runtime", sink);
    let client_cert = existing_file(dir, raw.client_cert, "client_cert", "runtime", sink);
    let client_key = existing_file(dir, raw.client_key, "client_key", "runtime", sink);
    pair(
        &client_cert,
        &client_key,
        "client_cert",
        "client_key",
        "runtime",
        sink,
    );

    RuntimeConfig {
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
        max_body_bytes,
        latency_budget: Duration::from_millis(latency_budget_ms),
        headers,
        ca_file,
        client_cert,
        client_key,
    }
}

/// A bot's `runtime =` URL (§4). Errors redact credentials inside the URL.
pub(super) fn runtime_source(text: &str) -> Result<RuntimeSource, RuntimeUrlError> {
    let redacted = redact_url_credentials(text);
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(RuntimeUrlError::NotAUrl { redacted });
    };
    match scheme {
        "http" | "https" => {
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if host.is_empty() || text.chars().any(char::is_whitespace) {
                return Err(RuntimeUrlError::InvalidHttp {
                    redacted,
                    scheme: scheme.to_owned(),
                });
            }
            Ok(RuntimeSource::Http(text.to_owned()))
        }
        "grpc" | "grpcs" => {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if !is_host_port(authority) {
                return Err(RuntimeUrlError::NotHostPort {
                    redacted,
                    scheme: scheme.to_owned(),
                });
            }
            Ok(RuntimeSource::Grpc {
                authority: authority.to_owned(),
                tls: scheme == "grpcs",
            })
        }
        "file" => {
            if !rest.starts_with('/') || rest.len() == 1 {
                return Err(RuntimeUrlError::FileNotAbsolute { redacted });
            }
            Ok(RuntimeSource::File(PathBuf::from(rest)))
        }
        _ => Err(RuntimeUrlError::UnknownScheme {
            redacted,
            scheme: scheme.to_owned(),
        }),
    }
}

fn is_host_port(authority: &str) -> bool {
    let Some((host, port)) = authority.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    port_ok && host_ok
}
