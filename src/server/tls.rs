//! Optional TLS for the agent's own server (`[server]` `tls_cert`/`tls_key`, §3,
//! §12): reads the PEM certificate chain and private key into a rustls server
//! configuration (ring provider, HTTP/1.1 over ALPN), and serves a router over
//! HTTPS with tokio-rustls and hyper.
//!
//! The accept loop must never stop for one client: a failed or slow TLS handshake,
//! a client that sends nothing, or a broken connection ends only that connection.
//! Shutdown stops accepting at once and gives open connections a bounded drain.
//! Never logs key material or request content.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::telemetry::events::{AcceptFailed, ServerStop};

/// A `tls_cert`/`tls_key` pair that cannot be used, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} {path} does not exist")]
    Missing { key: &'static str, path: PathBuf },
    #[error("{key} {path} cannot be read: {source}")]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{key} {path} is not valid PEM: {source}")]
    BadPem {
        key: &'static str,
        path: PathBuf,
        source: pem::Error,
    },
    #[error("tls_cert {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("tls_key {path} holds no unencrypted PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)")]
    NoKey { path: PathBuf },
    #[error("tls_key {path} holds a private key that cannot be used for TLS: {source}")]
    UnusableKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "tls_key {key} does not match the certificate in tls_cert {cert} (the first certificate in tls_cert must be the server's own)"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("tls_cert {path} holds a server certificate that cannot be parsed: {source}")]
    UnusableCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the TLS protocol versions cannot be set up: {0}")]
    Protocol(rustls::Error),
}

/// Builds the server's TLS configuration from a PEM chain (the server's own
/// certificate first, then intermediates) and a PEM private key of any type
/// rustls reads (PKCS#8, PKCS#1 RSA, SEC1 EC). Both may be the same file.
pub fn server_tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read("tls_cert", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadPem {
            key: "tls_cert",
            path: cert.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }

    let key_pem = read("tls_key", key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: key.to_path_buf(),
        },
        source => TlsError::BadPem {
            key: "tls_key",
            path: key.to_path_buf(),
            source,
        },
    })?;

    // The ring provider is named here rather than taken from the process default,
    // so the server's TLS does not depend on what `main` installed first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = certified_key(&provider, chain, private, cert, key)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocol)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    // The router is served over HTTP/1.1 only (axum is built without http2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TlsError::Missing {
            key,
            path: path.to_path_buf(),
        },
        _ => TlsError::Unreadable {
            key,
            path: path.to_path_buf(),
            source,
        },
    })
}

/// The chain and key as one identity, checked to belong together: rustls would
/// otherwise accept a mismatched pair and every handshake would fail later.
fn certified_key(
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    private: PrivateKeyDer<'static>,
    cert: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|source| TlsError::UnusableKey {
            path: key.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // `Unknown`: the key cannot name its public half, so there is nothing to
        // compare (rustls itself accepts such keys).
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        Err(source) => Err(TlsError::UnusableCertificate {
            path: cert.to_path_buf(),
            source,
        }),
    }
}

/// Time bounds of the HTTPS server; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// A client must finish its TLS handshake within this, so silent or slow
    /// clients cannot pile up.
    pub handshake: Duration,
    /// A request's headers must arrive within this once a connection waits for them.
    pub header_read: Duration,
    /// After shutdown, open connections get this long to finish their requests.
    pub drain: Duration,
}

pub(super) const LIMITS: Limits = Limits {
    handshake: Duration::from_secs(10),
    header_read: Duration::from_secs(30),
    drain: super::SHUTDOWN_DRAIN,
};

/// How long to wait after an accept error that is not one connection's fault
/// (e.g. out of file descriptors): retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` over HTTPS on `listener` until `shutdown` resolves, then lets
/// open connections finish for at most `limits.drain`.
pub(super) async fn serve_https(
    listener: TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    connections.spawn(connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        router.clone(),
                        stop_rx.clone(),
                        limits,
                    ));
                }
                Err(error) if is_connection_error(&error) => {}
                Err(error) => {
                    AcceptFailed { error: &error }.emit();
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
            // Reaps finished connections so the set holds only open ones.
            Some(_) = connections.join_next() => {}
        }
    }

    // Closing the listener first makes new clients fail fast instead of waiting
    // in the backlog of a server that will not answer them.
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        ServerStop::Drained {
            open: Some(connections.len()),
            drain: limits.drain,
        }
        .emit();
        connections.shutdown().await;
    }
    Ok(())
}

/// Errors that concern one connection only; the listener itself is fine.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// One client: the TLS handshake under its time bound, then HTTP/1.1 until the
/// client leaves or shutdown asks the connection to finish its current request.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) {
    let handshake = tokio::time::timeout(limits.handshake, acceptor.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                // Debug, not warn: port scanners and plain-HTTP clients would
                // otherwise fill the log.
                tracing::debug!(peer = %peer, error = %error, "TLS handshake failed.");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %peer, "TLS handshake timed out.");
                return;
            }
        },
        () = stopped(&mut stop) => return,
    };

    // Handlers see the client's address as with axum::serve's connect info, so
    // per-source limits work the same over HTTP and HTTPS.
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        // A Router is always ready, so calling without poll_ready is sound.
        router.clone().call(request)
    });
    let mut conn = pin!(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
            .serve_connection(TokioIo::new(tls), service)
    );
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(peer = %peer, error = %error, "HTTPS connection ended with an error.");
            }
            return;
        }
        () = stopped(&mut stop) => {}
    }
    // Finishes the request in flight, answers it with `Connection: close`, and
    // closes an idle connection at once.
    conn.as_mut().graceful_shutdown();
    if let Err(error) = conn.await {
        tracing::debug!(peer = %peer, error = %error, "HTTPS connection ended with an error.");
    }
}

/// Resolves once shutdown was asked for (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
