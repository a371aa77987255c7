//! Simulated bots: a loopback HTTP/1.1 server (keep-alive, plain or behind
//! rustls) whose answer per path the test sets and changes, including the
//! misbehaviours a real fleet shows. Hand-rolled, so each test controls every
//! byte a bot sends and when it sends it.
//!
//! Each connection is served on its own thread, not on the test's runtime, so
//! blocking tests (the binary) and `#[tokio::test]`s (the `Fetcher`) share one
//! server; its threads end when the client hangs up, or at the latest when a
//! misbehaviour's bound runs out.
//!
//! `benches/fleet_check.rs` includes this file on its own, so it uses nothing
//! else from `support`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a bot answers to a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a Content-Length; the connection stays open for the next request.
    Json(String),
    /// That status with a short text body.
    Status(u16),
    /// 302 to this location (a URL or a path).
    Redirect(String),
    /// Answers like `Json` only after this long.
    Stall(Duration, String),
    /// Declares the body's full length, then sends it one byte at a time with
    /// this pause between bytes.
    Trickle(Duration, String),
    /// Declares a Content-Length of this many bytes, sends one and holds the
    /// connection: a client that waited for the body would time out instead of
    /// refusing it.
    DeclaredLength(u64),
    /// Chunked transfer with no declared length, chunks of this many bytes,
    /// until the client goes away.
    Endless(usize),
    /// `Json` when every (lower-case name, value) pair is in the request head;
    /// 401 otherwise.
    RequireHeaders(Vec<(String, String)>, String),
}

#[derive(Default)]
struct Routes {
    by_path: HashMap<String, Reply>,
    /// The answer for a path not in `by_path` (404 when `None`).
    otherwise: Option<Reply>,
}

impl Routes {
    fn reply(&self, path: &str) -> Reply {
        self.by_path
            .get(path)
            .or(self.otherwise.as_ref())
            .cloned()
            .unwrap_or(Reply::Status(404))
    }
}

pub struct BotServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    routes: Arc<Mutex<Routes>>,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Requests read so far (admin edits not counted).
    pub requests: Arc<AtomicUsize>,
}

impl BotServer {
    /// A plain server answering 404 on every path until [`BotServer::set`].
    pub fn start() -> BotServer {
        BotServer::listen(Routes::default(), None)
    }

    /// A plain server answering `reply` on every path: one bot.
    pub fn answering(reply: Reply) -> BotServer {
        BotServer::listen(
            Routes {
                otherwise: Some(reply),
                ..Routes::default()
            },
            None,
        )
    }

    /// An `https://` server answering `reply` on every path, with `tls` (see
    /// `pki::Pki::server_config`).
    pub fn answering_tls(reply: Reply, tls: Arc<rustls::ServerConfig>) -> BotServer {
        BotServer::listen(
            Routes {
                otherwise: Some(reply),
                ..Routes::default()
            },
            Some(tls),
        )
    }

    fn listen(routes: Routes, tls: Option<Arc<rustls::ServerConfig>>) -> BotServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let routes = Arc::new(Mutex::new(routes));
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (r, c, q) = (routes.clone(), connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                c.fetch_add(1, Ordering::SeqCst);
                // Small writes on a kept-alive connection would otherwise wait
                // for delayed ACKs.
                let _ = stream.set_nodelay(true);
                let (r, q, tls) = (r.clone(), q.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &r, &q),
                    Some(config) => {
                        // A failed handshake is the client's business: it sees
                        // the alert at its first read; the server just hangs up.
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(conn, stream), &r, &q)
                    }
                });
            }
        });
        BotServer {
            addr,
            scheme,
            routes,
            connections,
            requests,
        }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes
            .lock()
            .expect("routes")
            .by_path
            .insert(path.to_owned(), reply);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A live edit through a bot's admin endpoint (`POST /admin/PATH`), as an
/// on-call would make it in the bot's admin UI.
pub fn admin_edit(addr: SocketAddr, path: &str, config: &str) {
    let mut s = TcpStream::connect(addr).expect("the bot's admin endpoint answers");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        s,
        "POST /admin{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{config}",
        config.len()
    )
    .expect("admin request sent");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("admin answer");
    assert!(
        answer.starts_with("HTTP/1.1 204"),
        "admin edit refused: {answer}"
    );
}

/// A bot URL on a port nothing listens on (bound, then released).
pub fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/config")
}

/// Serves requests on one connection until the peer closes it or a reply ends
/// the conversation.
fn serve<S: Read + Write>(stream: S, routes: &Mutex<Routes>, requests: &AtomicUsize) {
    let mut conn = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if conn.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut head = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if conn.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let mut body = vec![0u8; length];
        if conn.read_exact(&mut body).is_err() {
            return;
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("GET").to_owned();
        let path = words.next().unwrap_or("/").to_owned();
        let out = conn.get_mut();
        // The bot's admin endpoint: an on-call's live edit, `POST /admin/PATH`
        // with the new running config as the body.
        if method == "POST"
            && let Some(target) = path.strip_prefix("/admin")
        {
            let config = String::from_utf8_lossy(&body).into_owned();
            routes
                .lock()
                .expect("routes")
                .by_path
                .insert(target.to_owned(), Reply::Json(config));
            // One edit per connection, closed after the answer (the client
            // reads to the end).
            let _ = out.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = out.flush();
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let reply = routes.lock().expect("routes").reply(&path);
        if !matches!(respond(out, reply, &head), Ok(true)) {
            return;
        }
    }
}

/// Writes one answer; `Ok(false)` ends the connection.
fn respond(out: &mut impl Write, reply: Reply, head: &[(String, String)]) -> std::io::Result<bool> {
    match reply {
        Reply::Json(body) => ok(out, &body),
        Reply::Status(code) => status(out, code, ""),
        Reply::Redirect(location) => status(out, 302, &format!("Location: {location}\r\n")),
        Reply::Stall(d, body) => {
            stall(d);
            ok(out, &body)
        }
        Reply::Trickle(d, body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            for b in body.bytes() {
                out.write_all(&[b])?;
                out.flush()?;
                stall(d);
            }
            Ok(true)
        }
        Reply::DeclaredLength(n) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n{{"
            )?;
            out.flush()?;
            stall(Duration::from_secs(30));
            Ok(false)
        }
        Reply::Endless(size) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )?;
            let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
            // Bounded only so that a broken client cannot spin a test forever.
            let stop = Instant::now() + Duration::from_secs(30);
            while Instant::now() < stop {
                out.write_all(chunk.as_bytes())?;
            }
            Ok(false)
        }
        Reply::RequireHeaders(wanted, body) => {
            if wanted.iter().all(|w| head.contains(w)) {
                ok(out, &body)
            } else {
                status(out, 401, "")
            }
        }
    }
}

fn ok(out: &mut impl Write, body: &str) -> std::io::Result<bool> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()?;
    Ok(true)
}

fn status(out: &mut impl Write, code: u16, headers: &str) -> std::io::Result<bool> {
    let body = format!("status {code}");
    write!(
        out,
        "HTTP/1.1 {code} X\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()?;
    Ok(true)
}

/// The server's own misbehaviour (a stalled bot), not a test waiting for something.
fn stall(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::thread::park_timeout(end - Instant::now());
    }
}
