//! The agent's server over HTTPS (`[server]` tls_cert/tls_key) and plain HTTP:
//! `serve` run in-process on a loopback port with certificates made by rcgen,
//! driven by real clients; and `server_tls_config`'s one-sentence errors for
//! every kind of unusable certificate or key file.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use config_drift_detector::agent::AgentStatus;
use config_drift_detector::config::Mode;
use config_drift_detector::server::{
    MetricsRenderer, ServerState, router, serve, server_tls_config,
};
use rcgen::KeyPair;
use support::pki::Pki;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// Generous for a loaded 2-core machine; shorter than the server's own 10 s
/// handshake and drain bounds, so passing proves neither was waited out (as
/// `Pki::https_client` times out).
const PROMPT: Duration = Duration::from_secs(5);

fn plain_client() -> reqwest::Client {
    // reqwest is built without a TLS provider; even plain clients need one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PROMPT)
        .build()
        .unwrap()
}

fn agent_router() -> Router {
    let metrics: MetricsRenderer = Arc::new(|| "drift_registry_bots 0\n".to_owned());
    router(ServerState {
        status: Arc::new(AgentStatus::new(Mode::Shadow, Duration::from_secs(900))),
        metrics,
    })
}

/// A running `serve` and the means to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(router: Router, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, tls, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Asks for shutdown and waits for `serve` to return, at most [`PROMPT`].
    async fn shut_down(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(PROMPT, &mut self.task)
            .await
            .expect("serve returns promptly after shutdown");
        result.unwrap().expect("serve ends without an error");
        started.elapsed()
    }
}

async fn status_of(client: &reqwest::Client, url: &str) -> reqwest::StatusCode {
    client.get(url).send().await.expect("an answer").status()
}

/// Polls until connecting to `addr` is refused: the server has stopped accepting.
async fn wait_until_refused(addr: SocketAddr) {
    let deadline = Instant::now() + PROMPT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener still accepts after shutdown"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn livez_over_https_answers_200_to_a_client_trusting_the_ca() {
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    let server = Running::start(agent_router(), Some(tls)).await;
    let client = pki.https_client();

    assert_eq!(
        status_of(&client, &server.url("https", "/livez")).await,
        200
    );
    let metrics = client
        .get(server.url("https", "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(metrics.text().await.unwrap(), "drift_registry_bots 0\n");
    server.shut_down().await;
}

#[tokio::test]
async fn client_not_trusting_the_ca_is_refused() {
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    let server = Running::start(agent_router(), Some(tls)).await;
    let stranger = Pki::new().https_client();
    let err = stranger
        .get(server.url("https", "/livez"))
        .send()
        .await
        .expect_err("the server's certificate is not from the stranger's CA");
    assert!(err.is_connect(), "{err:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails_and_the_next_https_request_is_served() {
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    let server = Running::start(agent_router(), Some(tls)).await;

    let plain = plain_client()
        .get(server.url("http", "/livez"))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP must not be answered on the TLS port: {plain:?}"
    );
    assert_eq!(
        status_of(&pki.https_client(), &server.url("https", "/livez")).await,
        200
    );
    server.shut_down().await;
}

#[tokio::test]
async fn client_that_sends_nothing_does_not_block_others() {
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    let server = Running::start(agent_router(), Some(tls)).await;

    let _silent: Vec<TcpStream> = futures_util::future::join_all(
        (0..8).map(|_| async { TcpStream::connect(server.addr).await.unwrap() }),
    )
    .await;
    let client = pki.https_client();
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(
            status_of(&client, &server.url("https", "/livez")).await,
            200
        );
    }
    assert!(started.elapsed() < PROMPT);
    server.shut_down().await;
}

#[tokio::test]
async fn https_shutdown_is_prompt_with_idle_and_silent_connections_open() {
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    let server = Running::start(agent_router(), Some(tls)).await;

    // A keep-alive connection left idle after one request, and one that never
    // starts its handshake.
    let client = pki.https_client();
    assert_eq!(
        status_of(&client, &server.url("https", "/livez")).await,
        200
    );
    let mut silent = TcpStream::connect(server.addr).await.unwrap();

    let took = server.shut_down().await;
    assert!(took < PROMPT, "shutdown took {took:?}");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(PROMPT, silent.read(&mut buf))
        .await
        .expect("the silent connection is closed by shutdown");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn plain_shutdown_is_prompt_with_an_idle_connection_open() {
    let server = Running::start(agent_router(), None).await;
    let client = plain_client();
    assert_eq!(status_of(&client, &server.url("http", "/livez")).await, 200);
    let took = server.shut_down().await;
    assert!(took < PROMPT, "shutdown took {took:?}");
}

/// A router whose `/slow` answers only once `release` is notified, reporting
/// through `entered` that a request is waiting.
fn gated_router() -> (Router, Arc<Notify>, Arc<Notify>) {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let router = agent_router().route(
        "/slow",
        get(move || {
            let (e, r) = (e.clone(), r.clone());
            async move {
                e.notify_one();
                r.notified().await;
                "finished"
            }
        }),
    );
    (router, entered, release)
}

async fn request_in_flight_at_shutdown_is_answered(tls: Option<(Arc<rustls::ServerConfig>, &Pki)>) {
    let (router, entered, release) = gated_router();
    let (config, client, scheme) = match tls {
        Some((config, pki)) => (Some(config), pki.https_client(), "https"),
        None => (None, plain_client(), "http"),
    };
    let server = Running::start(router, config).await;
    let addr = server.addr;
    let url = server.url(scheme, "/slow");
    let request = tokio::spawn(async move { client.get(url).send().await?.text().await });
    tokio::time::timeout(PROMPT, entered.notified())
        .await
        .expect("the request reached its handler");

    let Running { stop, task, .. } = server;
    let _ = stop.expect("not stopped yet").send(());
    wait_until_refused(addr).await;
    assert!(!task.is_finished(), "serve waits for the request in flight");

    release.notify_one();
    let body = tokio::time::timeout(PROMPT, request)
        .await
        .expect("the request in flight is answered")
        .unwrap()
        .expect("a full answer");
    assert_eq!(body, "finished");
    tokio::time::timeout(PROMPT, task)
        .await
        .expect("serve returns once the request is answered")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn https_request_in_flight_at_shutdown_is_answered_while_new_ones_are_refused() {
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    request_in_flight_at_shutdown_is_answered(Some((tls, &pki))).await;
}

#[tokio::test]
async fn plain_request_in_flight_at_shutdown_is_answered_while_new_ones_are_refused() {
    request_in_flight_at_shutdown_is_answered(None).await;
}

#[tokio::test]
async fn handlers_see_the_client_address_over_http_and_https() {
    async fn peer(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
        peer.ip().to_string()
    }
    let pki = Pki::new();
    let tls = server_tls_config(&pki.server_cert, &pki.server_key).unwrap();
    for (config, client, scheme) in [
        (Some(tls), pki.https_client(), "https"),
        (None, plain_client(), "http"),
    ] {
        let server = Running::start(agent_router().route("/peer", get(peer)), config).await;
        let answer = client
            .get(server.url(scheme, "/peer"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{scheme}");
        assert_eq!(answer.text().await.unwrap(), "127.0.0.1", "{scheme}");
        server.shut_down().await;
    }
}

/// Serves with `cert`/`key` and checks one HTTPS request succeeds.
async fn serves_with(pki: &Pki, cert: &Path, key: &Path) {
    let tls = server_tls_config(cert, key)
        .unwrap_or_else(|e| panic!("{} / {}: {e}", cert.display(), key.display()));
    let server = Running::start(agent_router(), Some(tls)).await;
    assert_eq!(
        status_of(&pki.https_client(), &server.url("https", "/livez")).await,
        200
    );
    server.shut_down().await;
}

fn fixture_key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/server_tls_keys")
        .join(name)
}

#[tokio::test]
async fn usual_key_encodings_and_a_combined_file_are_accepted() {
    let pki = Pki::new();
    // PKCS#8 ECDSA (rcgen's own) is what every other test uses; here PKCS#1 RSA,
    // SEC1 EC, PKCS#8 Ed25519, and a chain with its CA after the server's cert.
    for (pkcs8, served) in [
        ("rsa-2048.pkcs8.pem", "rsa-2048.pkcs1.pem"),
        ("ec-p256.pkcs8.pem", "ec-p256.sec1.pem"),
    ] {
        let signing =
            KeyPair::from_pem(&std::fs::read_to_string(fixture_key(pkcs8)).unwrap()).unwrap();
        let cert = pki.write(&format!("{served}.crt"), &pki.sign(&signing));
        serves_with(&pki, &cert, &fixture_key(served)).await;
    }

    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = pki.write("ed25519.crt", &pki.sign(&ed));
    let key = pki.write("ed25519.key", &ed.serialize_pem());
    serves_with(&pki, &cert, &key).await;

    let combined_text = format!(
        "{}{}",
        std::fs::read_to_string(&pki.server_cert).unwrap(),
        std::fs::read_to_string(&pki.server_key).unwrap()
    );
    let combined = pki.write("combined.pem", &combined_text);
    serves_with(&pki, &combined, &combined).await;
}

fn error_of(cert: &Path, key: &Path) -> String {
    match server_tls_config(cert, key) {
        Ok(_) => panic!("{} / {} must be refused", cert.display(), key.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_one_sentence_naming(message: &str, file: &Path, what: &str) {
    assert!(
        message.contains(&file.display().to_string()),
        "names {}: {message}",
        file.display()
    );
    assert!(message.contains(what), "says {what:?}: {message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn unusable_certificate_or_key_files_are_named_with_what_is_wrong() {
    let pki = Pki::new();
    let missing = pki.dir().join("missing.pem");
    let garbage = pki.write("garbage.pem", "this is not PEM at all\n");
    let broken = pki.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n",
    );
    let folder = pki.dir().to_path_buf();
    let other_key = pki.write("other.key", &KeyPair::generate().unwrap().serialize_pem());
    let ca_first = pki.write(
        "ca-first.pem",
        &format!(
            "{}{}",
            pki.ca_pem,
            std::fs::read_to_string(&pki.server_cert).unwrap()
        ),
    );
    let encrypted = pki.write(
        "encrypted.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );

    // (tls_cert, tls_key, the file the message must name, its key, what is wrong)
    let cases: [(&Path, &Path, &Path, &str, &str); 9] = [
        (
            &missing,
            &pki.server_key,
            &missing,
            "tls_cert",
            "does not exist",
        ),
        (
            &pki.server_cert,
            &missing,
            &missing,
            "tls_key",
            "does not exist",
        ),
        (
            &folder,
            &pki.server_key,
            &folder,
            "tls_cert",
            "cannot be read",
        ),
        (
            &garbage,
            &pki.server_key,
            &garbage,
            "tls_cert",
            "holds no PEM certificate",
        ),
        (
            &broken,
            &pki.server_key,
            &broken,
            "tls_cert",
            "is not valid PEM",
        ),
        (
            &pki.server_cert,
            &pki.server_cert,
            &pki.server_cert,
            "tls_key",
            "holds no unencrypted PEM private key",
        ),
        (
            &pki.server_cert,
            &encrypted,
            &encrypted,
            "tls_key",
            "holds no unencrypted PEM private key",
        ),
        (
            &pki.server_cert,
            &other_key,
            &other_key,
            "tls_key",
            "does not match the certificate",
        ),
        (
            &ca_first,
            &pki.server_key,
            &ca_first,
            "tls_cert",
            "does not match the certificate",
        ),
    ];
    for (cert, key, named, key_name, what) in cases {
        let message = error_of(cert, key);
        eprintln!("{message}");
        assert_one_sentence_naming(&message, named, what);
        assert!(message.contains(key_name), "says {key_name}: {message}");
    }
    // A mismatch names both files.
    let message = error_of(&pki.server_cert, &other_key);
    assert_one_sentence_naming(&message, &pki.server_cert, "tls_cert");
}
