//! The running side (the `runtime =` key, §4): fetch every bot's running config
//! over `http(s)://`, `grpc(s)://` or `file://` within the check's latency
//! budget (§8). Every failure becomes an UNKNOWN reason with a detail sentence,
//! never an error that unwinds the check.
//!
//! This module only fetches bytes: it does not parse them (the caller does, from
//! `RunningDoc::bytes`), keeps no state between checks beyond the HTTP
//! connection pool and the gRPC channels, and never puts a header value or URL
//! credentials into a detail or a log line.

pub mod file;
pub mod grpc;
pub mod http;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::canon::Format;
use crate::config::{Bot, RuntimeConfig, RuntimeSource};
use crate::report::UnknownReason;

pub use tls::TlsSetupError;

/// The detail of a bot that was never started because the check's budget ran out
/// (§8: operators and the outside tests match this text).
pub const BUDGET_EXHAUSTED: &str = "check budget exhausted";

/// A running config as the bot sent it, not yet parsed.
#[derive(Clone, Debug)]
pub struct RunningDoc {
    pub bytes: Vec<u8>,
    /// JSON for http(s) and gRPC; by extension for file://.
    pub format: Format,
    /// `loaded_at_ms` from the gRPC source, when it gives one.
    pub loaded_at_ms: Option<i64>,
}

/// Why a bot's running config could not be had: its UNKNOWN reason and a human
/// sentence (never holding a header value or URL credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchFailure {
    pub reason: UnknownReason,
    pub detail: String,
}

impl FetchFailure {
    pub fn new(reason: UnknownReason, detail: impl Into<String>) -> FetchFailure {
        FetchFailure {
            reason,
            detail: detail.into(),
        }
    }
}

/// One bot's fetch: the outcome and how long it took (for
/// `drift_bot_fetch_duration_seconds`; `None` when it never started).
#[derive(Debug)]
pub struct Fetched {
    pub result: Result<RunningDoc, FetchFailure>,
    pub duration: Option<Duration>,
}

/// A problem building the fetcher, as one sentence naming the file or header at
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeSetupError {
    #[error("[runtime] TLS settings: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("[runtime].headers: {0}")]
    Header(#[from] http::HeaderError),
    #[error("[runtime]: the HTTP client cannot be built: {0}")]
    Client(reqwest::Error),
}

/// Holds the HTTP client and the gRPC channels, whose connections are kept alive
/// and reused across fetches and checks. Cheap to clone: clones share them.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    grpc: Arc<grpc::Channels>,
    timeout: Duration,
    max_in_flight: usize,
    max_body_bytes: u64,
}

impl Fetcher {
    pub fn new(cfg: &RuntimeConfig) -> Result<Fetcher, RuntimeSetupError> {
        // Per-bot header lists are checked at each fetch (a bad one makes only that
        // bot UNKNOWN); the shared ones are checked here so a typo stops startup.
        http::header_map(&cfg.headers)?;
        let tls = tls::client_config(
            cfg.ca_file.as_deref(),
            cfg.client_cert.as_deref(),
            cfg.client_key.as_deref(),
        )?;
        let max_in_flight = cfg.max_in_flight.max(1);
        let grpc = Arc::new(grpc::Channels::new(&tls, cfg.timeout));
        let client = http::client(tls, max_in_flight).map_err(RuntimeSetupError::Client)?;
        Ok(Fetcher {
            client,
            grpc,
            timeout: cfg.timeout,
            max_in_flight,
            max_body_bytes: cfg.max_body_bytes,
        })
    }

    /// Fetches every bot, at most `max_in_flight` at once. A fetch not started by
    /// `budget_deadline` is `runtime_timeout` with detail "check budget exhausted".
    /// Results are in the order of `bots`.
    ///
    /// Each started fetch is bounded by `timeout_ms`, so the whole call returns
    /// by `budget_deadline + timeout_ms` at the latest, however slow the bots.
    pub async fn fetch_all(&self, bots: &[Bot], budget_deadline: Instant) -> Vec<Fetched> {
        let mut done: Vec<(usize, Fetched)> =
            self.fetch_each(bots, budget_deadline).collect().await;
        done.sort_unstable_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, fetched)| fetched).collect()
    }

    /// The same fetches as [`Fetcher::fetch_all`], each yielded with its index in
    /// `bots` as soon as it completes, so callers can work on early answers while
    /// slow bots are still being waited for.
    pub fn fetch_each<'a>(
        &'a self,
        bots: &'a [Bot],
        budget_deadline: Instant,
    ) -> impl futures_util::Stream<Item = (usize, Fetched)> + 'a {
        // `buffer_unordered` creates each future only when a slot frees up, so the
        // budget is checked at the moment a fetch would start, and a slow bot holds
        // one slot, never the queue behind it.
        futures_util::stream::iter(bots.iter().enumerate())
            .map(
                move |(i, bot)| async move { (i, self.fetch_admitted(bot, budget_deadline).await) },
            )
            .buffer_unordered(self.max_in_flight)
    }

    async fn fetch_admitted(&self, bot: &Bot, budget_deadline: Instant) -> Fetched {
        if Instant::now() >= budget_deadline {
            return Fetched {
                result: Err(FetchFailure::new(
                    UnknownReason::RuntimeTimeout,
                    BUDGET_EXHAUSTED,
                )),
                duration: None,
            };
        }
        let started = Instant::now();
        let result = self.fetch_one(bot).await;
        Fetched {
            result,
            duration: Some(started.elapsed()),
        }
    }

    /// One bot's fetch, bounded as a whole (connect, headers and body) by the
    /// timeout: a peer trickling a byte a second cannot hold a slot past it.
    async fn fetch_one(&self, bot: &Bot) -> Result<RunningDoc, FetchFailure> {
        let fetch = async {
            match &bot.runtime {
                RuntimeSource::Http(url) => {
                    http::fetch(&self.client, url, &bot.headers, self.max_body_bytes).await
                }
                RuntimeSource::File(path) => file::read(path, self.max_body_bytes).await,
                RuntimeSource::Grpc { authority, tls } => {
                    grpc::fetch(
                        &self.grpc,
                        authority,
                        *tls,
                        &bot.slug,
                        &bot.headers,
                        self.max_body_bytes,
                    )
                    .await
                }
            }
        };
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(FetchFailure::new(
                UnknownReason::RuntimeTimeout,
                format!(
                    "{}: no complete answer within {} ms",
                    bot.runtime.display_redacted(),
                    self.timeout.as_millis()
                ),
            )),
        }
    }
}
