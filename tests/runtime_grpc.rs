//! `grpc://` and `grpcs://` running configs (§4) against real tonic bots on
//! loopback: through `check --config` (the built binary, a real Git repo) for
//! what an operator sees, and through `Fetcher` for connection reuse.

#[allow(dead_code)]
#[path = "support/grpc_bot.rs"]
mod grpc_bot;
mod support;

use std::time::{Duration, Instant};

use config_drift_detector::config::RuntimeSource;
use config_drift_detector::report::UnknownReason;
use config_drift_detector::runtime::{Fetched, Fetcher};
use grpc_bot::{Answer, GrpcBot};
use support::bot_config;
use support::origin::FixtureRepo;
use support::pki::Pki;
use support::{json_lines, run, stderr, stdout, write_config};
use tonic::Code;

const COMMITTED: &str = r#"{"intraday_drawdown_pct": 12, "venues": ["a", "b"]}"#;
const LOADED_AT_MS: i64 = 1_715_260_000_000;

/// A config repo where every slug of `slugs` has `COMMITTED` as its config.
fn repo(slugs: &[&str]) -> FixtureRepo {
    let repo = FixtureRepo::new();
    for slug in slugs {
        repo.write(&format!("bots/{slug}.json"), COMMITTED);
    }
    repo.commit("configs");
    repo
}

/// `check --config … --format json` for `bots` (slug, runtime URL), with
/// `runtime` lines added to `[runtime]`.
fn check(
    repo: &FixtureRepo,
    bots: &[(&str, String)],
    runtime: &str,
) -> (std::process::Output, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().expect("tmp");
    let tables = format!("[runtime]\n{runtime}\n");
    let cfg = write_config(dir.path(), repo.path(), bots, "", &tables);
    let out = run(
        &[
            "check",
            "--config",
            cfg.to_str().expect("utf8"),
            "--format",
            "json",
        ],
        dir.path(),
    );
    let reports = json_lines(&out);
    (out, reports)
}

fn by_slug<'a>(reports: &'a [serde_json::Value], slug: &str) -> &'a serde_json::Value {
    reports
        .iter()
        .find(|r| r["bot_slug"] == slug)
        .unwrap_or_else(|| panic!("no report for {slug}"))
}

fn assert_unknown(r: &serde_json::Value, reason: &str) {
    assert_eq!(r["status"], "UNKNOWN", "{r}");
    assert_eq!(r["reason_code"], "GOV_CONFIG_DRIFT_UNKNOWN", "{r}");
    assert_eq!(r["unknown_reason"], reason, "{r}");
}

#[test]
fn grpc_bot_in_sync_and_drifting_with_loaded_at_reported() {
    let repo = repo(&["mm.eu", "risk.killswitch"]);
    let bot = GrpcBot::start();
    // Key order and number format differ from the committed text: still in sync.
    bot.set(
        "mm.eu",
        Answer::Config(
            r#"{"venues": ["a", "b"], "intraday_drawdown_pct": 12.0}"#.into(),
            LOADED_AT_MS,
        ),
    );
    bot.set(
        "risk.killswitch",
        Answer::Config(
            r#"{"intraday_drawdown_pct": 10, "venues": ["a", "b"]}"#.into(),
            0,
        ),
    );
    let (out, reports) = check(
        &repo,
        &[("mm.eu", bot.url()), ("risk.killswitch", bot.url())],
        "timeout_ms = 2000",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let in_sync = by_slug(&reports, "mm.eu");
    assert_eq!(in_sync["status"], "IN_SYNC", "{in_sync}");
    assert_eq!(in_sync["running_loaded_at_ms"], LOADED_AT_MS, "{in_sync}");

    let drift = by_slug(&reports, "risk.killswitch");
    assert_eq!(drift["status"], "DRIFT", "{drift}");
    let drifts = drift["drifts"].as_array().expect("drifts");
    assert_eq!(drifts.len(), 1, "{drift}");
    assert_eq!(drifts[0]["field"], "intraday_drawdown_pct");
    assert_eq!(drifts[0]["running"], 10);
    assert_eq!(drifts[0]["committed"], 12);
    // proto3's 0 is "not given": no key, rather than a 1970 load time.
    assert!(drift.get("running_loaded_at_ms").is_none(), "{drift}");

    // Each bot was asked by its own slug, over one connection to the endpoint.
    let mut asked: Vec<String> = bot.seen().into_iter().map(|s| s.slug).collect();
    asked.sort();
    assert_eq!(asked, ["mm.eu", "risk.killswitch"]);
    assert_eq!(bot.connections(), 1);
}

#[test]
fn down_slow_and_failing_grpc_bots_are_unknown_with_the_contracts_reasons() {
    let slugs = [
        "down",
        "slow",
        "unavailable",
        "deadline",
        "not-found",
        "internal",
        "unauthenticated",
        "permission-denied",
        "cancelled",
        "unimplemented",
        "not-json",
        "ok",
    ];
    let repo = repo(&slugs);
    let bot = GrpcBot::start();
    bot.set(
        "slow",
        Answer::Slow(Duration::from_secs(30), COMMITTED.into()),
    )
    .set(
        "unavailable",
        Answer::Fail(Code::Unavailable, "draining".into()),
    )
    .set(
        "deadline",
        Answer::Fail(Code::DeadlineExceeded, "upstream too slow".into()),
    )
    .set(
        "internal",
        Answer::Fail(Code::Internal, "config store broken".into()),
    )
    .set(
        "unauthenticated",
        Answer::Fail(Code::Unauthenticated, "who are you".into()),
    )
    .set(
        "permission-denied",
        Answer::Fail(Code::PermissionDenied, "not you".into()),
    )
    .set("cancelled", Answer::Fail(Code::Cancelled, "".into()))
    .set(
        "unimplemented",
        Answer::Fail(Code::Unimplemented, "no such method".into()),
    )
    .set("not-json", Answer::Config("max_usd: 100".into(), 0))
    .set("ok", Answer::Config(COMMITTED.into(), 0));
    // "not-found" is never set: the bot answers NOT_FOUND for it.
    let down = format!("grpc://127.0.0.1:{}", support::free_port());

    let bots: Vec<(&str, String)> = slugs
        .iter()
        .map(|s| {
            (
                *s,
                if *s == "down" {
                    down.clone()
                } else {
                    bot.url()
                },
            )
        })
        .collect();
    let started = Instant::now();
    let (out, reports) = check(&repo, &bots, "timeout_ms = 500");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // The slow bot holds its answer for 30 s; the check waits for timeout_ms only.
    assert!(took < Duration::from_secs(10), "check took {took:?}");

    let expected = [
        ("down", "runtime_unreachable"),
        ("slow", "runtime_timeout"),
        ("unavailable", "runtime_unreachable"),
        ("deadline", "runtime_timeout"),
        ("not-found", "runtime_bad_response"),
        ("internal", "runtime_bad_response"),
        ("unauthenticated", "runtime_bad_response"),
        ("permission-denied", "runtime_bad_response"),
        ("cancelled", "runtime_bad_response"),
        ("unimplemented", "runtime_bad_response"),
        ("not-json", "runtime_bad_response"),
    ];
    for (slug, reason) in expected {
        let r = by_slug(&reports, slug);
        assert_unknown(r, reason);
        eprintln!("{slug}: {}", r["detail"]);
    }
    assert_eq!(by_slug(&reports, "ok")["status"], "IN_SYNC");

    // Details name the source and what the bot said.
    let detail = |slug: &str| {
        by_slug(&reports, slug)["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail("down").contains(&down), "{}", detail("down"));
    assert!(
        detail("internal").contains("INTERNAL: config store broken"),
        "{}",
        detail("internal")
    );
    assert!(detail("slow").contains("500 ms"), "{}", detail("slow"));
}

#[test]
fn grpc_config_json_over_max_body_bytes_is_too_large() {
    let repo = repo(&["exact", "just-over", "huge"]);
    let bot = GrpcBot::start();
    // 1024 bytes exactly: a JSON object padded with spaces.
    let exact = format!("{COMMITTED}{}", " ".repeat(1024 - COMMITTED.len()));
    bot.set("exact", Answer::Config(exact.clone(), 0))
        .set("just-over", Answer::Config(format!("{exact} "), 0))
        .set(
            "huge",
            Answer::Config(format!("{COMMITTED}{}", " ".repeat(4_000_000)), 0),
        );
    let (out, reports) = check(
        &repo,
        &[
            ("exact", bot.url()),
            ("just-over", bot.url()),
            ("huge", bot.url()),
        ],
        "timeout_ms = 5000\nmax_body_bytes = 1024",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(by_slug(&reports, "exact")["status"], "IN_SYNC");
    // Within the message framing allowance: caught on config_json's length.
    assert_unknown(by_slug(&reports, "just-over"), "runtime_too_large");
    // Far above: refused from the message's declared length, before reading it.
    let huge = by_slug(&reports, "huge");
    assert_unknown(huge, "runtime_too_large");
    assert!(
        huge["detail"].as_str().unwrap().contains("refused unread"),
        "{huge}"
    );
}

#[test]
fn grpcs_bot_with_a_private_ca_from_ca_file_is_read_and_an_untrusted_one_is_unreachable() {
    let pki = Pki::new();
    let repo = repo(&["tls-bot"]);
    let bot = GrpcBot::start_tls(&pki);
    bot.set("tls-bot", Answer::Config(COMMITTED.into(), LOADED_AT_MS));
    let bots = [("tls-bot", bot.url())];
    assert!(bot.url().starts_with("grpcs://"));

    let trusted = format!(
        "timeout_ms = 3000\nca_file = {:?}",
        pki.ca.display().to_string()
    );
    let (out, reports) = check(&repo, &bots, &trusted);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(reports[0]["status"], "IN_SYNC", "{}", reports[0]);
    assert_eq!(reports[0]["running_loaded_at_ms"], LOADED_AT_MS);

    let wrong = format!(
        "timeout_ms = 3000\nca_file = {:?}",
        pki.other_ca.display().to_string()
    );
    let (out, reports) = check(&repo, &bots, &wrong);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_unknown(&reports[0], "runtime_unreachable");
    let detail = reports[0]["detail"].as_str().unwrap();
    eprintln!("untrusted: {detail}");
    assert!(detail.contains("certificate"), "{detail}");

    // Plain gRPC to a TLS port: depending on timing the client reads the TLS
    // alert as a broken HTTP/2 frame or finds the connection gone.
    let plain = [("tls-bot", format!("grpc://{}", bot.authority()))];
    let (out, reports) = check(&repo, &plain, &trusted);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        ["runtime_unreachable", "runtime_bad_response"]
            .contains(&reports[0]["unknown_reason"].as_str().unwrap_or("")),
        "{}",
        reports[0]
    );
}

#[test]
fn headers_arrive_as_metadata_and_their_values_are_never_printed() {
    let repo = repo(&["authed", "bot-header"]);
    let bot = GrpcBot::start();
    let token = "Bearer s3cret-token-value";
    bot.set(
        "authed",
        Answer::RequireMetadata(
            vec![
                ("authorization".into(), token.into()),
                ("x-fleet".into(), "eu".into()),
            ],
            COMMITTED.into(),
        ),
    )
    .set(
        "bot-header",
        Answer::RequireMetadata(
            vec![("authorization".into(), token.into())],
            COMMITTED.into(),
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let runtime = format!(
        "[runtime]\ntimeout_ms = 2000\nheaders = {{ Authorization = {token:?}, X-Fleet = \"eu\" }}\n"
    );
    let mut cfg_text = std::fs::read_to_string(write_config(
        dir.path(),
        repo.path(),
        &[("authed", bot.url())],
        "",
        &runtime,
    ))
    .unwrap();
    // A bot whose own header table replaces the fleet's token with a wrong one.
    cfg_text.push_str(&format!(
        "[[bots]]\nslug = \"bot-header\"\nruntime = {:?}\nheaders = {{ Authorization = \"Bearer wrong\" }}\n",
        bot.url()
    ));
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = run(
        &[
            "check",
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "json",
        ],
        dir.path(),
    );
    let reports = json_lines(&out);
    assert_eq!(by_slug(&reports, "authed")["status"], "IN_SYNC");
    let refused = by_slug(&reports, "bot-header");
    assert_unknown(refused, "runtime_bad_response");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("UNAUTHENTICATED"),
        "{refused}"
    );
    let seen = bot.seen();
    let authed = seen.iter().find(|s| s.slug == "authed").expect("asked");
    assert!(
        authed
            .metadata
            .contains(&("x-fleet".to_owned(), "eu".to_owned())),
        "{:?}",
        authed.metadata
    );
    for text in [stdout(&out), stderr(&out)] {
        assert!(
            !text.contains("s3cret"),
            "a header value was printed: {text}"
        );
        assert!(
            !text.contains("wrong"),
            "a header value was printed: {text}"
        );
    }
}

// Fetcher-level: what the binary cannot show.

fn grpc_bot(slug: &str, bot: &GrpcBot) -> config_drift_detector::config::Bot {
    bot_config::bot(
        slug,
        RuntimeSource::Grpc {
            authority: bot.authority(),
            tls: false,
        },
    )
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn reason(f: &Fetched) -> UnknownReason {
    match &f.result {
        Ok(_) => panic!("expected a failure"),
        Err(e) => e.reason,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_endpoint_is_kept_across_checks() {
    let bot = GrpcBot::start();
    let bots: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            bot.set(s, Answer::Config(COMMITTED.into(), 0));
            grpc_bot(s, &bot)
        })
        .collect();
    let fetcher = Fetcher::new(&bot_config::runtime_config(2_000, 8, 4096)).unwrap();
    for check in 0..3 {
        let got = fetcher.fetch_all(&bots, far_deadline()).await;
        for f in &got {
            match &f.result {
                Ok(doc) => assert_eq!(doc.bytes, COMMITTED.as_bytes()),
                Err(e) => panic!("check {check}: {:?} {}", e.reason, e.detail),
            }
        }
    }
    assert_eq!(bot.seen().len(), 9);
    assert_eq!(bot.connections(), 1, "every fetch should reuse the channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_fetch_reconnects_next_time_and_a_bot_back_up_is_read() {
    let bot = GrpcBot::start();
    bot.set("b", Answer::Slow(Duration::from_secs(30), COMMITTED.into()));
    let fetcher = Fetcher::new(&bot_config::runtime_config(300, 8, 4096)).unwrap();
    let bots = [grpc_bot("b", &bot)];

    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    assert_eq!(reason(&got[0]), UnknownReason::RuntimeTimeout);
    assert!(got[0].duration.unwrap() < Duration::from_secs(3));

    // The channel of an abandoned call is dropped: a silently dead connection
    // must not time out every later check too.
    bot.set("b", Answer::Config(COMMITTED.into(), 0));
    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    assert!(got[0].result.is_ok(), "{:?}", got[0].result);
    assert_eq!(bot.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_down_at_first_is_read_once_it_is_up() {
    // The channel to a refused endpoint stays cached: it must connect anew later.
    let port = support::free_port();
    let fetcher = Fetcher::new(&bot_config::runtime_config(2_000, 8, 4096)).unwrap();
    let bots = [bot_config::bot(
        "b",
        RuntimeSource::Grpc {
            authority: format!("127.0.0.1:{port}"),
            tls: false,
        },
    )];
    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    assert_eq!(reason(&got[0]), UnknownReason::RuntimeUnreachable);

    let bot = GrpcBot::start_on(port);
    bot.set("b", Answer::Config(COMMITTED.into(), 0));
    let got = fetcher.fetch_all(&bots, far_deadline()).await;
    assert!(got[0].result.is_ok(), "{:?}", got[0].result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_hangs_up_is_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    let fetcher = Fetcher::new(&bot_config::runtime_config(2_000, 8, 4096)).unwrap();
    let bots = [bot_config::bot(
        "b",
        RuntimeSource::Grpc {
            authority: format!("127.0.0.1:{port}"),
            tls: false,
        },
    )];
    // tonic words a hang-up differently depending on when it is noticed (before
    // or after the request went out): every time it is the same reason.
    for _ in 0..10 {
        let got = fetcher.fetch_all(&bots, far_deadline()).await;
        let e = got[0].result.as_ref().expect_err("nothing was answered");
        assert_eq!(e.reason, UnknownReason::RuntimeUnreachable, "{}", e.detail);
        assert!(e.detail.contains("connection"), "{}", e.detail);
    }
}
