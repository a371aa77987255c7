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
    let repo = support::origin::FixtureRepo::new();
    let cfg = config(
        d.path(),
        &format!(
            "check_interval_minutes = 45\ntolerance_for_numeric_drift = 0.0005\n[repo]\nurl = {:?}\n{BOT}",
            repo.path().display().to_string()
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

#[test]
fn warnings_are_printed_beside_errors() {
    let d = tempfile::tempdir().expect("tmp");
    let cfg = config(
        d.path(),
        &format!("tolerance_for_numeric_drift = 0.0005\nchek = 1\n[repo]\nurl = \"/r\"\n{BOT}"),
    );
    let out = run(&["validate", "--config", &cfg], d.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("warning: ")).count(),
        1,
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains("chek")),
        "{err}"
    );
}

#[test]
fn a_local_repository_that_is_missing_or_no_repository_is_a_warning() {
    let d = tempfile::tempdir().expect("tmp");
    let plain = d.path().join("plain");
    std::fs::create_dir(&plain).expect("dir");
    for (url, needle) in [
        (d.path().join("gone"), "does not exist"),
        (plain, "is not a Git repository"),
    ] {
        let cfg = config(
            d.path(),
            &format!("[repo]\nurl = {:?}\n{BOT}", url.display().to_string()),
        );
        let out = run(&["validate", "--config", &cfg], d.path());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
        assert_eq!(warnings.len(), 1, "{err}");
        assert!(
            warnings[0].contains(needle) && warnings[0].contains(&url.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn help_describes_every_option_exit_codes_and_the_token_variable() {
    let d = tempfile::tempdir().expect("tmp");
    let top = run(&["--help"], d.path());
    assert_eq!(top.status.code(), Some(0));
    assert!(stdout(&top).contains("CDD_TOKEN"), "{}", stdout(&top));
    for (command, options) in [
        ("check", &["--config", "--bot", "--shard", "--format"][..]),
        (
            "run",
            &["--config", "--check-interval", "--shard", "--log-format"][..],
        ),
        (
            "diff",
            &["--schema", "--tolerance", "--repo", "--format"][..],
        ),
        ("validate", &["--config"][..]),
        ("bots", &["--server", "--format"][..]),
    ] {
        let out = run(&[command, "--help"], d.path());
        assert_eq!(out.status.code(), Some(0), "{command}");
        let text = stdout(&out);
        for option in options {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(option))
                .unwrap_or_else(|| panic!("{command} --help lists {option}:\n{text}"));
            // The description is on the option's line or the next one.
            let at = text.find(line).expect("line");
            let after = &text[at + line.len()..];
            let described = line.trim_start().len() > option.len() + 12
                || after
                    .lines()
                    .nth(1)
                    .is_some_and(|l| !l.trim().is_empty() && !l.trim_start().starts_with('-'));
            assert!(described, "{command} --help describes {option}:\n{text}");
        }
        if ["check", "diff", "run", "validate"].contains(&command) {
            assert!(text.contains("Exit codes"), "{command}:\n{text}");
        }
    }
    let bots = stdout(&run(&["bots", "--help"], d.path()));
    assert!(bots.contains("CDD_TOKEN"), "{bots}");
}
