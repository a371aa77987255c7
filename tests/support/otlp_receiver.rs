//! In-test OTLP receivers for the telemetry tests: gRPC (tonic, the three
//! collector services from `opentelemetry-proto`) and http/protobuf (a small
//! HTTP/1.1 server decoding bodies with prost), both on 127.0.0.1:0, plus a
//! "black hole" that accepts connections and never answers. (A collector
//! nobody runs is `support::free_addr()`.)
//!
//! It compiles tonic servers of the OTLP collector services, so only the test
//! binaries that need it include it, beside `mod support;`:
//! `#[allow(dead_code)] #[path = "support/otlp_receiver.rs"] mod otlp_receiver;`

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Default)]
pub struct Received {
    pub metrics: Vec<ExportMetricsServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    pub traces: Vec<ExportTraceServiceRequest>,
    /// HTTP only: the request paths, in order.
    pub paths: Vec<String>,
}

#[derive(Clone, Default)]
pub struct Store(pub Arc<Mutex<Received>>);

impl Store {
    pub fn with<R>(&self, f: impl FnOnce(&Received) -> R) -> R {
        f(&self.0.lock().unwrap())
    }

    /// Polls until `pred` holds or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&Received) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.with(&pred) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_records(&self) -> Vec<LogRecord> {
        self.with(|r| {
            r.logs
                .iter()
                .flat_map(|req| &req.resource_logs)
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| sl.log_records.clone())
                .collect()
        })
    }

    pub fn spans(&self) -> Vec<Span> {
        self.with(|r| {
            r.traces
                .iter()
                .flat_map(|req| &req.resource_spans)
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| ss.spans.clone())
                .collect()
        })
    }

    /// The metrics of the latest export.
    pub fn latest_metrics(&self) -> Vec<Metric> {
        self.with(|r| {
            r.metrics
                .last()
                .map(|req| {
                    req.resource_metrics
                        .iter()
                        .flat_map(|rm| &rm.scope_metrics)
                        .flat_map(|sm| sm.metrics.clone())
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().logs.push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A receiver running on its own runtime; stopped when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    pub store: Store,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Receiver {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

pub fn grpc() -> Receiver {
    let rt = runtime();
    let store = Store::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let s = store.clone();
    rt.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(s.clone()))
            .add_service(LogsServiceServer::new(s.clone()))
            .add_service(TraceServiceServer::new(s))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    Receiver {
        addr,
        store,
        runtime: Some(rt),
    }
}

pub fn http() -> Receiver {
    let rt = runtime();
    let store = Store::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let s = store.clone();
    rt.spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_http(conn, s.clone()));
        }
    });
    Receiver {
        addr,
        store,
        runtime: Some(rt),
    }
}

async fn serve_http(mut conn: tokio::net::TcpStream, store: Store) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
        let reply = {
            let mut r = store.0.lock().unwrap();
            r.paths.push(path.clone());
            match path.as_str() {
                "/v1/metrics" => {
                    r.metrics
                        .push(ExportMetricsServiceRequest::decode(&body[..]).unwrap());
                    ExportMetricsServiceResponse::default().encode_to_vec()
                }
                "/v1/logs" => {
                    r.logs
                        .push(ExportLogsServiceRequest::decode(&body[..]).unwrap());
                    ExportLogsServiceResponse::default().encode_to_vec()
                }
                "/v1/traces" => {
                    r.traces
                        .push(ExportTraceServiceRequest::decode(&body[..]).unwrap());
                    ExportTraceServiceResponse::default().encode_to_vec()
                }
                _ => Vec::new(),
            }
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if conn.write_all(head.as_bytes()).await.is_err() || conn.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Accepts connections and never answers (nor reads): a hung collector.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: std::net::TcpListener,
}

pub fn black_hole() -> BlackHole {
    // The kernel completes handshakes into the backlog; nobody ever reads.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    BlackHole {
        addr: listener.local_addr().unwrap(),
        _listener: listener,
    }
}

pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

pub fn attr_str(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn attr_int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

pub fn kv_get<'a>(value: &'a AnyValue, key: &str) -> Option<&'a any_value::Value> {
    match value.value.as_ref()? {
        any_value::Value::KvlistValue(l) => attr(&l.values, key),
        _ => None,
    }
}

pub fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        Some(number_data_point::Value::AsDouble(d)) => d,
        None => f64::NAN,
    }
}

/// (attributes as `k=v` strings sorted, value) of a gauge or sum.
pub fn points(m: &Metric) -> Vec<(Vec<String>, f64)> {
    let dps = match &m.data {
        Some(metric::Data::Gauge(g)) => &g.data_points,
        Some(metric::Data::Sum(s)) => &s.data_points,
        _ => return Vec::new(),
    };
    let mut out: Vec<(Vec<String>, f64)> = dps
        .iter()
        .map(|p| {
            let mut a: Vec<String> = p
                .attributes
                .iter()
                .map(|kv| {
                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    format!("{}={}", kv.key, v)
                })
                .collect();
            a.sort();
            (a, number(p))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
