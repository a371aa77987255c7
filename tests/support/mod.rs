//! Real parts for the integration tests, one room per thing they provide:
//! `origin` (Git repos made with real commits), `bots` (loopback HTTP bots),
//! `bot_config` (the crate's `Bot`/`RuntimeConfig` values for in-process
//! fetches), `pki` (the one test CA and its certificates), `agent` (the built
//! binary's `run` as a child), `fleet_agent` (a repo, bots and an agent
//! together), `fleet` (a generated fleet with a known drift set), `tools`
//! (Prometheus, Alertmanager & co. as services). Here: running the binary once,
//! loopback ports, temp files.
//!
//! Two rooms pull dependencies only a few binaries need and are included by
//! those alone, beside `mod support;`:
//! `#[path = "support/grpc_bot.rs"] mod grpc_bot;` (tonic gRPC bots) and
//! `#[path = "support/otlp_receiver.rs"] mod otlp_receiver;` (OTLP receivers).
#![allow(dead_code)]

pub mod agent;
pub mod bot_config;
pub mod bots;
pub mod fleet;
pub mod fleet_agent;
pub mod origin;
pub mod pki;
pub mod tools;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_config-drift-detector")
}

/// Runs the binary with `args`, stdin closed, `NO_COLOR` set.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

/// Runs the binary with `stdin` fed to it.
pub fn run_with_stdin(args: &[&str], cwd: &Path, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin written");
    child.wait_with_output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every stdout line parsed as JSON.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Polls `f` until it returns `Some`, failing after `deadline`.
pub fn poll<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// A config file for `repo` and `bots` (slug, runtime URL) in `dir`, with `extra`
/// TOML appended to the top level before the tables.
pub fn write_config(
    dir: &Path,
    repo: &Path,
    bots: &[(&str, String)],
    top: &str,
    tables: &str,
) -> PathBuf {
    let mut s = String::new();
    s.push_str(top);
    s.push('\n');
    s.push_str(&format!(
        "[repo]\nurl = {:?}\nbranch = \"main\"\nconfig_path = \"bots/{{slug}}.json\"\nschema_path = \"schemas/{{slug}}.schema.json\"\ncheckout_dir = \"state/repo\"\n",
        repo.display().to_string()
    ));
    s.push_str(tables);
    s.push('\n');
    for (slug, url) in bots {
        s.push_str(&format!("[[bots]]\nslug = {slug:?}\nruntime = {url:?}\n\n"));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, s).expect("config written");
    path
}

/// A loopback port that was free a moment ago: binds 127.0.0.1:0, reads the
/// port, releases it. Another process can take it before it is used again, so
/// where a server can bind port 0 itself, let it.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free loopback ports (all held while choosing, so they differ).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

/// A loopback address whose port was free a moment ago (see [`free_port`]):
/// where the agent is told to listen, or a peer nothing answers on.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes `contents` to `dir/name`; returns the path.
pub fn write_file(dir: impl AsRef<Path>, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.as_ref().join(name);
    std::fs::write(&path, contents).expect("test file written");
    path
}
