//! `[server]` (§12): the listen address (an IP socket address, never a host
//! name), the TLS pair (files that must exist, set together) and the admin
//! API's rate limit. Binds nothing.

use std::net::SocketAddr;
use std::path::Path;

use super::{Sink, existing_file, int_in, pair};
use crate::config::error::{ConfigErrorKind, Place};
use crate::config::raw::RawServer;
use crate::config::{
    DEFAULT_LISTEN, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, RATE_LIMIT_RANGE,
    ServerConfig,
};

pub(super) fn server(raw: Option<RawServer>, dir: &Path, sink: &mut Sink<'_>) -> ServerConfig {
    let raw = raw.unwrap_or_default();
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        sink.push(ConfigErrorKind::InvalidListen {
            got: listen_text.to_owned(),
        });
        SocketAddr::from(([127, 0, 0, 1], 9464))
    });
    let tls_cert = existing_file(dir, raw.tls_cert, "tls_cert", "server", sink);
    let tls_key = existing_file(dir, raw.tls_key, "tls_key", "server", sink);
    pair(&tls_cert, &tls_key, "tls_cert", "tls_key", "server", sink);
    let rate_limit_per_s = int_in(
        sink,
        "rate_limit_per_s",
        Place::Table("server"),
        raw.rate_limit_per_s,
        DEFAULT_RATE_LIMIT_PER_S,
        RATE_LIMIT_RANGE,
    );
    let rate_limit_burst = int_in(
        sink,
        "rate_limit_burst",
        Place::Table("server"),
        raw.rate_limit_burst,
        DEFAULT_RATE_LIMIT_BURST,
        RATE_LIMIT_RANGE,
    );
    ServerConfig {
        listen,
        tls_cert,
        tls_key,
        rate_limit_per_s: u32::try_from(rate_limit_per_s).unwrap_or(u32::MAX),
        rate_limit_burst: u32::try_from(rate_limit_burst).unwrap_or(u32::MAX),
    }
}
