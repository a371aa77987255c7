//! Proxies from the environment are ignored: bots are internal services, and a
//! proxy meant for outbound traffic must never see the fleet's running configs
//! or their auth headers. Alone in its own test binary because it sets process
//! environment variables.

mod support;

use std::time::{Duration, Instant};

use config_drift_detector::runtime::Fetcher;
use support::bot_config::{http_bot, runtime_config};
use support::bots::{BotServer, Reply};

#[tokio::test]
async fn proxy_environment_variables_are_ignored() {
    let bot = BotServer::answering(Reply::Json(r#"{"from":"bot"}"#.into()));
    let proxy = BotServer::answering(Reply::Json(r#"{"from":"proxy"}"#.into()));
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        // SAFETY: this test binary holds this one test, so no other thread reads
        // the environment while it is changed.
        unsafe { std::env::set_var(name, &proxy_url) };
    }
    for name in ["NO_PROXY", "no_proxy"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }

    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = fetcher
        .fetch_all(&[http_bot("direct", bot.url("/config"))], deadline)
        .await;

    let doc = got[0].result.as_ref().expect("the bot answers");
    assert_eq!(doc.bytes, br#"{"from":"bot"}"#);
    assert_eq!(proxy.connections(), 0);
}
