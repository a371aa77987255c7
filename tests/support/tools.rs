//! Real observability tools for black-box tests: finds the binaries that
//! `.ci/install-tools` installs (Prometheus, promtool, Alertmanager, amtool,
//! vmagent, rotel), runs each as a service on loopback with its own temp dir and
//! ports, killed on drop, and encodes the few OTLP protobuf requests tests push.
//!
//! It must not reach anything but 127.0.0.1, wait by sleeping (every wait polls
//! a condition under a deadline), or let a missing tool pass silently in CI:
//! outside CI a missing tool skips the test with a printed reason, under
//! `CI=true` it fails it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// The tools print the address they were given rather than the one they got, so
// port 0 cannot be used: each start takes a port free a moment ago, and retries
// with new ones when another process took it in between.
use super::{free_port, free_ports};

/// How long a service gets to start: Prometheus on a loaded 2-core CI machine
/// takes a few seconds, and a hung start should fail the test, not stall it.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often to retry a start that lost its port to another process (see
/// [`free_port`]).
pub const START_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "{0} was not found in CDD_TOOLS_DIR, ~/.cache/cdd-tools/bin or PATH (run .ci/install-tools)"
    )]
    Missing(String),
    #[error("{tool} could not be started: {source}")]
    Spawn {
        tool: String,
        source: std::io::Error,
    },
    #[error("{tool} exited with {status} before it was ready; its output:\n{output}")]
    Exited {
        tool: String,
        status: ExitStatus,
        output: String,
    },
    #[error("{tool} was not ready at {url} within {timeout:?}; its output:\n{output}")]
    NotReady {
        tool: String,
        url: String,
        timeout: Duration,
        output: String,
    },
    #[error("{tool} did not print {needle:?} within {timeout:?}; its output:\n{output}")]
    NoOutput {
        tool: String,
        needle: String,
        timeout: Duration,
        output: String,
    },
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("{url} answered something other than a successful Prometheus API reply: {body}")]
    Api { url: String, body: String },
    #[error("query {promql:?} returned no series within {timeout:?}; last reply: {last}")]
    NoSeries {
        promql: String,
        timeout: Duration,
        last: serde_json::Value,
    },
    #[error("{what} could not be written or read: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolError {
    let what = what.into();
    move |source| ToolError::Io { what, source }
}

// ---------------------------------------------------------------------------
// Finding tools

/// Whether this run is CI, where a missing tool is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Names a tool goes by: Debian's own package calls Alertmanager
/// `prometheus-alertmanager`, `.ci/install-tools` links it as `alertmanager`.
fn aliases(name: &str) -> Vec<&str> {
    match name {
        "alertmanager" => vec!["alertmanager", "prometheus-alertmanager"],
        other => vec![other],
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directories searched, in order: `CDD_TOOLS_DIR`, the install script's
/// default prefix, then `PATH`.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("CDD_TOOLS_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(PathBuf::from(home).join(".cache/cdd-tools/bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The path of tool `name`, or `None` when it is installed nowhere we look.
pub fn tool(name: &str) -> Option<PathBuf> {
    search_dirs().into_iter().find_map(|dir| {
        aliases(name)
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| is_executable(p))
    })
}

/// The path of tool `name`. When it is missing: under `CI=true` panics (CI
/// installs every tool, so absence is a broken install step); elsewhere prints
/// why the calling test skips and returns `None`.
pub fn require(name: &str) -> Option<PathBuf> {
    match tool(name) {
        Some(p) => Some(p),
        None => {
            let why = ToolError::Missing(name.to_string());
            if in_ci() {
                panic!("CI=true but {why}");
            }
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// [`require`] for several tools at once; true when all are present. Reports
/// every missing one, not only the first.
pub fn require_all(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| tool(n).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    for name in &missing {
        let _ = require(name);
    }
    false
}

fn path_of(name: &str) -> Result<PathBuf, ToolError> {
    tool(name).ok_or_else(|| ToolError::Missing(name.to_string()))
}

// ---------------------------------------------------------------------------
// Ports, HTTP

/// An HTTP client for loopback services: never through a proxy from the
/// environment, short timeouts so a wedged tool fails the test quickly.
pub fn http_client() -> reqwest::Client {
    // The crate builds rustls without a default provider; plain HTTP still needs
    // one installed before the client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client builds")
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, ToolError> {
    let http = |source| ToolError::Http {
        url: url.to_string(),
        source,
    };
    let resp = client.get(url).send().await.map_err(http)?;
    let status = resp.status();
    let body = resp.text().await.map_err(http)?;
    if !status.is_success() {
        return Err(ToolError::Status {
            url: url.to_string(),
            status,
            body,
        });
    }
    Ok(body)
}

/// POSTs `body` with `content_type`, returning the reply body on 2xx.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<String, ToolError> {
    let http = |source| ToolError::Http {
        url: url.to_string(),
        source,
    };
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(http)?;
    let status = resp.status();
    let text = resp.text().await.map_err(http)?;
    if !status.is_success() {
        return Err(ToolError::Status {
            url: url.to_string(),
            status,
            body: text,
        });
    }
    Ok(text)
}

// ---------------------------------------------------------------------------
// A running service

/// Everything a child printed on stdout and stderr, interleaved by line, with a
/// condition variable so waiters wake on each new line instead of polling.
#[derive(Clone, Default)]
pub struct Output(Arc<(Mutex<String>, Condvar)>);

impl Output {
    fn capture(&self, stream: impl Read + Send + 'static) {
        let out = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            // Lines, not bytes: a waiter never sees half a needle. Lossy because
            // tools colour their logs and may print any bytes.
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let (text, cv) = &*out.0;
                text.lock()
                    .expect("output lock")
                    .push_str(&String::from_utf8_lossy(&line));
                cv.notify_all();
                line.clear();
            }
        });
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        self.0.0.lock().expect("output lock").clone()
    }

    /// Blocks until the output contains `needle` or `timeout` passes; returns
    /// the whole output when found.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (text, cv) = &*self.0;
        let mut guard = text.lock().expect("output lock");
        loop {
            if guard.contains(needle) {
                return Some(guard.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = cv.wait_timeout(guard, left).expect("output lock").0;
        }
    }
}

/// A child process with its temp dir and captured output; killed (and reaped)
/// on drop, before its temp dir is removed.
pub struct Service {
    name: String,
    child: Child,
    output: Output,
    dir: tempfile::TempDir,
}

impl Service {
    fn spawn(name: &str, mut cmd: Command, dir: tempfile::TempDir) -> Result<Service, ToolError> {
        let mut child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ToolError::Spawn {
                tool: name.to_string(),
                source,
            })?;
        let output = Output::default();
        if let Some(s) = child.stdout.take() {
            output.capture(s);
        }
        if let Some(s) = child.stderr.take() {
            output.capture(s);
        }
        Ok(Service {
            name: name.to_string(),
            child,
            output,
            dir,
        })
    }

    /// The service's own temp dir (its data and config files live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn output(&self) -> &Output {
        &self.output
    }

    fn exited(&mut self) -> Option<ToolError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(ToolError::Exited {
                tool: self.name.clone(),
                status,
                output: self.output.text(),
            }),
            _ => None,
        }
    }

    /// Polls `ready` until it holds, failing early if the child exits.
    async fn wait_until<F, Fut>(&mut self, what: &str, mut ready: F) -> Result<(), ToolError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready().await {
                return Ok(());
            }
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if Instant::now() >= deadline {
                return Err(ToolError::NotReady {
                    tool: self.name.clone(),
                    url: what.to_string(),
                    timeout: START_TIMEOUT,
                    output: self.output.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `GET url` until it answers 2xx.
    async fn wait_http_ok(&mut self, url: &str) -> Result<(), ToolError> {
        let client = http_client();
        self.wait_until(url, || {
            let req = client.get(url).send();
            async move { req.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await
    }

    /// Polls until every address accepts a TCP connection.
    async fn wait_listening(&mut self, addrs: &[SocketAddr]) -> Result<(), ToolError> {
        let what = format!("{addrs:?}");
        let addrs = addrs.to_vec();
        self.wait_until(&what, || {
            let ok = addrs
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
            async move { ok }
        })
        .await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a service, retrying with fresh ports when the one chosen by
/// [`free_port`] was taken in between (the tool exited saying "address already
/// in use"); any other failure is returned at once.
pub async fn start_with_retry<T, F, Fut>(mut attempt: F) -> Result<T, ToolError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ToolError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(ToolError::Exited { output, .. })
                if tries < START_ATTEMPTS
                    && output.to_lowercase().contains("address already in use") =>
            {
                tries += 1;
            }
            done => return done,
        }
    }
}

fn temp_dir(tool: &str) -> Result<tempfile::TempDir, ToolError> {
    tempfile::Builder::new()
        .prefix(&format!("cdd-{tool}-"))
        .tempdir()
        .map_err(io_err(format!("a temp dir for {tool}")))
}

fn write_file(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, ToolError> {
    let p = dir.join(name);
    std::fs::write(&p, contents).map_err(io_err(p.display().to_string()))?;
    Ok(p)
}

// ---------------------------------------------------------------------------
// Prometheus

/// Prometheus on loopback, accepting remote write, storing in its temp dir.
pub struct Prometheus {
    pub service: Service,
    pub port: u16,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus with `config_yaml` (written to `prometheus.yml` in its
    /// temp dir, so relative `rule_files` resolve there: see [`Self::dir`] and
    /// [`Prometheus::start_with_files`]) and waits until `/-/ready` answers.
    pub async fn start(config_yaml: &str) -> Result<Prometheus, ToolError> {
        Self::start_with_files(config_yaml, &[]).await
    }

    /// Like [`Prometheus::start`], first writing `files` (name, contents) next
    /// to the config, e.g. rule files the config names.
    pub async fn start_with_files(
        config_yaml: &str,
        files: &[(&str, &str)],
    ) -> Result<Prometheus, ToolError> {
        let bin = &path_of("prometheus")?;
        start_with_retry(|| async move {
            let dir = temp_dir("prometheus")?;
            let config = write_file(dir.path(), "prometheus.yml", config_yaml)?;
            for (name, contents) in files {
                write_file(dir.path(), name, contents)?;
            }
            let port = free_port();
            let mut cmd = Command::new(bin);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver")
                .arg("--log.level=warn");
            let mut service = Service::spawn("prometheus", cmd, dir)?;
            service
                .wait_http_ok(&format!("http://127.0.0.1:{port}/-/ready"))
                .await?;
            Ok(Prometheus {
                service,
                port,
                client: http_client(),
            })
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where a remote-write client (vmagent) sends samples.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    pub fn dir(&self) -> &Path {
        self.service.dir()
    }

    /// An instant query; returns `data.result` (for a vector: one object per
    /// series with `metric` labels and `value` [time, "value"]).
    pub async fn query(&self, promql: &str) -> Result<serde_json::Value, ToolError> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/query", self.url()))
            .expect("a loopback URL parses");
        url.query_pairs_mut().append_pair("query", promql);
        let body = get_text(&self.client, url.as_str()).await?;
        let api = || ToolError::Api {
            url: url.to_string(),
            body: body.clone(),
        };
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|_| api())?;
        if v["status"] != "success" {
            return Err(api());
        }
        Ok(v["data"]["result"].clone())
    }

    /// Polls [`Prometheus::query`] until it returns at least one series.
    pub async fn wait_for_series(
        &self,
        promql: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, ToolError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(promql).await?;
            if last.as_array().is_some_and(|a| !a.is_empty()) {
                return Ok(last);
            }
            if Instant::now() >= deadline {
                return Err(ToolError::NoSeries {
                    promql: promql.to_string(),
                    timeout,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// vmagent

/// vmagent on loopback: takes OTLP/HTTP (protobuf only; it rejects OTLP/JSON),
/// turns OTel names into Prometheus names, remote-writes to `remote_write_url`.
pub struct VmAgent {
    pub service: Service,
    pub port: u16,
    client: reqwest::Client,
}

impl VmAgent {
    pub async fn start(remote_write_url: &str) -> Result<VmAgent, ToolError> {
        let bin = &path_of("vmagent")?;
        start_with_retry(|| async move {
            let dir = temp_dir("vmagent")?;
            let port = free_port();
            let mut cmd = Command::new(bin);
            cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-remoteWrite.url={remote_write_url}"))
                .arg(format!(
                    "-remoteWrite.tmpDataPath={}",
                    dir.path().join("remotewrite").display()
                ))
                // Same naming as Prometheus' own OTLP translator: unit suffixes, _total.
                .arg("-opentelemetry.usePrometheusNaming")
                // The default 1s flush is dead time in every test.
                .arg("-remoteWrite.flushInterval=100ms")
                .arg("-loggerLevel=WARN");
            let mut service = Service::spawn("vmagent", cmd, dir)?;
            service
                .wait_http_ok(&format!("http://127.0.0.1:{port}/health"))
                .await?;
            Ok(VmAgent {
                service,
                port,
                client: http_client(),
            })
        })
        .await
    }

    /// The OTLP/HTTP metrics endpoint (what `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`
    /// should be set to).
    pub fn otlp_metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/opentelemetry/v1/metrics", self.port)
    }

    /// The OTLP/HTTP base endpoint (what `OTEL_EXPORTER_OTLP_ENDPOINT` should be
    /// set to; exporters append `/v1/metrics`).
    pub fn otlp_base_url(&self) -> String {
        format!("http://127.0.0.1:{}/opentelemetry", self.port)
    }

    /// Pushes an `ExportMetricsServiceRequest` (protobuf bytes).
    pub async fn push_metrics(&self, request: Vec<u8>) -> Result<(), ToolError> {
        post(
            &self.client,
            &self.otlp_metrics_url(),
            "application/x-protobuf",
            request,
        )
        .await
        .map(drop)
    }
}

// ---------------------------------------------------------------------------
// rotel

/// rotel, an OTLP collector, printing every metric, log record and span it
/// receives (detailed debug log) to its captured output; exports nowhere.
pub struct Rotel {
    pub service: Service,
    pub grpc_port: u16,
    pub http_port: u16,
    client: reqwest::Client,
}

impl Rotel {
    pub async fn start() -> Result<Rotel, ToolError> {
        let bin = &path_of("rotel-agent")?;
        start_with_retry(|| async move {
            let dir = temp_dir("rotel")?;
            let [grpc_port, http_port] = free_ports::<2>();
            let mut cmd = Command::new(bin);
            cmd.arg("start")
                .arg(format!("--otlp-grpc-endpoint=127.0.0.1:{grpc_port}"))
                .arg(format!("--otlp-http-endpoint=127.0.0.1:{http_port}"))
                .arg("--exporter=blackhole")
                .args(["--debug-log", "metrics", "--debug-log", "logs"])
                .args(["--debug-log", "traces"])
                .arg("--debug-log-verbosity=detailed")
                // Its defaults are shared paths in /tmp: two instances would clash.
                .arg(format!(
                    "--pid-file={}",
                    dir.path().join("rotel.pid").display()
                ))
                .arg(format!(
                    "--log-file={}",
                    dir.path().join("rotel.log").display()
                ))
                .env("NO_COLOR", "1");
            let mut service = Service::spawn("rotel-agent", cmd, dir)?;
            service
                .wait_listening(&[
                    SocketAddr::from(([127, 0, 0, 1], grpc_port)),
                    SocketAddr::from(([127, 0, 0, 1], http_port)),
                ])
                .await?;
            Ok(Rotel {
                service,
                grpc_port,
                http_port,
                client: http_client(),
            })
        })
        .await
    }

    /// The OTLP/gRPC endpoint, as exporters take it.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The OTLP/HTTP base endpoint; signals go to `/v1/metrics`, `/v1/logs`,
    /// `/v1/traces` under it.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Pushes an `ExportLogsServiceRequest` (protobuf bytes) over HTTP.
    pub async fn push_logs(&self, request: Vec<u8>) -> Result<(), ToolError> {
        let url = format!("{}/v1/logs", self.http_endpoint());
        post(&self.client, &url, "application/x-protobuf", request)
            .await
            .map(drop)
    }

    /// Blocks until rotel has printed `needle`; returns everything printed.
    /// Blocking: call from a multi-thread runtime or `spawn_blocking`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> Result<String, ToolError> {
        self.service
            .output
            .wait_for(needle, timeout)
            .ok_or_else(|| ToolError::NoOutput {
                tool: "rotel-agent".to_string(),
                needle: needle.to_string(),
                timeout,
                output: self.service.output.text(),
            })
    }
}

// ---------------------------------------------------------------------------
// Alertmanager

/// Alertmanager on loopback, clustering off (its default gossip port listens on
/// every interface).
pub struct Alertmanager {
    pub service: Service,
    pub port: u16,
    client: reqwest::Client,
}

impl Alertmanager {
    pub async fn start(config_yaml: &str) -> Result<Alertmanager, ToolError> {
        let bin = &path_of("alertmanager")?;
        start_with_retry(|| async move {
            let dir = temp_dir("alertmanager")?;
            let config = write_file(dir.path(), "alertmanager.yml", config_yaml)?;
            let port = free_port();
            let mut cmd = Command::new(bin);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn");
            let mut service = Service::spawn("alertmanager", cmd, dir)?;
            service
                .wait_http_ok(&format!("http://127.0.0.1:{port}/-/ready"))
                .await?;
            Ok(Alertmanager {
                service,
                port,
                client: http_client(),
            })
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Posts alerts (a JSON array in the v2 API's shape).
    pub async fn post_alerts(&self, alerts: &serde_json::Value) -> Result<(), ToolError> {
        let url = format!("{}/api/v2/alerts", self.url());
        post(
            &self.client,
            &url,
            "application/json",
            alerts.to_string().into_bytes(),
        )
        .await
        .map(drop)
    }

    /// The alerts Alertmanager holds now (v2 API).
    pub async fn alerts(&self) -> Result<serde_json::Value, ToolError> {
        let url = format!("{}/api/v2/alerts", self.url());
        let body = get_text(&self.client, &url).await?;
        serde_json::from_str(&body).map_err(|_| ToolError::Api { url, body })
    }
}

// ---------------------------------------------------------------------------
// promtool, amtool

/// What a checker said: exit code and everything it printed.
#[derive(Debug)]
pub struct Checked {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Checked {
    pub fn passed(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run_checker(tool_name: &str, args: &[&str], stdin: Option<&str>) -> Result<Checked, ToolError> {
    let bin = path_of(tool_name)?;
    let spawn = |source| ToolError::Spawn {
        tool: tool_name.to_string(),
        source,
    };
    let mut child = Command::new(bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(io_err(format!("{tool_name}'s stdin")))?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    Ok(Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `promtool check metrics` on an exposition text: exit 0 when clean, 3 for lint
/// problems only (no HELP, a counter without `_total`), 1 when it cannot parse.
pub fn promtool_check_metrics(exposition: &str) -> Result<Checked, ToolError> {
    run_checker("promtool", &["check", "metrics"], Some(exposition))
}

pub fn promtool_check_rules(path: &Path) -> Result<Checked, ToolError> {
    run_checker(
        "promtool",
        &["check", "rules", &path.to_string_lossy()],
        None,
    )
}

/// `promtool test rules` on a unit-test file (which names its rule files).
pub fn promtool_test_rules(path: &Path) -> Result<Checked, ToolError> {
    run_checker(
        "promtool",
        &["test", "rules", &path.to_string_lossy()],
        None,
    )
}

pub fn amtool_check_config(path: &Path) -> Result<Checked, ToolError> {
    run_checker("amtool", &["check-config", &path.to_string_lossy()], None)
}

// ---------------------------------------------------------------------------
// OTLP protobuf, by hand

/// Minimal OTLP protobuf encoding for pushing a known metric or log record into
/// the real tools, so this module needs no protobuf dependency. Field numbers
/// are those of opentelemetry-proto's `metrics/v1`, `logs/v1`, `common/v1` and
/// `resource/v1` messages. The agent's own exporter is what gets tested against
/// these tools; this only proves the tools' side of the pipeline.
pub mod otlp {
    use super::{SystemTime, UNIX_EPOCH};

    /// A data point's value.
    #[derive(Clone, Copy, Debug)]
    pub enum Point {
        /// A cumulative monotonic sum of integers (an OTel u64 counter).
        Counter(i64),
        /// A gauge of doubles.
        Gauge(f64),
    }

    /// One metric with one data point stamped now.
    #[derive(Clone, Debug)]
    pub struct Metric<'a> {
        pub name: &'a str,
        pub unit: &'a str,
        pub description: &'a str,
        pub point: Point,
        pub attributes: &'a [(&'a str, &'a str)],
    }

    pub fn now_nanos() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }

    // Wire types.
    const VARINT: u64 = 0;
    const I64: u64 = 1;
    const LEN: u64 = 2;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
        varint(out, (field << 3) | wire);
    }

    fn bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        key(out, field, LEN);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
        key(out, field, I64);
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn uint(out: &mut Vec<u8>, field: u64, v: u64) {
        key(out, field, VARINT);
        varint(out, v);
    }

    /// `KeyValue { key = 1, value = 2: AnyValue { string_value = 1 } }`
    fn key_value(k: &str, v: &str) -> Vec<u8> {
        let mut any = Vec::new();
        bytes(&mut any, 1, v.as_bytes());
        let mut kv = Vec::new();
        bytes(&mut kv, 1, k.as_bytes());
        bytes(&mut kv, 2, &any);
        kv
    }

    /// `Resource { attributes = 1 }`
    fn resource(attrs: &[(&str, &str)]) -> Vec<u8> {
        let mut r = Vec::new();
        for (k, v) in attrs {
            bytes(&mut r, 1, &key_value(k, v));
        }
        r
    }

    /// `InstrumentationScope { name = 1 }`
    fn scope(name: &str) -> Vec<u8> {
        let mut s = Vec::new();
        bytes(&mut s, 1, name.as_bytes());
        s
    }

    /// An `ExportMetricsServiceRequest` with one resource, one scope, one metric.
    pub fn metrics_request(resource_attrs: &[(&str, &str)], metric: &Metric) -> Vec<u8> {
        let now = now_nanos();
        // NumberDataPoint { attributes = 7, start_time_unix_nano = 2,
        //   time_unix_nano = 3, as_double = 4, as_int = 6 }
        let mut dp = Vec::new();
        for (k, v) in metric.attributes {
            bytes(&mut dp, 7, &key_value(k, v));
        }
        fixed64(&mut dp, 2, now.saturating_sub(60_000_000_000));
        fixed64(&mut dp, 3, now);
        // Metric { name = 1, description = 2, unit = 3, gauge = 5, sum = 7 }
        let mut m = Vec::new();
        bytes(&mut m, 1, metric.name.as_bytes());
        bytes(&mut m, 2, metric.description.as_bytes());
        bytes(&mut m, 3, metric.unit.as_bytes());
        match metric.point {
            Point::Counter(v) => {
                fixed64(&mut dp, 6, v as u64);
                // Sum { data_points = 1, aggregation_temporality = 2 (2 = cumulative),
                //   is_monotonic = 3 }
                let mut sum = Vec::new();
                bytes(&mut sum, 1, &dp);
                uint(&mut sum, 2, 2);
                uint(&mut sum, 3, 1);
                bytes(&mut m, 7, &sum);
            }
            Point::Gauge(v) => {
                fixed64(&mut dp, 4, v.to_bits());
                // Gauge { data_points = 1 }
                let mut gauge = Vec::new();
                bytes(&mut gauge, 1, &dp);
                bytes(&mut m, 5, &gauge);
            }
        }
        // ScopeMetrics { scope = 1, metrics = 2 }
        let mut sm = Vec::new();
        bytes(&mut sm, 1, &scope("cdd-tests"));
        bytes(&mut sm, 2, &m);
        // ResourceMetrics { resource = 1, scope_metrics = 2 }
        let mut rm = Vec::new();
        bytes(&mut rm, 1, &resource(resource_attrs));
        bytes(&mut rm, 2, &sm);
        // ExportMetricsServiceRequest { resource_metrics = 1 }
        let mut req = Vec::new();
        bytes(&mut req, 1, &rm);
        req
    }

    /// An `ExportLogsServiceRequest` with one log record stamped now.
    pub fn logs_request(
        resource_attrs: &[(&str, &str)],
        severity_number: u64,
        severity_text: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> Vec<u8> {
        let now = now_nanos();
        // LogRecord { time_unix_nano = 1, severity_number = 2, severity_text = 3,
        //   body = 5 (AnyValue), attributes = 6, observed_time_unix_nano = 11 }
        let mut rec = Vec::new();
        fixed64(&mut rec, 1, now);
        uint(&mut rec, 2, severity_number);
        bytes(&mut rec, 3, severity_text.as_bytes());
        let mut any = Vec::new();
        bytes(&mut any, 1, body.as_bytes());
        bytes(&mut rec, 5, &any);
        for (k, v) in attributes {
            bytes(&mut rec, 6, &key_value(k, v));
        }
        fixed64(&mut rec, 11, now);
        // ScopeLogs { scope = 1, log_records = 2 }
        let mut sl = Vec::new();
        bytes(&mut sl, 1, &scope("cdd-tests"));
        bytes(&mut sl, 2, &rec);
        // ResourceLogs { resource = 1, scope_logs = 2 }
        let mut rl = Vec::new();
        bytes(&mut rl, 1, &resource(resource_attrs));
        bytes(&mut rl, 2, &sl);
        // ExportLogsServiceRequest { resource_logs = 1 }
        let mut req = Vec::new();
        bytes(&mut req, 1, &rl);
        req
    }
}

// ---------------------------------------------------------------------------
// amtool routing

/// `amtool config routes test` against a config file: which receivers an alert
/// with `labels` (`name=value` each) reaches. With `expect`, amtool itself also
/// verifies them (`--verify.receivers`) and exits 1 on a mismatch. The receivers
/// are printed comma-separated on stdout, in route order.
pub fn amtool_routes_test(
    config: &Path,
    labels: &[&str],
    expect: Option<&[&str]>,
) -> Result<Checked, ToolError> {
    let config_arg = format!("--config.file={}", config.display());
    let verify_arg = expect.map(|r| format!("--verify.receivers={}", r.join(",")));
    let mut args = vec!["config", "routes", "test", config_arg.as_str()];
    if let Some(v) = &verify_arg {
        args.push(v.as_str());
    }
    args.extend_from_slice(labels);
    run_checker("amtool", &args, None)
}

// ---------------------------------------------------------------------------
// PromQL: which metrics an expression reads

/// Enough of PromQL's lexical structure to list the metric names an expression
/// selects, so dashboards and rules can be held to the contract's names without a
/// PromQL parser dependency. Syntax errors are promtool's job (see the callers);
/// this only has to be right for valid expressions.
pub mod promql {
    use std::collections::BTreeSet;

    /// How a contract metric is exposed: a histogram only ever appears in PromQL
    /// as its `_bucket`, `_sum` and `_count` series.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        Counter,
        Gauge,
        Histogram,
    }

    /// CONTRACT §11's table: the Prometheus names every dashboard and rule query.
    pub const CONTRACT_METRICS: &[(&str, Kind)] = &[
        ("drift_reports_total", Kind::Counter),
        ("bots_in_drift", Kind::Gauge),
        ("bots_in_unknown", Kind::Gauge),
        ("drift_fields", Kind::Gauge),
        ("drift_since_timestamp_seconds", Kind::Gauge),
        ("drift_acknowledged", Kind::Gauge),
        ("drift_resolution_minutes", Kind::Histogram),
        ("drift_check_duration_seconds", Kind::Histogram),
        ("drift_check_interval_seconds", Kind::Gauge),
        ("drift_last_success_timestamp_seconds", Kind::Gauge),
        ("drift_check_budget_exceeded_total", Kind::Counter),
        ("drift_detector_info", Kind::Gauge),
        ("drift_detector_paused", Kind::Gauge),
        ("drift_registry_bots", Kind::Gauge),
        ("drift_config_reload_failures_total", Kind::Counter),
        ("drift_config_last_reload_successful", Kind::Gauge),
        ("drift_repo_fetch_errors_total", Kind::Counter),
        ("drift_repo_last_fetch_timestamp_seconds", Kind::Gauge),
        ("drift_bot_fetch_duration_seconds", Kind::Histogram),
        ("drift_state_write_errors_total", Kind::Counter),
        ("drift_telemetry_dropped_total", Kind::Counter),
    ];

    /// The contract metric a series name belongs to (`x_bucket` → histogram
    /// `x`), or `None` for a name the contract does not have.
    pub fn contract_metric(series: &str) -> Option<&'static str> {
        CONTRACT_METRICS.iter().find_map(|&(name, kind)| {
            let hit = match kind {
                Kind::Histogram => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| series.strip_suffix(s) == Some(name)),
                Kind::Counter | Kind::Gauge => series == name,
            };
            hit.then_some(name)
        })
    }

    /// Words that look like identifiers but never name a metric: binary and
    /// set operators, modifiers, and aggregation operators (which may be
    /// followed by `by (…)` instead of their parenthesis).
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "atan2",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "inf",
        "nan",
    ];

    /// Modifiers followed by a parenthesised label list, not an expression.
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];

    /// A vector selector: its metric name and the text between its braces
    /// (empty when it has none).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Selector {
        pub name: String,
        pub matchers: String,
    }

    /// Every vector selector that names a metric, in order of appearance.
    /// Selectors written only as `{__name__="…"}` are not listed.
    pub fn selectors(expr: &str) -> Vec<Selector> {
        let chars: Vec<char> = expr.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '"' || c == '\'' || c == '`' {
                i = skip_string(&chars, i);
            } else if c == '#' {
                // A comment runs to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '{' {
                // Matchers of a selector with no name before it.
                i = skip_group(&chars, i, '{', '}');
            } else if c == '[' {
                // A range or a subquery's `range:step`.
                i = skip_group(&chars, i, '[', ']');
            } else if c.is_ascii_digit() || (c == '.' && next_is_digit(&chars, i)) {
                // A number or a duration: `0.5`, `1e-3`, `0x1f`, `5m`. Its
                // letters must not be read as a metric name.
                let hex = chars
                    .get(i + 1)
                    .is_some_and(|c| c.eq_ignore_ascii_case(&'x'));
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    // The sign of a decimal exponent (in hex, `e` is a digit).
                    let exponent_sign =
                        (d == '+' || d == '-') && !hex && matches!(chars[i - 1], 'e' | 'E');
                    if d.is_ascii_alphanumeric() || d == '.' || d == '_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
            } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if j < chars.len() && chars[j] == '(' {
                        i = skip_group(&chars, j, '(', ')');
                    }
                } else if KEYWORDS.contains(&lower.as_str()) {
                    // Operator or aggregation: its argument is scanned as usual.
                } else if j < chars.len() && chars[j] == '(' {
                    // A function call.
                } else {
                    let matchers = if j < chars.len() && chars[j] == '{' {
                        let end = skip_group(&chars, j, '{', '}');
                        i = end;
                        chars[j + 1..end.saturating_sub(1).max(j + 1)]
                            .iter()
                            .collect()
                    } else {
                        String::new()
                    };
                    out.push(Selector {
                        name: word,
                        matchers,
                    });
                }
            } else {
                i += 1;
            }
        }
        out
    }

    /// The metric names an expression selects.
    pub fn metric_names(expr: &str) -> BTreeSet<String> {
        selectors(expr).into_iter().map(|s| s.name).collect()
    }

    fn next_is_digit(chars: &[char], i: usize) -> bool {
        chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
    }

    /// Index just past the string literal starting at `start` (backslash
    /// escapes in '…' and "…"; none in `…`).
    fn skip_string(chars: &[char], start: usize) -> usize {
        let quote = chars[start];
        let mut i = start + 1;
        while i < chars.len() {
            if chars[i] == '\\' && quote != '`' {
                i += 2;
                continue;
            }
            if chars[i] == quote {
                return i + 1;
            }
            i += 1;
        }
        i
    }

    /// Index just past the bracketed group starting at `start`, skipping
    /// strings inside it.
    fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
        let mut depth = 0usize;
        let mut i = start;
        while i < chars.len() {
            let c = chars[i];
            if c == '"' || c == '\'' || c == '`' {
                i = skip_string(chars, i);
                continue;
            }
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        i
    }
}

// ---------------------------------------------------------------------------
// Grafana dashboard queries

/// The shipped dashboard's panel queries, ready to run against a real
/// Prometheus: Grafana's variables replaced by concrete values, exactly as
/// Grafana would send them. The end-to-end test runs each of these.
pub mod grafana {
    use std::path::PathBuf;

    /// One panel target.
    #[derive(Clone, Debug)]
    pub struct PanelQuery {
        pub panel_id: i64,
        pub panel_title: String,
        pub ref_id: String,
        /// As written in the dashboard, with `$instance`, `$__rate_interval`, …
        pub expr: String,
        /// An instant query (stat and table panels) rather than a range query.
        pub instant: bool,
    }

    /// Values for Grafana's variables. `instance` is a regex (the variable is
    /// multi-value with "All" = `.*`); durations are PromQL durations (`1m`).
    #[derive(Clone, Debug)]
    pub struct Vars {
        pub instance: String,
        pub rate_interval: String,
        pub interval: String,
        pub range: String,
    }

    impl Default for Vars {
        /// "All" instances; windows that suit a test whose Prometheus scrapes
        /// every second and has run for a minute or two.
        fn default() -> Vars {
            Vars {
                instance: ".*".to_string(),
                rate_interval: "30s".to_string(),
                interval: "5s".to_string(),
                range: "5m".to_string(),
            }
        }
    }

    pub fn overview_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards/config-drift-overview.json")
    }

    /// The shipped "Config drift — overview" dashboard, parsed.
    pub fn load_overview() -> serde_json::Value {
        let path = overview_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
    }

    /// Every panel's every target with an `expr`, rows' nested panels included,
    /// in dashboard order.
    pub fn panel_queries(dashboard: &serde_json::Value) -> Vec<PanelQuery> {
        let mut out = Vec::new();
        collect(dashboard["panels"].as_array(), &mut out);
        out
    }

    fn collect(panels: Option<&Vec<serde_json::Value>>, out: &mut Vec<PanelQuery>) {
        for panel in panels.into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(PanelQuery {
                        panel_id: panel["id"].as_i64().unwrap_or(-1),
                        panel_title: panel["title"].as_str().unwrap_or("").to_string(),
                        ref_id: target["refId"].as_str().unwrap_or("").to_string(),
                        expr: expr.to_string(),
                        instant: target["instant"].as_bool().unwrap_or(false),
                    });
                }
            }
            // A collapsed row keeps its panels inside it.
            collect(panel["panels"].as_array(), out);
        }
    }

    /// `expr` with Grafana's variables replaced: `$name` and `${name}` for
    /// `instance`, `__rate_interval`, `__interval`, `__range`, `datasource`.
    /// Unknown variables are left as they are (callers assert none remain).
    pub fn substitute(expr: &str, vars: &Vars) -> String {
        let table = [
            ("__rate_interval", vars.rate_interval.as_str()),
            ("__interval", vars.interval.as_str()),
            ("__range", vars.range.as_str()),
            ("instance", vars.instance.as_str()),
        ];
        let mut out = String::with_capacity(expr.len());
        let mut rest = expr;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match table.iter().find(|(n, _)| *n == name) {
                Some((_, value)) if consumed > 0 => {
                    out.push_str(value);
                    rest = &after[consumed..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Every panel query of the shipped dashboard with `vars` substituted:
    /// `(panel title, refId, PromQL, instant)`.
    pub fn runnable_queries(vars: &Vars) -> Vec<(String, String, String, bool)> {
        panel_queries(&load_overview())
            .into_iter()
            .map(|q| {
                let expr = substitute(&q.expr, vars);
                (q.panel_title, q.ref_id, expr, q.instant)
            })
            .collect()
    }
}
