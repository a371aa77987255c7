//! `http://` running configs through `Fetcher::fetch_all`, against real loopback
//! bots whose every byte and pause the test controls.

mod support;

use std::time::{Duration, Instant};

use config_drift_detector::canon::Format;
use config_drift_detector::report::UnknownReason;
use config_drift_detector::runtime::{Fetched, Fetcher, RuntimeSetupError};
use support::bot_config::{header, http_bot, runtime_config};
use support::bots::{BotServer, Reply};
use support::free_port;

const OK_BODY: &str = r#"{"max_usd":100}"#;

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn failure(f: &Fetched) -> (UnknownReason, &str) {
    match &f.result {
        Ok(doc) => panic!(
            "expected a failure, got {:?}",
            String::from_utf8_lossy(&doc.bytes)
        ),
        Err(e) => (e.reason, e.detail.as_str()),
    }
}

fn body(f: &Fetched) -> &[u8] {
    match &f.result {
        Ok(doc) => &doc.bytes,
        Err(e) => panic!("expected a body, got {:?}: {}", e.reason, e.detail),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failing_bot_gets_its_reason_while_the_others_succeed_within_the_timeout() {
    let timeout_ms = 300;
    let max_body = 64 * 1024;
    let ok_a = BotServer::answering(Reply::Json(OK_BODY.into()));
    let sleeper = BotServer::answering(Reply::Stall(Duration::from_secs(30), OK_BODY.into()));
    let trickler =
        BotServer::answering(Reply::Trickle(Duration::from_millis(10), "x".repeat(1000)));
    let error500 = BotServer::answering(Reply::Status(500));
    let redirect = BotServer::answering(Reply::Redirect(ok_a.url("/config")));
    let huge = BotServer::answering(Reply::DeclaredLength(10_000_000_000));
    let chunked = BotServer::answering(Reply::Endless(8 * 1024));
    let refused = format!("http://127.0.0.1:{}/config", free_port());
    let ok_b = BotServer::answering(Reply::Json(r#"{"b":true}"#.into()));

    let bots = vec![
        http_bot("ok-a", ok_a.url("/config")),
        http_bot("sleeper", sleeper.url("/config")),
        http_bot("trickler", trickler.url("/config")),
        http_bot("error500", error500.url("/config")),
        http_bot("redirect", redirect.url("/config")),
        http_bot("huge", huge.url("/config")),
        http_bot("chunked", chunked.url("/config")),
        http_bot("refused", refused),
        http_bot("ok-b", ok_b.url("/config")),
    ];
    let fetcher = Fetcher::new(&runtime_config(timeout_ms, 16, max_body)).unwrap();

    let started = Instant::now();
    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    let elapsed = started.elapsed();

    assert_eq!(got.len(), bots.len());
    assert_eq!(body(&got[0]), OK_BODY.as_bytes());
    assert!(matches!(&got[0].result, Ok(doc) if doc.format == Format::Json));
    assert_eq!(failure(&got[1]).0, UnknownReason::RuntimeTimeout);
    assert!(
        failure(&got[1]).1.contains("300 ms"),
        "{}",
        failure(&got[1]).1
    );
    // The trickler answered at once but could not finish its body in time.
    assert_eq!(failure(&got[2]).0, UnknownReason::RuntimeTimeout);
    assert_eq!(failure(&got[3]).0, UnknownReason::RuntimeBadResponse);
    assert!(
        failure(&got[3]).1.contains("HTTP 500"),
        "{}",
        failure(&got[3]).1
    );
    // Not followed: the redirect target would have answered 200.
    assert_eq!(failure(&got[4]).0, UnknownReason::RuntimeBadResponse);
    assert!(
        failure(&got[4]).1.contains("HTTP 302"),
        "{}",
        failure(&got[4]).1
    );
    // The huge bot never sends its body, so only refusing on the header avoids
    // a timeout here.
    assert_eq!(failure(&got[5]).0, UnknownReason::RuntimeTooLarge);
    assert!(
        failure(&got[5]).1.contains("10000000000"),
        "{}",
        failure(&got[5]).1
    );
    // The chunked bot never ends its body: only a cut-off gives too_large.
    assert_eq!(failure(&got[6]).0, UnknownReason::RuntimeTooLarge);
    assert_eq!(failure(&got[7]).0, UnknownReason::RuntimeUnreachable);
    assert_eq!(body(&got[8]), br#"{"b":true}"#);
    for (b, f) in bots.iter().zip(&got) {
        assert!(f.duration.is_some(), "{} was started", b.slug);
        if let Err(e) = &f.result {
            eprintln!("{}: {} {}", b.slug, e.reason.as_str(), e.detail);
        }
    }
    // Bounded by the timeout, not by the slowest bot (30 s) or the trickler (10 s):
    // 5 s is many times the 300 ms timeout, and half the trickler.
    assert!(
        elapsed < Duration::from_secs(5),
        "fetch_all took {elapsed:?}"
    );
}

#[tokio::test]
async fn huge_declared_length_is_refused_before_the_timeout() {
    let huge = BotServer::answering(Reply::DeclaredLength(2_000_000));
    // A timeout far above the bound: waiting for the body would take 20 s.
    let fetcher = Fetcher::new(&runtime_config(20_000, 4, 1_000_000)).unwrap();
    let got = fetcher
        .fetch_all(&[http_bot("huge", huge.url("/config"))], far_deadline())
        .await;
    assert_eq!(failure(&got[0]).0, UnknownReason::RuntimeTooLarge);
    let took = got[0].duration.unwrap();
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn body_of_exactly_max_body_bytes_is_accepted_and_one_more_is_not() {
    let exact = BotServer::answering(Reply::Json("a".repeat(100)));
    let over = BotServer::answering(Reply::Json("a".repeat(101)));
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 100)).unwrap();
    let got = fetcher
        .fetch_all(
            &[
                http_bot("exact", exact.url("/config")),
                http_bot("over", over.url("/config")),
            ],
            far_deadline(),
        )
        .await;
    assert_eq!(body(&got[0]).len(), 100);
    assert_eq!(failure(&got[1]).0, UnknownReason::RuntimeTooLarge);
}

#[tokio::test]
async fn chunked_body_past_the_limit_is_cut_off() {
    let chunked = BotServer::answering(Reply::Endless(1000));
    // A timeout far above the bound: only the cut-off can end it in time.
    let fetcher = Fetcher::new(&runtime_config(30_000, 4, 10_000)).unwrap();
    let got = fetcher
        .fetch_all(
            &[http_bot("chunked", chunked.url("/config"))],
            far_deadline(),
        )
        .await;
    let (reason, detail) = failure(&got[0]);
    assert_eq!(reason, UnknownReason::RuntimeTooLarge);
    assert!(detail.contains("cut off"), "{detail}");
    assert!(got[0].duration.unwrap() < Duration::from_secs(10));
}

#[tokio::test]
async fn headers_are_sent_with_every_fetch_and_never_reported() {
    let wanted = vec![
        ("x-api-key".to_owned(), "s3cret-key".to_owned()),
        ("authorization".to_owned(), "Bearer t0ken".to_owned()),
    ];
    let guarded = BotServer::answering(Reply::RequireHeaders(wanted, OK_BODY.into()));
    let mut with = http_bot("with-headers", guarded.url("/config"));
    with.headers = vec![
        header("X-Api-Key", "s3cret-key"),
        header("Authorization", "Bearer t0ken"),
    ];
    let mut wrong = http_bot("wrong-headers", guarded.url("/config"));
    wrong.headers = vec![header("X-Api-Key", "s3cret-wrong")];
    let mut unusable = http_bot("unusable-header", guarded.url("/config"));
    unusable.headers = vec![header("X-Api-Key", "s3cret\nline")];
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    let bots = [with, wrong, unusable];

    // Twice: the second round rides on kept-alive connections, which must carry
    // the headers too.
    for _ in 0..2 {
        let got = fetcher.fetch_all(&bots, far_deadline()).await;
        assert_eq!(body(&got[0]), OK_BODY.as_bytes());
        let (reason, detail) = failure(&got[1]);
        assert_eq!(reason, UnknownReason::RuntimeBadResponse);
        assert!(detail.contains("HTTP 401"), "{detail}");
        let (reason, detail) = failure(&got[2]);
        assert_eq!(reason, UnknownReason::RuntimeUnreachable);
        assert!(detail.contains("X-Api-Key"), "{detail}");
        for f in &got {
            if let Err(e) = &f.result {
                assert!(!e.detail.contains("s3cret"), "{}", e.detail);
            }
        }
    }
}

#[test]
fn an_unusable_shared_header_stops_setup_without_showing_its_value() {
    let mut cfg = runtime_config(250, 4, 1024);
    cfg.headers = vec![header("Authorization", "Bearer s3cret\r\nX: y")];
    let err = Fetcher::new(&cfg).err().expect("setup must fail");
    assert!(matches!(err, RuntimeSetupError::Header(_)));
    let text = err.to_string();
    assert!(text.contains("Authorization"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_not_started_by_the_budget_are_check_budget_exhausted() {
    let slow = BotServer::answering(Reply::Stall(Duration::from_millis(150), OK_BODY.into()));
    let bots: Vec<_> = (0..10)
        .map(|i| http_bot(&format!("slow-{i}"), slow.url("/config")))
        .collect();
    let fetcher = Fetcher::new(&runtime_config(1_000, 1, 1024)).unwrap();
    let budget = Duration::from_millis(400);

    let started = Instant::now();
    let got = fetcher.fetch_all(&bots, started + budget).await;
    let elapsed = started.elapsed();

    let fetched = got.iter().filter(|f| f.result.is_ok()).count();
    let exhausted: Vec<_> = got
        .iter()
        .filter(|f| matches!(&f.result, Err(e) if e.detail == "check budget exhausted"))
        .collect();
    assert!(
        fetched >= 1,
        "at least the first bot starts inside the budget"
    );
    assert!(exhausted.len() >= 5, "only {} exhausted", exhausted.len());
    assert_eq!(fetched + exhausted.len(), bots.len());
    for f in &exhausted {
        assert_eq!(failure(f).0, UnknownReason::RuntimeTimeout);
        assert_eq!(f.duration, None);
    }
    // Exhausted bots come after the fetched ones: admission is in order.
    assert!(got[..fetched].iter().all(|f| f.result.is_ok()));
    // Never started means never asked.
    assert_eq!(slow.requests(), fetched);
    assert!(
        elapsed < budget + Duration::from_millis(1_000 + 500),
        "fetch_all took {elapsed:?}"
    );
}

#[tokio::test]
async fn connections_are_kept_alive_and_reused_across_checks() {
    let bot_server = BotServer::answering(Reply::Json(OK_BODY.into()));
    let bots: Vec<_> = (0..100)
        .map(|i| http_bot(&format!("bot-{i}"), bot_server.url("/config")))
        .collect();
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    for _check in 0..2 {
        let got = fetcher.fetch_all(&bots, far_deadline()).await;
        assert_eq!(got.len(), bots.len());
        assert!(got.iter().all(|f| f.result.is_ok()));
    }
    assert_eq!(bot_server.requests(), 200);
    assert!(
        bot_server.connections() <= 8,
        "{} connections for 200 fetches",
        bot_server.connections()
    );
}

#[tokio::test]
async fn url_credentials_never_reach_a_detail() {
    let error500 = BotServer::answering(Reply::Status(500));
    let bots = [
        http_bot(
            "answers-500",
            format!("http://user:pa55word@127.0.0.1:{}/config", error500.port()),
        ),
        http_bot(
            "refused",
            format!("http://user:pa55word@127.0.0.1:{}/config", free_port()),
        ),
    ];
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    for f in &got {
        let (_, detail) = failure(f);
        assert!(!detail.contains("pa55word"), "{detail}");
        assert!(detail.contains("***@127.0.0.1"), "{detail}");
    }
}

/// Fleet scale: 10,000 bots over 32 kept-alive loopback connections. Prints the
/// wall time; asserts only a generous bound, to prove the work is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bots_over_32_kept_alive_connections() {
    let body = r#"{"risk":{"max_usd":1000000,"enabled":true},"tags":["a","b"]}"#;
    let server = BotServer::answering(Reply::Json(body.into()));
    let bots: Vec<_> = (0..10_000)
        .map(|i| http_bot(&format!("bot-{i}"), server.url("/config")))
        .collect();
    let fetcher = Fetcher::new(&runtime_config(5_000, 32, 1 << 20)).unwrap();

    let started = Instant::now();
    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    let first = started.elapsed();
    let started = Instant::now();
    let again = fetcher.fetch_all(&bots, far_deadline()).await;
    let second = started.elapsed();

    eprintln!(
        "fetch_all of 10000 bots over {} connections: {first:?} (cold), {second:?} (warm)",
        server.connections()
    );
    assert_eq!((got.len(), again.len()), (bots.len(), bots.len()));
    assert!(got.iter().chain(&again).all(|f| f.result.is_ok()));
    // Racing connects may open a few spare connections under load; without reuse
    // this would be 20,000.
    assert!(server.connections() <= 320, "{}", server.connections());
    assert!(first < Duration::from_secs(30) && second < Duration::from_secs(30));
}
