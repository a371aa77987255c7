//! `https://` running configs: a private CA given by `ca_file`, and mTLS with
//! `client_cert`/`client_key`, against a loopback TLS bot with generated certs.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use config_drift_detector::config::RuntimeConfig;
use config_drift_detector::report::UnknownReason;
use config_drift_detector::runtime::{Fetched, Fetcher, RuntimeSetupError};
use rcgen::KeyPair;
use support::bot_config::{http_bot, runtime_config};
use support::bots::{BotServer, Reply};
use support::pki::Pki;
use support::{temp_dir, write_file};

const BODY: &str = r#"{"tls":true}"#;

/// The URL of an https bot answering `BODY`; with `client_ca`, it requires a
/// client certificate issued by it. The bot serves until the test binary ends.
fn spawn_tls_bot(pki: &Pki, client_ca: Option<&PathBuf>) -> String {
    let tls = pki.server_config(&[b"http/1.1"], client_ca.map(PathBuf::as_path));
    BotServer::answering_tls(Reply::Json(BODY.into()), tls).url("/config")
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
    let pki = Pki::new();
    let url = spawn_tls_bot(&pki, None);
    let got = fetch_one(&tls_config(Some(&pki.ca)), url).await;
    match &got.result {
        Ok(doc) => assert_eq!(doc.bytes, BODY.as_bytes()),
        Err(e) => panic!("{:?}: {}", e.reason, e.detail),
    }
}

#[tokio::test]
async fn https_bot_whose_ca_is_not_trusted_is_unreachable() {
    let pki = Pki::new();
    let url = spawn_tls_bot(&pki, None);
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
    let pki = Pki::new();
    let url = spawn_tls_bot(&pki, Some(&pki.ca));

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
    let pki = Pki::new();
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
