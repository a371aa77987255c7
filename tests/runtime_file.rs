//! `file://` running configs through `Fetcher::fetch_all`.

mod support;

use std::time::{Duration, Instant};

use config_drift_detector::canon::Format;
use config_drift_detector::config::RuntimeSource;
use config_drift_detector::report::UnknownReason;
use config_drift_detector::runtime::{Fetched, Fetcher};
use support::bot_config::{bot, runtime_config};
use support::{temp_dir, write_file};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn failure(f: &Fetched) -> (UnknownReason, &str) {
    match &f.result {
        Ok(_) => panic!("expected a failure"),
        Err(e) => (e.reason, e.detail.as_str()),
    }
}

#[tokio::test]
async fn file_sources_are_read_with_the_format_of_their_extension() {
    let dir = temp_dir();
    let json = write_file(&dir, "a.json", br#"{"a":1}"#);
    let yaml = write_file(&dir, "b.YML", b"a: 1\n");
    let toml = write_file(&dir, "c.toml", b"a = 1\n");
    let bots = [
        bot("a", RuntimeSource::File(json)),
        bot("b", RuntimeSource::File(yaml)),
        bot("c", RuntimeSource::File(toml)),
    ];
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    let got = fetcher.fetch_all(&bots, deadline()).await;
    let docs: Vec<_> = got
        .iter()
        .map(|f| f.result.as_ref().expect("readable"))
        .collect();
    assert_eq!(docs[0].bytes, br#"{"a":1}"#);
    assert_eq!(docs[0].format, Format::Json);
    assert_eq!(docs[1].format, Format::Yaml);
    assert_eq!(docs[2].format, Format::Toml);
    assert_eq!(docs[2].bytes, b"a = 1\n");
    assert!(got.iter().all(|f| f.duration.is_some()));
}

#[tokio::test]
async fn missing_file_is_unreachable() {
    let dir = temp_dir();
    let bots = [bot(
        "gone",
        RuntimeSource::File(dir.path().join("gone.json")),
    )];
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    let got = fetcher.fetch_all(&bots, deadline()).await;
    let (reason, detail) = failure(&got[0]);
    assert_eq!(reason, UnknownReason::RuntimeUnreachable);
    assert!(
        detail.contains("gone.json") && detail.contains("does not exist"),
        "{detail}"
    );
}

#[tokio::test]
async fn file_larger_than_max_body_bytes_is_too_large_and_the_limit_itself_is_fine() {
    let dir = temp_dir();
    let exact = write_file(&dir, "exact.json", &[b' '; 100]);
    let over = write_file(&dir, "over.json", &[b' '; 101]);
    let bots = [
        bot("exact", RuntimeSource::File(exact)),
        bot("over", RuntimeSource::File(over)),
    ];
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 100)).unwrap();
    let got = fetcher.fetch_all(&bots, deadline()).await;
    assert_eq!(
        got[0].result.as_ref().expect("at the limit").bytes.len(),
        100
    );
    let (reason, detail) = failure(&got[1]);
    assert_eq!(reason, UnknownReason::RuntimeTooLarge);
    assert!(detail.contains("101 bytes"), "{detail}");
}

#[tokio::test]
async fn unknown_extension_and_directories_are_bad_responses() {
    let dir = temp_dir();
    let txt = write_file(&dir, "a.txt", b"{}");
    let subdir = dir.path().join("d.json");
    std::fs::create_dir(&subdir).unwrap();
    let bots = [
        bot("txt", RuntimeSource::File(txt)),
        bot("dir", RuntimeSource::File(subdir)),
    ];
    let fetcher = Fetcher::new(&runtime_config(2_000, 4, 1024)).unwrap();
    let got = fetcher.fetch_all(&bots, deadline()).await;
    assert_eq!(failure(&got[0]).0, UnknownReason::RuntimeBadResponse);
    assert_eq!(failure(&got[1]).0, UnknownReason::RuntimeBadResponse);
    assert!(failure(&got[1]).1.contains("not a regular file"));
}
