//! `https://` running configs: a private CA given by `ca_file`, and mTLS with
//! `client_cert`/`client_key`, against a loopback TLS bot with generated certs.

mod runtime_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use config_drift_detector::config::RuntimeConfig;
use config_drift_detector::report::UnknownReason;
use config_drift_detector::runtime::{Fetched, Fetcher, RuntimeSetupError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use runtime_support::{
    Behaviour, http_bot, runtime_config, serve_connection, temp_dir, write_file,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const BODY: &str = r#"{"tls":true}"#;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM
/// files in a temporary directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: String,
    server_key: String,
    client_cert: PathBuf,
    client_key: PathBuf,
    other_ca: PathBuf,
}

fn new_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

fn pki() -> Pki {
    let dir = temp_dir();
    let (ca, issuer) = new_ca("test bots CA");
    let (other_ca, _) = new_ca("some other CA");

    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();

    let mut client = CertificateParams::new(Vec::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "config-drift-detector");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();

    Pki {
        ca: write_file(&dir, "ca.pem", ca.pem().as_bytes()),
        other_ca: write_file(&dir, "other-ca.pem", other_ca.pem().as_bytes()),
        client_cert: write_file(&dir, "client.pem", client_cert.pem().as_bytes()),
        client_key: write_file(&dir, "client.key", client_key.serialize_pem().as_bytes()),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        _dir: dir,
    }
}

/// An https bot answering `BODY`; with `client_ca`, it requires a client
/// certificate issued by it.
async fn spawn_tls_bot(pki: &Pki, client_ca: Option<&PathBuf>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(pki.server_cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(ca).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let requests = Arc::new(AtomicUsize::new(0));
                    serve_connection(tls, Behaviour::Json(BODY.into()), requests).await;
                }
            });
        }
    });
    format!("https://127.0.0.1:{port}/config")
}

async fn fetch_one(cfg: &RuntimeConfig, url: String) -> Fetched {
    let fetcher = Fetcher::new(cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = fetcher
        .fetch_all(&[http_bot("tls-bot", url)], deadline)
        .await;
    got.remove(0)
}

fn tls_config(ca: Option<&PathBuf>) -> RuntimeConfig {
    let mut cfg = runtime_config(5_000, 4, 1024);
    cfg.ca_file = ca.cloned();
    cfg
}

#[tokio::test]
async fn https_bot_with_a_private_ca_from_ca_file_is_read() {
    let pki = pki();
    let url = spawn_tls_bot(&pki, None).await;
    let got = fetch_one(&tls_config(Some(&pki.ca)), url).await;
    match &got.result {
        Ok(doc) => assert_eq!(doc.bytes, BODY.as_bytes()),
        Err(e) => panic!("{:?}: {}", e.reason, e.detail),
    }
}

#[tokio::test]
async fn https_bot_whose_ca_is_not_trusted_is_unreachable() {
    let pki = pki();
    let url = spawn_tls_bot(&pki, None).await;
    for cfg in [tls_config(None), tls_config(Some(&pki.other_ca))] {
        let got = fetch_one(&cfg, url.clone()).await;
        let e = got
            .result
            .expect_err("an untrusted server must not be read");
        eprintln!("untrusted: {}", e.detail);
        assert_eq!(e.reason, UnknownReason::RuntimeUnreachable, "{}", e.detail);
        assert!(e.detail.contains("certificate"), "{}", e.detail);
    }
}

#[tokio::test]
async fn client_certificate_is_presented_when_configured() {
    let pki = pki();
    let url = spawn_tls_bot(&pki, Some(&pki.ca)).await;

    let mut cfg = tls_config(Some(&pki.ca));
    cfg.client_cert = Some(pki.client_cert.clone());
    cfg.client_key = Some(pki.client_key.clone());
    let got = fetch_one(&cfg, url.clone()).await;
    match &got.result {
        Ok(doc) => assert_eq!(doc.bytes, BODY.as_bytes()),
        Err(e) => panic!("{:?}: {}", e.reason, e.detail),
    }

    // The same bot refuses a client without the certificate.
    let got = fetch_one(&tls_config(Some(&pki.ca)), url).await;
    let e = got
        .result
        .expect_err("the bot requires a client certificate");
    eprintln!("without client cert: {}", e.detail);
    assert_eq!(e.reason, UnknownReason::RuntimeUnreachable, "{}", e.detail);
}

#[test]
fn unusable_tls_files_stop_setup_naming_the_file() {
    let pki = pki();
    let dir = temp_dir();
    let garbage = write_file(&dir, "garbage.pem", b"this is not PEM\n");

    let err = Fetcher::new(&tls_config(Some(&garbage)))
        .err()
        .expect("no CA in it");
    assert!(matches!(err, RuntimeSetupError::Tls(_)));
    assert!(err.to_string().contains("garbage.pem"), "{err}");

    let missing = dir.path().join("missing.pem");
    let err = Fetcher::new(&tls_config(Some(&missing)))
        .err()
        .expect("missing CA");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let mut cfg = tls_config(None);
    cfg.client_cert = Some(pki.client_cert.clone());
    let err = Fetcher::new(&cfg).err().expect("cert without key");
    assert!(err.to_string().contains("client_key"), "{err}");

    // A key that does not belong to the certificate.
    let mut cfg = tls_config(None);
    cfg.client_cert = Some(pki.client_cert.clone());
    cfg.client_key = Some(write_file(
        &dir,
        "other.key",
        KeyPair::generate().unwrap().serialize_pem().as_bytes(),
    ));
    let err = Fetcher::new(&cfg).err().expect("mismatched key");
    assert!(err.to_string().contains("other.key"), "{err}");
}
