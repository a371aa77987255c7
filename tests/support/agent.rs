//! The agent (`run`) as a child process: its JSON log lines collected as they
//! come, its HTTP endpoints read over loopback, and the signals an operator or
//! a crash would send.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{binary, poll};

pub struct AgentProcess {
    child: Child,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    pub config: PathBuf,
}

impl AgentProcess {
    /// `run --config CONFIG --log-format json EXTRA…` in the config's folder,
    /// with `RUST_LOG=info` and `env` added; waits until `/livez` answers 200
    /// `ok` on `addr`.
    pub fn start(config: &Path, addr: SocketAddr, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let args: Vec<&str> = ["--log-format", "json"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let env: Vec<(&str, &str)> = [("RUST_LOG", "info")]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        let mut agent = AgentProcess::spawn(config, addr, &args, &env);
        let end = Instant::now() + Duration::from_secs(30);
        // Ready is this agent's own answer, not any answer: a port picked before
        // the agent binds it may meanwhile serve something else.
        while !matches!(agent.get("/livez"), Some((200, body)) if body == "ok\n") {
            if let Some(status) = agent.exited() {
                panic!(
                    "the agent exited at start ({status}):\n{}",
                    agent.log_text()
                );
            }
            assert!(
                Instant::now() < end,
                "the agent did not serve /livez within 30 s:\n{}",
                agent.log_text()
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
        agent
    }

    /// `run --config CONFIG ARGS…` in the config's folder with `env` added (no
    /// OTLP endpoint unless `env` names one), its stdout and stderr kept line by
    /// line; waits for nothing. Killed when dropped.
    pub fn spawn(config: &Path, addr: SocketAddr, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .current_dir(config.parent().expect("config folder"))
            .env("NO_COLOR", "1")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the agent starts");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        AgentProcess {
            child,
            addr,
            lines,
            config: config.to_path_buf(),
        }
    }

    /// Whether the process has exited (with its status), without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `(status code, body)` of a GET, or `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr, path)
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").expect("/metrics answers").1
    }

    /// The value of one series, named exactly as on `/metrics` (with labels).
    pub fn series(&self, series: &str) -> Option<f64> {
        series_value(&self.metrics(), series)
    }

    /// Polls until `series` has `value`.
    pub fn wait_series(&self, series: &str, value: f64, deadline: Duration) {
        poll(deadline, &format!("{series} = {value}"), || {
            (self.series(series) == Some(value)).then_some(())
        });
    }

    pub fn log_text(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Every log line that parsed as JSON.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Records with this `reason_code`, optionally for one bot.
    pub fn gov(&self, code: &str, bot: Option<&str>) -> Vec<serde_json::Value> {
        self.records()
            .into_iter()
            .filter(|r| field(r, "reason_code") == Some(code))
            .filter(|r| bot.is_none_or(|b| field(r, "bot_slug") == Some(b)))
            .collect()
    }

    /// Polls until a record with this code (for this bot) matching `pred` exists.
    pub fn wait_gov(
        &self,
        code: &str,
        bot: Option<&str>,
        deadline: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = Instant::now() + deadline;
        loop {
            if let Some(r) = self.gov(code, bot).into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < end,
                "no {code} record for {bot:?} within {deadline:?}; log:\n{}",
                self.log_text()
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// How many "Check completed." records so far.
    pub fn checks(&self) -> usize {
        self.records()
            .iter()
            .filter(|r| field(r, "message") == Some("Check completed."))
            .count()
    }

    /// Polls until `n` more checks than now have completed.
    pub fn wait_checks(&self, n: usize, deadline: Duration) {
        let target = self.checks() + n;
        poll(deadline, &format!("{n} more checks"), || {
            (self.checks() >= target).then_some(())
        });
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a child's pid; the worst case is ESRCH.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGKILL: the crash case.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(deadline)
    }

    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "the agent did not exit within {deadline:?}:\n{}",
                self.log_text()
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A record's field: tracing's JSON puts event fields under `fields`.
pub fn field<'a>(record: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    record.get("fields")?.get(name)?.as_str()
}

pub fn field_f64(record: &serde_json::Value, name: &str) -> Option<f64> {
    record.get("fields")?.get(name)?.as_f64()
}

/// One series' value in a Prometheus text page.
pub fn series_value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A plain HTTP/1.0 GET over loopback.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}
