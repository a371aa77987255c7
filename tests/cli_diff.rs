//! `diff` through the built binary: files, standard input, Git blobs.

mod support;

use support::origin::FixtureRepo;
use support::{json_lines, run, run_with_stdin, stderr};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_str().expect("utf8").to_owned()
}

#[test]
fn equal_documents_in_different_formats_exit_zero() {
    let d = tempfile::tempdir().expect("tmp");
    let a = write(
        d.path(),
        "a.json",
        r#"{"n": 10, "s": "yes", "list": [1, 2.0], "m": {"x": 0.1}}"#,
    );
    let b = write(
        d.path(),
        "b.yaml",
        "m:\n  x: 0.1\nlist: [1, 2]\ns: yes\nn: 1e1\n",
    );
    let c = write(
        d.path(),
        "c.toml",
        "n = 10\ns = \"yes\"\nlist = [1, 2.0]\n[m]\nx = 0.1\n",
    );
    for (x, y) in [(&a, &b), (&b, &c), (&a, &c)] {
        let out = run(&["diff", x, y, "--format", "json"], d.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{x} vs {y}: {}{}",
            support::stdout(&out),
            stderr(&out)
        );
        let r = &json_lines(&out)[0];
        assert_eq!(r["status"], "IN_SYNC");
        assert_eq!(r["bot_slug"], serde_json::Value::Null);
        assert_eq!(r["running_source"], x.as_str());
        assert_eq!(r["committed_source"], y.as_str());
    }
}

#[test]
fn a_drift_exits_two_with_running_as_a_and_committed_as_b() {
    let d = tempfile::tempdir().expect("tmp");
    let a = write(d.path(), "a.json", r#"{"limits": {}, "n": 10}"#);
    let b = write(d.path(), "b.json", r#"{"limits": {"a": 1}, "n": 12}"#);
    let out = run(&["diff", &a, &b, "--format", "json"], d.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(r["status"], "DRIFT");
    let fields: Vec<(&str, &str)> = r["drifts"]
        .as_array()
        .expect("drifts")
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap_or(""),
                d["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("limits", "missing_in_committed"),
            ("limits.a", "missing_in_running"),
            ("n", "changed")
        ]
    );
    assert_eq!(r["drifts"][2]["delta"], -2);
}

#[test]
fn tolerance_and_schema_apply() {
    let d = tempfile::tempdir().expect("tmp");
    let a = write(d.path(), "a.json", r#"{"x": 1.0005, "tags": ["b", "a"]}"#);
    let b = write(d.path(), "b.json", r#"{"x": 1, "tags": ["a", "b"]}"#);
    let s = write(
        d.path(),
        "s.json",
        r#"{"properties": {"tags": {"type": "array", "uniqueItems": true}}}"#,
    );
    let out = run(
        &[
            "diff",
            &a,
            &b,
            "--schema",
            &s,
            "--tolerance",
            "0.001",
            "--format",
            "json",
        ],
        d.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        support::stdout(&out),
        stderr(&out)
    );
    let out = run(&["diff", &a, &b, "--format", "json"], d.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn standard_input_is_accepted_for_one_side() {
    let d = tempfile::tempdir().expect("tmp");
    let b = write(d.path(), "b.yaml", "a: 1\n");
    let out = run_with_stdin(
        &["diff", "-", &b, "--format", "json"],
        d.path(),
        br#"{"a": 2}"#,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["drifts"][0]["running"], 2);
    let out = run_with_stdin(&["diff", "-", &b], d.path(), b"a: 1\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn git_blobs_are_read_with_repo() {
    let repo = FixtureRepo::new();
    repo.write("bots/x.yaml", "threshold: 5\n");
    let first = repo.commit("first");
    repo.checkout("staging", true);
    repo.write("bots/x.yaml", "threshold: 7\n");
    repo.commit("staging change");
    repo.checkout("main", false);
    let url = repo.path().to_str().expect("utf8");
    let out = run(
        &[
            "diff",
            "staging:bots/x.yaml",
            "main:bots/x.yaml",
            "--repo",
            url,
            "--format",
            "json",
        ],
        repo.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(r["drifts"][0]["field"], "threshold");
    assert_eq!(r["drifts"][0]["running"], 7);
    assert_eq!(r["drifts"][0]["committed"], 5);
    assert_eq!(r["committed_commit"], first.as_str());
    let out = run(
        &[
            "diff",
            "main:bots/x.yaml",
            &format!("{first}:bots/x.yaml"),
            "--repo",
            url,
        ],
        repo.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn bad_input_is_one_sentence_and_exit_one() {
    let d = tempfile::tempdir().expect("tmp");
    let good = write(d.path(), "good.json", r#"{"a": 1}"#);
    let dup = write(d.path(), "dup.json", r#"{"a": 1, "a": 2}"#);
    let nan = write(d.path(), "nan.json", r#"{"a": NaN}"#);
    let txt = write(d.path(), "x.txt", "a");
    for (bad, needle) in [(&dup, "dup.json"), (&nan, "nan.json"), (&txt, "x.txt")] {
        let out = run(&["diff", bad, &good], d.path());
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run(&["diff", &good, "missing.json"], d.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.json"));
}

#[test]
fn a_parent_emptied_by_x_drift_ignore_is_no_drift_but_a_real_empty_one_is() {
    let d = tempfile::tempdir().expect("tmp");
    let s = write(
        d.path(),
        "s.json",
        r#"{"properties": {"runtime": {"properties": {"started_at": {"x-drift-ignore": true}}}}}"#,
    );
    let run_json = write(
        d.path(),
        "run.json",
        r#"{"a": 1, "runtime": {"started_at": "2026-12-01T00:00:00Z"}}"#,
    );
    let com = write(d.path(), "com.yaml", "a: 1\n");
    let out = run(
        &["diff", &run_json, &com, "--schema", &s, "--format", "json"],
        d.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        support::stdout(&out),
        stderr(&out)
    );
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["status"], "IN_SYNC");
    assert_eq!(reports[0]["ignored"], 1);
    let empty = write(d.path(), "empty.json", r#"{"a": 1, "runtime": {}}"#);
    let out = run(
        &["diff", &empty, &com, "--schema", &s, "--format", "json"],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["drifts"][0]["field"], "runtime");
}

#[test]
fn toml_datetimes_keep_their_text_and_yaml_non_specific_tags_are_strings() {
    let d = tempfile::tempdir().expect("tmp");
    let a = write(
        d.path(),
        "run.json",
        r#"{"at": "2026-01-01T00:00:00.000Z", "half": "2026-01-01T00:00:00.500Z", "n": "12"}"#,
    );
    let b = write(
        d.path(),
        "com.toml",
        "at = 2026-01-01T00:00:00.000Z\nhalf = 2026-01-01T00:00:00.500Z\nn = \"12\"\n",
    );
    let y = write(
        d.path(),
        "com.yaml",
        "at: \"2026-01-01T00:00:00.000Z\"\nhalf: \"2026-01-01T00:00:00.500Z\"\nn: ! 12\n",
    );
    for committed in [&b, &y] {
        let out = run(&["diff", &a, committed, "--format", "json"], d.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{committed}: {}{}",
            support::stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn a_tolerance_outside_the_configs_bound_is_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let a = write(d.path(), "a.json", r#"{"x": 5}"#);
    let b = write(d.path(), "b.json", r#"{"x": 1}"#);
    for bad in ["1e9", "0.0011", "-0.5"] {
        let out = run(&["diff", &a, &b, &format!("--tolerance={bad}")], d.path());
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = stderr(&out);
        assert!(
            err.contains("--tolerance") && err.contains("0..=0.001"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    }
}
