//! The HTTPS server's time bounds, with the bounds shortened so a test shows them
//! firing in well under a second (the public `serve` uses [`LIMITS`]).

use std::time::Instant;

use axum::routing::get;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use super::*;

/// Generous for a loaded 2-core machine, far below what an unbounded wait takes.
const DEADLINE: Duration = Duration::from_secs(10);

const SHORT: Limits = Limits {
    handshake: Duration::from_millis(200),
    header_read: Duration::from_millis(200),
    drain: Duration::from_millis(300),
};

struct Pki {
    _dir: tempfile::TempDir,
    config: Arc<ServerConfig>,
    ca: CertificateDer<'static>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    Pki {
        config: server_tls_config(&cert, &key).unwrap(),
        ca: ca.der().clone(),
        _dir: dir,
    }
}

fn https_client(ca: &CertificateDer<'static>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

fn plain_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A router whose `/stuck` never answers; each request entering it is reported.
fn stuck_router() -> (Router, mpsc::UnboundedReceiver<()>) {
    let (entered_tx, entered_rx) = mpsc::unbounded_channel();
    let router = Router::new().route(
        "/stuck",
        get(move || {
            let _ = entered_tx.send(());
            std::future::pending::<&'static str>()
        }),
    );
    (router, entered_rx)
}

#[tokio::test]
async fn silent_client_is_disconnected_after_the_handshake_bound() {
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_https(
        listener,
        Router::new(),
        pki.config.clone(),
        std::future::pending(),
        SHORT,
    ));

    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(DEADLINE, silent.read(&mut buf))
        .await
        .expect("the server must close a connection that never starts its handshake");
    // EOF or a reset: either way the server gave up on it.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.abort();
}

#[tokio::test]
async fn https_request_stuck_past_the_drain_bound_is_cut_at_shutdown() {
    let pki = pki();
    let (router, mut entered) = stuck_router();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_https(
        listener,
        router,
        pki.config.clone(),
        async move {
            let _ = stop_rx.await;
        },
        SHORT,
    ));

    let client = https_client(&pki.ca);
    let request =
        tokio::spawn(async move { client.get(format!("https://{addr}/stuck")).send().await });
    tokio::time::timeout(DEADLINE, entered.recv())
        .await
        .expect("the request reached its handler");

    let started = Instant::now();
    stop_tx.send(()).unwrap();
    let served = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returns once the drain bound has passed");
    assert!(served.unwrap().is_ok());
    assert!(
        started.elapsed() >= SHORT.drain,
        "the stuck request got its drain time first"
    );
    let answer = tokio::time::timeout(DEADLINE, request).await.unwrap();
    assert!(
        answer.unwrap().is_err(),
        "the stuck request was cut, not answered"
    );
}

#[tokio::test]
async fn plain_request_stuck_past_the_drain_bound_is_cut_at_shutdown() {
    let (router, mut entered) = stuck_router();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve_http(
        listener,
        router,
        async move {
            let _ = stop_rx.await;
        },
        SHORT.drain,
    ));

    let client = plain_client();
    let _request =
        tokio::spawn(async move { client.get(format!("http://{addr}/stuck")).send().await });
    tokio::time::timeout(DEADLINE, entered.recv())
        .await
        .expect("the request reached its handler");

    let started = Instant::now();
    stop_tx.send(()).unwrap();
    let served = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returns once the drain bound has passed");
    assert!(served.unwrap().is_ok());
    assert!(started.elapsed() >= SHORT.drain);
}
