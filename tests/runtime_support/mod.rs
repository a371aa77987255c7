//! Loopback bots for the runtime tests: hand-rolled HTTP/1.1 on 127.0.0.1:0, so
//! each test controls every byte a bot sends and when it sends it.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use config_drift_detector::config::{Bot, BotSlug, Header, RuntimeConfig, RuntimeSource};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn runtime_config(timeout_ms: u64, max_in_flight: usize, max_body_bytes: u64) -> RuntimeConfig {
    RuntimeConfig {
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight,
        max_body_bytes,
        latency_budget: Duration::from_secs(5),
        headers: Vec::new(),
        ca_file: None,
        client_cert: None,
        client_key: None,
    }
}

pub fn bot(slug: &str, runtime: RuntimeSource) -> Bot {
    Bot {
        slug: BotSlug::parse(slug).expect("test slugs are valid"),
        runtime,
        config_path: format!("bots/{slug}.json"),
        schema_path: None,
        headers: Vec::new(),
    }
}

pub fn http_bot(slug: &str, url: String) -> Bot {
    bot(slug, RuntimeSource::Http(url))
}

pub fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// What a loopback bot does once it has read a request head.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with a Content-Length; the connection stays open for the next request.
    Json(String),
    /// That status with these extra header lines and an empty body.
    Status(u16, Vec<String>),
    /// Waits, then answers like `Json`.
    SleepThenJson(Duration, String),
    /// Declares the body's full length, then sends it one byte per interval.
    Trickle(String, Duration),
    /// Declares this Content-Length, sends one byte of it and holds the connection.
    Declare(u64),
    /// Chunked transfer with no declared length, sending chunks of this size
    /// until the client goes away.
    ChunkedForever(usize),
    /// 200 with the body when every (lower-case name, value) pair is in the
    /// request head; 401 otherwise.
    RequireHeaders(Vec<(String, String)>, String),
}

/// A running loopback bot.
pub struct TestBot {
    pub url: String,
    pub port: u16,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Request heads read so far.
    pub requests: Arc<AtomicUsize>,
}

impl TestBot {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub async fn spawn_bot(behaviour: Behaviour) -> TestBot {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_connection(stream, behaviour.clone(), r.clone()));
        }
    });
    TestBot {
        url: format!("http://127.0.0.1:{port}/config"),
        port,
        connections,
        requests,
    }
}

/// A port nothing listens on: bound, then released.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("local addr").port()
}

/// Serves requests on one connection until the peer closes it or a behaviour
/// ends the conversation.
pub async fn serve_connection<S>(mut stream: S, behaviour: Behaviour, requests: Arc<AtomicUsize>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(head) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        requests.fetch_add(1, Ordering::SeqCst);
        if !respond(&mut stream, &behaviour, &head).await {
            return;
        }
    }
}

/// Reads up to the end of a request head; bodies are never sent by the agent.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn ok_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Writes one answer; `false` ends the connection.
async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, behaviour: &Behaviour, head: &str) -> bool {
    match behaviour {
        Behaviour::Json(body) => stream.write_all(ok_json(body).as_bytes()).await.is_ok(),
        Behaviour::Status(code, extra) => {
            let mut text = format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\n");
            for line in extra {
                text.push_str(line);
                text.push_str("\r\n");
            }
            text.push_str("\r\n");
            stream.write_all(text.as_bytes()).await.is_ok()
        }
        Behaviour::SleepThenJson(pause, body) => {
            tokio::time::sleep(*pause).await;
            stream.write_all(ok_json(body).as_bytes()).await.is_ok()
        }
        Behaviour::Trickle(body, interval) => {
            let headers = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if stream.write_all(headers.as_bytes()).await.is_err() {
                return false;
            }
            for b in body.as_bytes() {
                tokio::time::sleep(*interval).await;
                if stream.write_all(&[*b]).await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
            }
            true
        }
        Behaviour::Declare(len) => {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{{");
            if stream.write_all(text.as_bytes()).await.is_err() {
                return false;
            }
            // Hold the connection open without sending the rest: a client that
            // waited for the body would time out instead of refusing it.
            tokio::time::sleep(Duration::from_secs(60)).await;
            false
        }
        Behaviour::ChunkedForever(size) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            let mut chunk = format!("{size:x}\r\n").into_bytes();
            chunk.extend(std::iter::repeat_n(b' ', *size));
            chunk.extend_from_slice(b"\r\n");
            // Bounded only so that a broken client cannot spin a test forever.
            let stop = Instant::now() + Duration::from_secs(30);
            while Instant::now() < stop {
                if stream.write_all(&chunk).await.is_err() {
                    return false;
                }
            }
            false
        }
        Behaviour::RequireHeaders(wanted, body) => {
            let lines: Vec<String> = head.lines().skip(1).map(str::to_owned).collect();
            let has = |name: &str, value: &str| {
                lines.iter().any(|l| {
                    l.split_once(':').is_some_and(|(n, v)| {
                        n.trim().eq_ignore_ascii_case(name) && v.trim() == value
                    })
                })
            };
            let text = if wanted.iter().all(|(n, v)| has(n, v)) {
                ok_json(body)
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_owned()
            };
            stream.write_all(text.as_bytes()).await.is_ok()
        }
    }
}

/// A fresh temporary directory for files a test writes.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn write_file(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}
