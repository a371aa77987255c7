//! `demo` through the built binary: it runs the real agent, tells the whole story
//! from its checks and its live `/metrics`, exits by itself, and leaves nothing
//! behind — also when interrupted with Ctrl-C (SIGINT) part-way.

#[allow(dead_code)]
#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{binary, poll};

/// Generous: the demo itself takes about 15 s; this machine may be busy.
const EXIT_DEADLINE: Duration = Duration::from_secs(120);

/// A child's stream collected line by line, so a test can wait for a line.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<String>, Condvar)>);

impl Lines {
    fn collect(&self, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let lines = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                let (text, cv) = &*lines.0;
                text.lock().expect("lines lock").push_str(&line);
                cv.notify_all();
                line.clear();
            }
        })
    }

    fn text(&self) -> String {
        self.0.0.lock().expect("lines lock").clone()
    }

    /// The first line containing `needle`, waiting for it until `timeout`.
    fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (text, cv) = &*self.0;
        let mut guard = text.lock().expect("lines lock");
        loop {
            if let Some(l) = guard.lines().find(|l| l.contains(needle)) {
                return Some(l.to_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = cv.wait_timeout(guard, left).expect("lines lock").0;
        }
    }
}

/// The demo running as a child process.
struct Demo {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    _cwd: tempfile::TempDir,
}

impl Demo {
    fn start() -> Demo {
        Demo::start_with(&[])
    }

    /// With `env` added to a clean telemetry environment.
    fn start_with(env: &[(&str, &str)]) -> Demo {
        let cwd = tempfile::tempdir().expect("tmp");
        let mut child = Command::new(binary())
            .arg("demo")
            .current_dir(cwd.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the demo starts");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let readers = vec![
            stdout.collect(child.stdout.take().expect("stdout")),
            stderr.collect(child.stderr.take().expect("stderr")),
        ];
        Demo {
            child,
            stdout,
            stderr,
            readers,
            _cwd: cwd,
        }
    }

    /// The temporary folder the first line announces.
    fn folder(&self) -> PathBuf {
        let first = self
            .stdout
            .wait_for_line("everything runs on 127.0.0.1 in ", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no first line; stderr: {}", self.stderr.text()));
        let path = first
            .split(" in ")
            .nth(1)
            .and_then(|l| l.split(" and is removed").next())
            .expect("the first line names the temporary folder");
        PathBuf::from(path)
    }

    fn interrupt(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: sends a signal to our own child process; no memory involved.
        let sent = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(sent, 0, "SIGINT sent");
    }

    /// Waits for the exit (killing the child past the deadline), then for every
    /// line it printed.
    fn wait(mut self) -> (ExitStatus, String, String) {
        let status = poll(EXIT_DEADLINE, "the demo to exit", || {
            self.child.try_wait().expect("try_wait")
        });
        for r in self.readers.drain(..) {
            r.join().expect("reader thread");
        }
        (status, self.stdout.text(), self.stderr.text())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET` over plain HTTP/1.1 on loopback: (status line, body).
fn http_get(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

#[test]
fn demo_runs_the_agent_narrates_drift_and_resolution_then_cleans_up() {
    let demo = Demo::start();
    let folder = demo.folder();
    let (status, text, errors) = demo.wait();
    assert_eq!(status.code(), Some(0), "{text}{errors}");

    let metrics_url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("metrics  "))
        .expect("the /metrics URL is printed");
    assert!(
        metrics_url.starts_with("http://127.0.0.1:") && metrics_url.ends_with("/metrics"),
        "{metrics_url}"
    );
    assert!(
        text.contains("health   http://127.0.0.1:")
            && text.contains("OTLP     off; set OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{text}"
    );
    assert!(
        text.contains("First check: 3 bots against") && text.contains("3 in sync, 0 drifting"),
        "{text}"
    );
    assert!(
        text.contains("risk.killswitch  intraday_drawdown_pct: running 10 → committed 12, since "),
        "{text}"
    );
    assert!(
        text.contains("api_key: running \"<redacted:hmac-sha256:"),
        "{text}"
    );
    assert!(
        !text.contains("sk-live") && !errors.contains("sk-live"),
        "a secret never leaves the process: {text}{errors}"
    );
    assert!(text.contains("Drift episode risk.killswitch-"), "{text}");
    assert!(
        text.contains(&format!(
            "Live {metrics_url}: bots_in_drift{{bot_id=\"risk.killswitch\"}} 1"
        )),
        "the agent's live /metrics shows the drift: {text}"
    );
    let resolved = text
        .lines()
        .find(|l| l.contains("risk.killswitch: resolved by commit "))
        .unwrap_or_else(|| panic!("a resolution by commit: {text}"));
    assert!(
        resolved.contains("(Ada Lovelace") && resolved.contains("Adopt 10% intraday drawdown"),
        "the resolving commit's author and summary: {resolved}"
    );
    let seconds: f64 = resolved
        .rsplit_once(" after ")
        .and_then(|(_, t)| t.strip_suffix(" s."))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a resolution time: {resolved}"));
    assert!(seconds > 0.0, "{resolved}");
    assert!(
        text.contains("resolved_by=commit, resolution_minutes="),
        "{text}"
    );
    assert!(
        text.contains("bots_in_drift{bot_id=\"risk.killswitch\"} 0"),
        "{text}"
    );
    assert!(!folder.exists(), "{} was removed", folder.display());
    // The agent's server is gone with it.
    assert!(
        http_get(metrics_url).is_none(),
        "{metrics_url} still answers"
    );
}

#[test]
fn ctrl_c_mid_demo_stops_the_agent_and_leaves_nothing_behind() {
    let demo = Demo::start();
    let folder = demo.folder();
    let line = demo
        .stdout
        .wait_for_line("metrics  http://", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no /metrics URL: {}", demo.stdout.text()));
    let url = line.trim().trim_start_matches("metrics").trim().to_owned();
    // The real agent serves there: its per-bot gauges appear after its first check.
    let body = poll(
        Duration::from_secs(60),
        "the agent's first check on /metrics",
        || {
            http_get(&url)
                .filter(|(status, body)| {
                    status.contains(" 200 ") && body.contains("bots_in_drift{bot_id=\"arb.us\"} 0")
                })
                .map(|(_, body)| body)
        },
    );
    assert!(body.contains("drift_detector_info{"), "{body}");
    assert!(folder.exists(), "the demo works in {}", folder.display());

    demo.interrupt();
    let (status, text, errors) = demo.wait();
    assert_eq!(status.code(), Some(0), "{text}{errors}");
    assert!(text.contains("Interrupted"), "{text}");
    assert!(!folder.exists(), "{} was removed", folder.display());
    assert!(http_get(&url).is_none(), "{url} still answers");
}

#[test]
fn ctrl_c_right_at_the_start_still_cleans_up() {
    let demo = Demo::start();
    let folder = demo.folder();
    demo.interrupt();
    let (status, text, errors) = demo.wait();
    assert_eq!(status.code(), Some(0), "{text}{errors}");
    assert!(text.contains("Interrupted"), "{text}");
    assert!(!folder.exists(), "{} was removed", folder.display());
}

#[test]
fn with_an_otlp_endpoint_the_demo_says_so_and_the_story_arrives_there() {
    let rx = otlp_receiver::grpc();
    let endpoint = rx.endpoint();
    let demo = Demo::start_with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let folder = demo.folder();
    let (status, text, errors) = demo.wait();
    assert_eq!(status.code(), Some(0), "{text}{errors}");
    assert!(
        text.contains(&format!(
            "OTLP     metrics → {endpoint} (grpc), logs → {endpoint} (grpc), traces → {endpoint} (grpc)"
        )),
        "{text}"
    );
    // Telemetry is flushed before the demo exits: the whole story is there.
    let records = rx.store.log_records();
    let code = |r: &opentelemetry_proto::tonic::logs::v1::LogRecord| {
        otlp_receiver::attr_str(&r.attributes, "reason_code")
    };
    assert!(
        records
            .iter()
            .any(|r| code(r).as_deref() == Some("GOV_CONFIG_DRIFT_DETECTED")),
        "{} records",
        records.len()
    );
    let resolved = records
        .iter()
        .find(|r| code(r).as_deref() == Some("GOV_CONFIG_DRIFT_RESOLVED"))
        .expect("GOV_CONFIG_DRIFT_RESOLVED arrived over OTLP");
    assert_eq!(
        otlp_receiver::attr_str(&resolved.attributes, "resolved_by").as_deref(),
        Some("commit")
    );
    assert!(
        rx.store
            .latest_metrics()
            .iter()
            .any(|m| m.name == "bots_in_drift"),
        "metrics arrived over OTLP"
    );
    assert!(
        !rx.store.spans().is_empty(),
        "check spans arrived over OTLP"
    );
    assert!(!folder.exists(), "{} was removed", folder.display());
}
