//! Simulated bots: a loopback HTTP/1.1 server (keep-alive) whose answer per path
//! the test sets and changes, including the misbehaviours a real fleet shows.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Reply {
    Json(String),
    Status(u16),
    /// Answers only after this long.
    Stall(Duration, String),
    /// Sends the body one byte at a time with this pause between bytes.
    Trickle(Duration, String),
    /// Declares a Content-Length of this many bytes.
    DeclaredLength(u64),
    /// Streams chunks without end (no Content-Length).
    Endless,
}

pub struct BotServer {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
}

impl BotServer {
    pub fn start() -> BotServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (r, c, q) = (routes.clone(), connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                c.fetch_add(1, Ordering::SeqCst);
                let (r, q) = (r.clone(), q.clone());
                std::thread::spawn(move || serve(stream, &r, &q));
            }
        });
        BotServer {
            addr,
            routes,
            connections,
            requests,
        }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_owned(), reply);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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
    std::io::Read::read_to_string(&mut s, &mut answer).expect("admin answer");
    assert!(answer.starts_with("HTTP/1.1 204"), "admin edit refused: {answer}");
}

/// A port nothing listens on.
pub fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/config")
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Reply>>, requests: &AtomicUsize) {
    // Small writes on a kept-alive connection would otherwise wait for delayed ACKs.
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("GET").to_owned();
        let path = words.next().unwrap_or("/").to_owned();
        // The bot's admin endpoint: an on-call's live edit, `POST /admin/PATH`
        // with the new running config as the body.
        if method == "POST"
            && let Some(target) = path.strip_prefix("/admin")
        {
            let config = String::from_utf8_lossy(&body).into_owned();
            routes
                .lock()
                .expect("routes")
                .insert(target.to_owned(), Reply::Json(config));
            // One edit per connection, closed after the answer (the client
            // reads to the end).
            let _ = out.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let reply = routes
            .lock()
            .expect("routes")
            .get(&path)
            .cloned()
            .unwrap_or(Reply::Status(404));
        if respond(&mut out, reply).is_err() {
            return;
        }
    }
}

fn respond(out: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Json(body) => ok(out, &body),
        Reply::Status(code) => {
            let body = format!("status {code}");
            let location = if (300..400).contains(&code) {
                "Location: /elsewhere\r\n"
            } else {
                ""
            };
            write!(
                out,
                "HTTP/1.1 {code} X\r\n{location}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
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
            Ok(())
        }
        Reply::DeclaredLength(n) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n{{"
            )?;
            out.flush()?;
            stall(Duration::from_secs(30));
            Ok(())
        }
        Reply::Endless => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )?;
            let chunk = "x".repeat(8192);
            loop {
                write!(out, "{:x}\r\n{chunk}\r\n", chunk.len())?;
            }
        }
    }
}

fn ok(out: &mut TcpStream, body: &str) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// The server's own misbehaviour (a stalled bot), not a test waiting for something.
fn stall(d: Duration) {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        std::thread::park_timeout(end - std::time::Instant::now());
    }
}
