//! `demo` through the built binary: it tells the whole story, exits by itself and
//! leaves nothing behind.

mod support;

use std::time::{Duration, Instant};

use support::{run, stderr, stdout};

#[test]
fn demo_narrates_a_drift_and_its_resolution_then_cleans_up() {
    let d = tempfile::tempdir().expect("tmp");
    let started = Instant::now();
    let out = run(&["demo"], d.path());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the demo finishes within about a minute"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("3 bots against") && text.contains("3 in sync"),
        "{text}"
    );
    assert!(
        text.contains("intraday_drawdown_pct: running 10 → committed 12"),
        "{text}"
    );
    assert!(
        text.contains("api_key: running \"<redacted:hmac-sha256:"),
        "{text}"
    );
    assert!(
        !text.contains("sk-live-rotated"),
        "a secret never leaves the process: {text}"
    );
    assert!(text.contains("resolved by commit"), "{text}");
    let tmp = text
        .lines()
        .next()
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|l| l.split(" and is removed").next())
        .expect("the first line names the temporary folder");
    assert!(!std::path::Path::new(tmp).exists(), "{tmp} was removed");
}
