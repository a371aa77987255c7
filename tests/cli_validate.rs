//! `validate` through the built binary.

mod support;

use support::{run, stderr, stdout};

fn config(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).expect("write");
    p.to_str().expect("utf8").to_owned()
}

const BOT: &str =
    "[[bots]]\nslug = \"risk.killswitch\"\nruntime = \"http://127.0.0.1:9101/config\"\n";

#[test]
fn a_valid_config_passes_and_warnings_are_printed() {
    let d = tempfile::tempdir().expect("tmp");
    let cfg = config(
        d.path(),
        &format!(
            "check_interval_minutes = 45\ntolerance_for_numeric_drift = 0.0005\n[repo]\nurl = \"/srv/bot-configs\"\n{BOT}"
        ),
    );
    let out = run(&["validate", "--config", &cfg], d.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(stdout(&out).contains("1 bot"), "{}", stdout(&out));
}

#[test]
fn errors_name_the_key_or_bot_at_fault() {
    let d = tempfile::tempdir().expect("tmp");
    let cases = [
        (format!("chek_interval_minutes = 5\n[repo]\nurl = \"/r\"\n{BOT}"), "chek_interval_minutes"),
        (format!("check_interval_minutes = 61\n[repo]\nurl = \"/r\"\n{BOT}"), "check_interval_minutes"),
        (format!("tolerance_for_numeric_drift = 0.01\n[repo]\nurl = \"/r\"\n{BOT}"), "tolerance_for_numeric_drift"),
        (format!("[repo]\nurl = \"/r\"\n{BOT}{BOT}"), "risk.killswitch"),
        ("[repo]\nurl = \"/r\"\n[[bots]]\nslug = \"bad/slug\"\nruntime = \"http://127.0.0.1:1/\"\n".to_owned(), "bad/slug"),
        ("[repo]\nurl = \"/r\"\n[[bots]]\nslug = \"a\"\nruntime = \"ftp://127.0.0.1/x\"\n".to_owned(), "ftp://"),
        (format!("[repo]\nurl = \"/r\"\nconfig_path = \"bots/x.yaml\"\n{BOT}"), "config_path"),
        ("[repo]\nurl = \"/r\"\n".to_owned(), "bot"),
        (format!("ignore_fields = [\"a..b\"]\n[repo]\nurl = \"/r\"\n{BOT}"), "a..b"),
        (format!("[repo]\nurl = \"/r\"\nrequire_signed_commits = true\n{BOT}"), "require_signed_commits"),
    ];
    for (text, needle) in cases {
        let cfg = config(d.path(), &text);
        let out = run(&["validate", "--config", &cfg], d.path());
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
        assert!(
            err.lines()
                .all(|l| l.starts_with("error: ") || l.starts_with("warning: ")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let d = tempfile::tempdir().expect("tmp");
    let out = run(&["validate", "--config", "nope.toml"], d.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope.toml"));
}
