//! Loopback gRPC bots for the runtime tests: a real tonic server of the
//! contract's `config_drift.v1.RuntimeConfig` on 127.0.0.1:0, plain or behind
//! rustls, answering each slug as the test says and recording what it was sent.
//! Each bot runs on its own tokio runtime, so blocking tests (the binary) and
//! async ones can both use it.
//!
//! It compiles a tonic server, so only the test binaries that need it
//! include it, beside `mod support;`:
//! `#[allow(dead_code)] #[path = "support/grpc_bot.rs"] mod grpc_bot;`

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use config_drift_detector::runtime::grpc::proto::runtime_config_server::{
    RuntimeConfig, RuntimeConfigServer,
};
use config_drift_detector::runtime::grpc::proto::{GetRunningConfigRequest, RunningConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_stream::StreamExt;
use tonic::transport::server::Connected;
use tonic::{Code, Request, Response, Status};

use crate::support::pki::Pki;

/// What the bot answers for one slug.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `RunningConfig { config_json, loaded_at_ms }`.
    Config(String, i64),
    /// Waits, then answers like `Config` (with `loaded_at_ms` 0).
    Slow(Duration, String),
    /// This status instead of a message.
    Fail(Code, String),
    /// `Config` when every (lower-case name, value) pair is in the request
    /// metadata; UNAUTHENTICATED otherwise.
    RequireMetadata(Vec<(String, String)>, String),
}

/// One call the bot received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub slug: String,
    /// Every ASCII metadata entry, names lower-case.
    pub metadata: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Bot {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[tonic::async_trait]
impl RuntimeConfig for Bot {
    async fn get_running_config(
        &self,
        request: Request<GetRunningConfigRequest>,
    ) -> Result<Response<RunningConfig>, Status> {
        let metadata: Vec<(String, String)> = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let slug = request.into_inner().bot_slug;
        self.seen.lock().unwrap().push(Seen {
            slug: slug.clone(),
            metadata: metadata.clone(),
        });
        let answer = self.answers.lock().unwrap().get(&slug).cloned();
        let config = |json: String, loaded_at_ms: i64| {
            Ok(Response::new(RunningConfig {
                config_json: json,
                loaded_at_ms,
            }))
        };
        match answer {
            None => Err(Status::not_found(format!("no bot `{slug}` here"))),
            Some(Answer::Config(json, at)) => config(json, at),
            Some(Answer::Slow(pause, json)) => {
                tokio::time::sleep(pause).await;
                config(json, 0)
            }
            Some(Answer::Fail(code, message)) => Err(Status::new(code, message)),
            Some(Answer::RequireMetadata(wanted, json)) => {
                if wanted.iter().all(|w| metadata.contains(w)) {
                    config(json, 0)
                } else {
                    Err(Status::unauthenticated("missing credentials"))
                }
            }
        }
    }
}

/// A running gRPC bot; stops when dropped.
pub struct GrpcBot {
    pub port: u16,
    tls: bool,
    bot: Bot,
    connections: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl GrpcBot {
    /// A plain `grpc://` bot.
    pub fn start() -> GrpcBot {
        GrpcBot::start_with(0, None)
    }

    /// A plain bot on a given port (one a test saw refused before).
    pub fn start_on(port: u16) -> GrpcBot {
        GrpcBot::start_with(port, None)
    }

    /// A `grpcs://` bot presenting `pki`'s server certificate.
    pub fn start_tls(pki: &Pki) -> GrpcBot {
        GrpcBot::start_with(0, Some(pki.server_config(&[b"h2"], None)))
    }

    fn start_with(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> GrpcBot {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("bot runtime");
        // Bound without `block_on`, so a bot can start inside an async test too.
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let entered = runtime.enter();
        let listener = TcpListener::from_std(std_listener).expect("tokio listener");
        let port = listener.local_addr().expect("local addr").port();
        let bot = Bot::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let is_tls = tls.is_some();
        let server =
            tonic::transport::Server::builder().add_service(RuntimeConfigServer::new(bot.clone()));
        let counter = Arc::clone(&connections);
        match tls {
            None => {
                let incoming =
                    tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |tcp| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        tcp
                    });
                runtime.spawn(server.serve_with_incoming(incoming));
            }
            Some(config) => {
                let (sender, receiver) =
                    tokio::sync::mpsc::unbounded_channel::<std::io::Result<TlsIo>>();
                let acceptor = TlsAcceptor::from(config);
                runtime.spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let (acceptor, sender) = (acceptor.clone(), sender.clone());
                        tokio::spawn(async move {
                            // A failed handshake is the client's business: it sees
                            // the alert; the server just drops the connection.
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = sender.send(Ok(TlsIo(tls)));
                            }
                        });
                    }
                });
                let incoming = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver);
                runtime.spawn(server.serve_with_incoming(incoming));
            }
        }
        drop(entered);
        GrpcBot {
            port,
            tls: is_tls,
            bot,
            connections,
            runtime: Some(runtime),
        }
    }

    /// `grpc://127.0.0.1:PORT` (or `grpcs://`).
    pub fn url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            if self.tls { "grpcs" } else { "grpc" },
            self.port
        )
    }

    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set(&self, slug: &str, answer: Answer) -> &Self {
        self.bot
            .answers
            .lock()
            .unwrap()
            .insert(slug.to_owned(), answer);
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.bot.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for GrpcBot {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A TLS connection as tonic's server wants it (tonic's own TLS is not compiled in).
struct TlsIo(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
