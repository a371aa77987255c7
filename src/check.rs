//! One evaluation of the fleet → one `ConfigDriftReport` per bot, in slug order.
//! No state, no telemetry: the agent's latch and emitters take it from here.
//!
//! The committed side and the running side are read concurrently; once the
//! committed side is in, running configs are canonicalised as they arrive, on
//! every core. Committed documents and schemas are parsed once per
//! blob id and kept for the next check while their blob is still in use.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::canon::canonical::{CanonOptions, Canonical, canonicalise};
use crate::canon::schema::Schema;
use crate::canon::secret::SecretKey;
use crate::canon::{Format, ParseLimits, parse_document};
use crate::config::{Bot, Config};
use crate::diff::{DiffOptions, DiffOutcome, diff, observe};
use crate::latch::{CommitRef, Observed};
use crate::repo::{CommittedRepo, FileVersion, RepoFailure, RepoSession, Snapshot, TreeEntry};
use crate::report::{
    ConfigDriftReport, Drift, MatchSkipped, MatchesCommit, Side, SignatureState, Status,
    UnknownReason,
};
use crate::runtime::{FetchFailure, Fetched, Fetcher};

use futures_util::StreamExt;

/// A schema compiled once per blob id, or why it does not compile.
type CompiledSchema = Arc<Result<Arc<Schema>, String>>;

/// Share of the latency budget `matches_commit` may use per check (§7).
const MATCH_BUDGET_SHARE: f64 = 0.2;

/// What one check found, for the command line or the agent.
#[derive(Debug)]
pub struct CheckOutcome {
    pub checked_at_ms: i64,
    /// In slug byte order.
    pub reports: Vec<ConfigDriftReport>,
    /// The commit every bot was compared against, when the branch resolved.
    pub commit: Option<String>,
    /// Set when the committed side failed for the whole check.
    pub repo_failure: Option<RepoFailure>,
    /// Some bot's fetch could not start within the latency budget.
    pub budget_exhausted: bool,
    /// One entry per fetch that started.
    pub fetch_durations: Vec<Duration>,
    pub duration: Duration,
    /// Per bot slug: the current values of the watched fields that are not in
    /// its drift list (see `Checker::run_watching`).
    pub observed: HashMap<String, Observed>,
}

/// Per bot slug: fields the caller wants current values of (the latch's fields).
pub type Watched = HashMap<String, Vec<String>>;

impl CheckOutcome {
    pub fn count(&self, status: Status) -> usize {
        self.reports.iter().filter(|r| r.status == status).count()
    }

    /// §8: the branch was fetched, no repo-wide reason applied and every bot was
    /// evaluated within the budget (the agent adds: and the state was flushed).
    pub fn successful(&self) -> bool {
        self.repo_failure.is_none()
            && !self.budget_exhausted
            && !self
                .reports
                .iter()
                .any(|r| r.unknown_reason.is_some_and(UnknownReason::is_repo_wide))
    }
}

/// A committed document canonicalised through its schema, or why it could not be.
enum CommittedSide {
    Ready {
        canonical: Box<Canonical>,
        schema: Option<Arc<Schema>>,
    },
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BlobPair {
    config: String,
    schema: Option<String>,
}

/// Long-lived pieces of a check: the HTTP client (its connections), the clone, the
/// redaction key and the parse caches.
pub struct Checker {
    config: Arc<Config>,
    fetcher: Fetcher,
    repo: Arc<Mutex<CommittedRepo>>,
    secret_key: Arc<SecretKey>,
    committed: HashMap<BlobPair, Arc<CommittedSide>>,
    schemas: HashMap<String, CompiledSchema>,
}

impl Checker {
    pub fn new(config: Arc<Config>, secret_key: SecretKey) -> anyhow::Result<Checker> {
        let fetcher = Fetcher::new(&config.runtime)?;
        let repo = CommittedRepo::open(&config.repo)?;
        Ok(Checker {
            config,
            fetcher,
            repo: Arc::new(Mutex::new(repo)),
            secret_key: Arc::new(secret_key),
            committed: HashMap::new(),
            schemas: HashMap::new(),
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Evaluates `bots` (a subset of the config's, in slug order) once.
    ///
    /// The committed side is read while the fetches run; once it is in, each
    /// running config is canonicalised as soon as it arrives, on every core, while
    /// slower bots are still being waited for.
    pub async fn run(&mut self, bots: &[Bot], now_ms: i64) -> CheckOutcome {
        self.run_watching(bots, now_ms, Arc::new(Watched::new()))
            .await
    }

    /// As `run`, and for every evaluated bot, the current values of its `watched`
    /// fields that do not drift now: the latch needs them to tell, when a field
    /// goes back in sync, which side moved.
    pub async fn run_watching(
        &mut self,
        bots: &[Bot],
        now_ms: i64,
        watched: Arc<Watched>,
    ) -> CheckOutcome {
        let started = Instant::now();
        let budget = self.config.runtime.latency_budget;
        let deadline = started + budget;

        let known: HashSet<BlobPair> = self.committed.keys().cloned().collect();
        let known_schemas: HashSet<String> = self.schemas.keys().cloned().collect();
        let repo = Arc::clone(&self.repo);
        let wanted: Vec<(String, Option<String>)> = bots
            .iter()
            .map(|b| (b.config_path.clone(), b.schema_path.clone()))
            .collect();
        let committed_task = tokio::task::spawn_blocking(move || {
            read_committed(&repo, now_ms, &wanted, &known, &known_schemas)
        });

        let bots_shared: Arc<[Bot]> = bots.into();
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, Fetched)>();
        let fetch_task = tokio::spawn({
            let fetcher = self.fetcher.clone();
            let bots = Arc::clone(&bots_shared);
            async move {
                let mut durations = Vec::with_capacity(bots.len());
                let mut exhausted = false;
                let mut each = std::pin::pin!(fetcher.fetch_each(&bots, deadline));
                while let Some((i, fetched)) = each.next().await {
                    match fetched.duration {
                        Some(d) => durations.push(d),
                        None => exhausted = true,
                    }
                    if sender.send((i, fetched)).is_err() {
                        break;
                    }
                }
                tracing::debug!(
                    bots = bots.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "Fetched running configs."
                );
                (durations, exhausted)
            }
        });

        let committed = committed_task.await.unwrap_or_else(|e| {
            Err(RepoFailure {
                reason: UnknownReason::RepoUnreachable,
                detail: format!("reading the config repo failed unexpectedly: {e}"),
            })
        });
        let branch = self.config.repo.branch.clone();
        let unknown_all = |reason: UnknownReason, detail: &str| -> Vec<ConfigDriftReport> {
            bots.iter()
                .map(|bot| {
                    let mut r = ConfigDriftReport::new(Some(bot.slug.to_string()), now_ms);
                    r.committed_ref = Some(branch.clone());
                    r.set_unknown(reason, detail);
                    r
                })
                .collect()
        };

        let mut read = match committed {
            Ok(read) => read,
            Err(failure) => {
                // Nothing to compare against: stop fetching.
                drop(receiver);
                fetch_task.abort();
                return CheckOutcome {
                    checked_at_ms: now_ms,
                    reports: unknown_all(failure.reason, &failure.detail),
                    commit: None,
                    repo_failure: Some(failure),
                    budget_exhausted: false,
                    fetch_durations: Vec::new(),
                    duration: started.elapsed(),
                    observed: HashMap::new(),
                };
            }
        };

        let secret_key = Arc::clone(&self.secret_key);
        let config = Arc::clone(&self.config);
        let mut caches = Caches {
            committed: std::mem::take(&mut self.committed),
            schemas: std::mem::take(&mut self.schemas),
        };
        let evaluated = tokio::task::spawn_blocking(move || {
            let (reports, observed) = evaluate_all(
                &Evaluate {
                    config: &config,
                    key: &secret_key,
                    bots: &bots_shared,
                    now_ms,
                    watched: &watched,
                },
                &mut read,
                receiver,
                &mut caches,
            );
            (reports, observed, read, caches)
        })
        .await;
        let (fetch_durations, budget_exhausted) = fetch_task.await.unwrap_or_default();
        let (mut reports, observed, read) = match evaluated {
            Ok((reports, observed, read, caches)) => {
                self.committed = caches.committed;
                self.schemas = caches.schemas;
                (reports, observed, read)
            }
            Err(e) => {
                // A panic in the pure core is a bug; still never report "no drift".
                return CheckOutcome {
                    checked_at_ms: now_ms,
                    reports: unknown_all(
                        UnknownReason::CommittedConfigInvalid,
                        &format!("evaluation failed: {e}"),
                    ),
                    commit: None,
                    repo_failure: None,
                    budget_exhausted,
                    fetch_durations,
                    duration: started.elapsed(),
                    observed: HashMap::new(),
                };
            }
        };
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "Evaluated every bot."
        );

        let match_deadline = started
            + budget
                .mul_f64(MATCH_BUDGET_SHARE)
                .max(Duration::from_millis(1));
        self.attach_matches(
            &mut reports,
            bots,
            &read.snapshot,
            &read.running,
            match_deadline,
        )
        .await;

        CheckOutcome {
            checked_at_ms: now_ms,
            reports,
            commit: Some(read.snapshot.commit.clone()),
            repo_failure: None,
            budget_exhausted,
            fetch_durations,
            duration: started.elapsed(),
            observed,
        }
    }

    /// For each of `bots`, the newest first-parent commit up to `commit` (within
    /// `history_depth`) that changed its config file or schema: what a RESOLVED
    /// by commit names. Bots whose history cannot be read are left out.
    pub async fn last_changes(&self, bots: &[Bot], commit: &str) -> HashMap<String, CommitRef> {
        if bots.is_empty() {
            return HashMap::new();
        }
        let repo = Arc::clone(&self.repo);
        let bots = bots.to_vec();
        let snapshot = Snapshot {
            commit: commit.to_owned(),
            committed_signature: SignatureState::Unsigned,
        };
        let found = tokio::task::spawn_blocking(move || {
            let mut repo = repo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let Ok(mut session) = repo.lock() else {
                return HashMap::new();
            };
            bots.iter()
                .filter_map(|bot| {
                    let versions = session
                        .file_versions(&snapshot, &bot.config_path, bot.schema_path.as_deref())
                        .ok()?;
                    let newest = versions.into_iter().next()?;
                    Some((
                        bot.slug.to_string(),
                        CommitRef {
                            sha: newest.commit,
                            author: newest.author,
                            summary: newest.summary,
                        },
                    ))
                })
                .collect()
        })
        .await;
        found.unwrap_or_default()
    }

    /// `matches_commit` for every DRIFT report: the newest revision of the bot's
    /// file whose canonical form equals the running config, else the closest.
    async fn attach_matches(
        &mut self,
        reports: &mut [ConfigDriftReport],
        bots: &[Bot],
        snapshot: &Snapshot,
        running: &HashMap<String, Arc<Canonical>>,
        deadline: Instant,
    ) {
        let drifting: Vec<(usize, Bot, Arc<Canonical>)> = reports
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == Status::Drift)
            .filter_map(|(i, r)| {
                let bot = bots
                    .iter()
                    .find(|b| Some(b.slug.as_str()) == r.bot_slug.as_deref())?;
                let canonical = running.get(bot.slug.as_str())?;
                Some((i, bot.clone(), Arc::clone(canonical)))
            })
            .collect();
        if drifting.is_empty() {
            return;
        }
        let repo = Arc::clone(&self.repo);
        let snapshot = snapshot.clone();
        let config = Arc::clone(&self.config);
        let key = Arc::clone(&self.secret_key);
        let jobs: Vec<(Bot, Arc<Canonical>)> = drifting
            .iter()
            .map(|(_, b, c)| (b.clone(), Arc::clone(c)))
            .collect();
        let committed = std::mem::take(&mut self.committed);
        let schemas = std::mem::take(&mut self.schemas);
        let unreadable = MatchesCommit::Skipped {
            skipped: MatchSkipped::HistoryUnreadable,
        };
        let searched = tokio::task::spawn_blocking(move || {
            let mut history = History {
                config: &config,
                key: &key,
                committed: &committed,
                schemas: &schemas,
                seen: HashMap::new(),
            };
            let found: Option<Vec<MatchesCommit>> = {
                let mut repo = repo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                repo.lock().ok().map(|mut session| {
                    jobs.iter()
                        .map(|(bot, running)| {
                            history.find_match(&mut session, &snapshot, bot, running, deadline)
                        })
                        .collect()
                })
            };
            (found, committed, schemas)
        })
        .await;
        let found = match searched {
            Ok((found, committed, schemas)) => {
                self.committed = committed;
                self.schemas = schemas;
                found
            }
            Err(_) => None,
        }
        .unwrap_or_else(|| vec![unreadable; drifting.len()]);
        for ((i, _, _), m) in drifting.iter().zip(found) {
            reports[*i].matches_commit = Some(m);
        }
    }
}

/// Everything read from the repo for one check, under its lock.
struct CommittedRead {
    snapshot: Snapshot,
    entries: HashMap<String, TreeEntry>,
    /// Blobs not already cached, by id.
    blobs: HashMap<String, Vec<u8>>,
    content_signatures: HashMap<String, SignatureState>,
    /// Filled during evaluation: each bot's canonical running config, for matches_commit.
    running: HashMap<String, Arc<Canonical>>,
}

fn read_committed(
    repo: &Mutex<CommittedRepo>,
    now_ms: i64,
    wanted: &[(String, Option<String>)],
    known: &HashSet<BlobPair>,
    known_schemas: &HashSet<String>,
) -> Result<CommittedRead, RepoFailure> {
    let unreadable = |detail: String| RepoFailure {
        reason: UnknownReason::RepoUnreachable,
        detail,
    };
    let mut repo = repo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut session = repo.lock().map_err(|e| unreadable(e.to_string()))?;
    let phase = Instant::now();
    let snapshot = session.sync(now_ms)?;
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, commit = %snapshot.commit, "Fetched the pinned branch.");
    let mut paths: Vec<&str> = Vec::with_capacity(wanted.len() * 2);
    for (config, schema) in wanted {
        paths.push(config);
        if let Some(s) = schema {
            paths.push(s);
        }
    }
    paths.sort_unstable();
    paths.dedup();
    let entries = session
        .entries(&snapshot, &paths)
        .map_err(|e| unreadable(format!("reading commit {} failed: {e}", snapshot.commit)))?;
    // Read only what the caches cannot answer: a config blob whose (config, schema)
    // pair is new (the same file under a changed schema is canonicalised anew), and
    // schemas not compiled yet.
    let blob_of = |path: &str| match entries.get(path) {
        Some(TreeEntry::Blob(id)) => Some(id.as_str()),
        _ => None,
    };
    let mut missing: HashSet<&str> = HashSet::new();
    for (config, schema) in wanted {
        let schema_blob = schema.as_deref().and_then(blob_of);
        if let Some(s) = schema_blob
            && !known_schemas.contains(s)
        {
            missing.insert(s);
        }
        if let Some(c) = blob_of(config) {
            let pair = BlobPair {
                config: c.to_owned(),
                schema: schema_blob.map(str::to_owned),
            };
            if !known.contains(&pair) {
                missing.insert(c);
            }
        }
    }
    let missing: Vec<&str> = missing.into_iter().collect();
    let mut blobs = HashMap::with_capacity(missing.len());
    for (id, bytes) in missing.iter().zip(session.read_blobs(&missing)) {
        // An unreadable object reads as absent and becomes committed_config_invalid.
        if let Ok(bytes) = bytes {
            blobs.insert((*id).to_owned(), bytes);
        }
    }
    tracing::debug!(
        ms = phase.elapsed().as_millis() as u64,
        blobs = blobs.len(),
        "Read committed blobs."
    );
    // One history walk for the whole fleet; per-bot lookups after it are cheap.
    let mut content_signatures = HashMap::with_capacity(wanted.len());
    if session.prime_history(&snapshot, &paths).is_ok() {
        for (config, schema) in wanted {
            if let Ok(sig) = session.bot_content_signature(&snapshot, config, schema.as_deref()) {
                content_signatures.insert(config.clone(), sig);
            }
        }
    }
    drop(session);
    tracing::debug!(
        ms = phase.elapsed().as_millis() as u64,
        "Read content signatures."
    );
    Ok(CommittedRead {
        snapshot,
        entries,
        blobs,
        content_signatures,
        running: HashMap::new(),
    })
}

/// The parse caches a `Checker` keeps between checks, handed to the blocking
/// evaluation and back.
struct Caches {
    committed: HashMap<BlobPair, Arc<CommittedSide>>,
    schemas: HashMap<String, CompiledSchema>,
}

/// A bot's running config after parsing and canonicalisation, or why not.
enum RunningSide {
    /// With the source's `loaded_at_ms`, when it gave one.
    Ready(Box<Canonical>, Option<i64>),
    Failed(FetchFailure),
    /// Its schema does not compile: the committed side reports that.
    NoSchema,
}

/// What a check evaluates: the fleet's bots under one config, at one time.
struct Evaluate<'a> {
    config: &'a Config,
    key: &'a SecretKey,
    bots: &'a [Bot],
    now_ms: i64,
    /// Per bot, the latched fields whose current values the latch wants.
    watched: &'a Watched,
}

fn evaluate_all(
    job: &Evaluate<'_>,
    read: &mut CommittedRead,
    fetched: std::sync::mpsc::Receiver<(usize, Fetched)>,
    caches: &mut Caches,
) -> (Vec<ConfigDriftReport>, HashMap<String, Observed>) {
    let Evaluate {
        config,
        key,
        bots,
        now_ms,
        watched,
    } = *job;
    let limits = ParseLimits {
        max_bytes: config.runtime.max_body_bytes,
    };
    let opts = CanonOptions {
        ignore_fields: &config.ignore_fields,
        secret_key: key,
    };

    // Schemas: once per blob id.
    let mut schemas: HashMap<String, CompiledSchema> = HashMap::new();
    let bot_schemas: Vec<Option<CompiledSchema>> = bots
        .iter()
        .map(|bot| {
            let path = bot.schema_path.as_ref()?;
            let Some(TreeEntry::Blob(id)) = read.entries.get(path) else {
                return None;
            };
            let compiled =
                schemas
                    .entry(id.clone())
                    .or_insert_with(|| match caches.schemas.get(id) {
                        Some(c) => Arc::clone(c),
                        None => Arc::new(compile_schema(
                            path,
                            read.blobs.get(id).map(Vec::as_slice),
                            &limits,
                        )),
                    });
            Some(Arc::clone(compiled))
        })
        .collect();

    // Committed sides not cached yet: once per (config blob, schema blob).
    let mut pairs: Vec<(BlobPair, usize)> = Vec::new();
    let mut seen: HashSet<BlobPair> = HashSet::new();
    for (i, bot) in bots.iter().enumerate() {
        if let Some(pair) = blob_pair(bot, &read.entries)
            && !caches.committed.contains_key(&pair)
            && seen.insert(pair.clone())
        {
            pairs.push((pair, i));
        }
    }

    // Both sides canonicalised at once: the committed pairs on one set of threads,
    // the running configs on others as the fetches deliver them.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fetched = Mutex::new(fetched);
    let (fresh, running) = std::thread::scope(|scope| {
        let committed_work = scope.spawn(|| {
            par_map(&pairs, |(pair, i)| {
                let bot = &bots[*i];
                let side = committed_side(
                    &bot.config_path,
                    read.blobs.get(&pair.config).map(Vec::as_slice),
                    bot_schemas[*i].as_deref(),
                    &limits,
                    &opts,
                );
                (pair.clone(), Arc::new(side))
            })
        });
        let running_work: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let next = fetched.lock().map(|rx| rx.recv());
                        let Ok(Ok((i, item))) = next else { break };
                        let side = running_side(item, bot_schemas[i].as_deref(), &limits, &opts);
                        done.push((i, side));
                    }
                    done
                })
            })
            .collect();
        let mut running: Vec<Option<RunningSide>> = (0..bots.len()).map(|_| None).collect();
        for worker in running_work {
            for (i, side) in worker
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            {
                running[i] = Some(side);
            }
        }
        let fresh = committed_work
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (fresh, running)
    });

    let mut in_use: HashMap<BlobPair, Arc<CommittedSide>> = fresh.into_iter().collect();
    for bot in bots {
        if let Some(pair) = blob_pair(bot, &read.entries)
            && let Some(side) = caches.committed.get(&pair)
        {
            in_use.insert(pair, Arc::clone(side));
        }
    }

    let jobs: Vec<(&Bot, Option<RunningSide>)> = bots.iter().zip(running).collect();
    let results = par_map_owned(jobs, |(bot, running)| {
        let pair = blob_pair(bot, &read.entries);
        let committed = pair.as_ref().and_then(|p| in_use.get(p)).map(Arc::clone);
        let watched = watched.get(bot.slug.as_str()).map(Vec::as_slice);
        evaluate_bot(
            config,
            bot,
            running,
            read,
            committed.as_deref(),
            now_ms,
            watched.unwrap_or_default(),
        )
    });

    // Keep only what this check used, so the caches stay bounded by the fleet.
    caches.committed = in_use;
    caches.schemas = schemas;
    let mut reports = Vec::with_capacity(results.len());
    let mut observed = HashMap::new();
    for (report, running, seen) in results {
        if let (Some(slug), Some(running)) = (report.bot_slug.clone(), running) {
            read.running.insert(slug, running);
        }
        if let (Some(slug), false) = (report.bot_slug.clone(), seen.is_empty()) {
            observed.insert(slug, seen);
        }
        reports.push(report);
    }
    (reports, observed)
}

fn running_side(
    fetched: Fetched,
    schema: Option<&Result<Arc<Schema>, String>>,
    limits: &ParseLimits,
    opts: &CanonOptions,
) -> RunningSide {
    let doc = match fetched.result {
        Ok(doc) => doc,
        Err(failure) => return RunningSide::Failed(failure),
    };
    let schema = match schema {
        Some(Ok(s)) => Some(s.as_ref()),
        Some(Err(_)) => return RunningSide::NoSchema,
        None => None,
    };
    match parse_document(&doc.bytes, doc.format, limits) {
        Ok(value) => RunningSide::Ready(
            Box::new(canonicalise(value, schema, Side::Running, opts)),
            doc.loaded_at_ms,
        ),
        Err(e) => RunningSide::Failed(FetchFailure {
            reason: UnknownReason::RuntimeBadResponse,
            detail: format!("the running config is not valid: {e}"),
        }),
    }
}

fn blob_pair(bot: &Bot, entries: &HashMap<String, TreeEntry>) -> Option<BlobPair> {
    let Some(TreeEntry::Blob(config)) = entries.get(&bot.config_path) else {
        return None;
    };
    let schema = bot.schema_path.as_ref().and_then(|p| match entries.get(p) {
        Some(TreeEntry::Blob(id)) => Some(id.clone()),
        _ => None,
    });
    Some(BlobPair {
        config: config.clone(),
        schema,
    })
}

fn compile_schema(
    path: &str,
    bytes: Option<&[u8]>,
    limits: &ParseLimits,
) -> Result<Arc<Schema>, String> {
    let bytes = bytes.ok_or_else(|| format!("schema {path} could not be read from the repo"))?;
    let format = Format::from_path(path).unwrap_or(Format::Json);
    let doc = parse_document(bytes, format, limits)
        .map_err(|e| format!("schema {path} is not valid: {e}"))?;
    Schema::compile(&doc)
        .map(Arc::new)
        .map_err(|e| format!("schema {path} does not compile: {e}"))
}

fn committed_side(
    path: &str,
    bytes: Option<&[u8]>,
    schema: Option<&Result<Arc<Schema>, String>>,
    limits: &ParseLimits,
    opts: &CanonOptions,
) -> CommittedSide {
    let schema = match schema {
        Some(Ok(s)) => Some(Arc::clone(s)),
        Some(Err(e)) => return CommittedSide::Invalid(e.clone()),
        None => None,
    };
    let Some(bytes) = bytes else {
        return CommittedSide::Invalid(format!("{path} could not be read from the repo"));
    };
    let Some(format) = Format::from_path(path) else {
        return CommittedSide::Invalid(format!(
            "{path} has no .json, .yaml, .yml or .toml extension"
        ));
    };
    match parse_document(bytes, format, limits) {
        Ok(doc) => {
            let canonical = canonicalise(doc, schema.as_deref(), Side::Committed, opts);
            CommittedSide::Ready {
                canonical: Box::new(canonical),
                schema,
            }
        }
        Err(e) => CommittedSide::Invalid(format!("{path} is not a valid config: {e}")),
    }
}

/// One bot's report from its two sides; committed-side reasons come before
/// running-side ones (§7). Returns the running canonical form when the bot drifts,
/// for `matches_commit`, and the current values of `watched` fields not drifting.
fn evaluate_bot(
    config: &Config,
    bot: &Bot,
    running: Option<RunningSide>,
    read: &CommittedRead,
    committed: Option<&CommittedSide>,
    now_ms: i64,
    watched: &[String],
) -> (ConfigDriftReport, Option<Arc<Canonical>>, Observed) {
    let mut r = ConfigDriftReport::new(Some(bot.slug.to_string()), now_ms);
    r.committed_ref = Some(config.repo.branch.clone());
    r.committed_commit = Some(read.snapshot.commit.clone());
    r.committed_signature = Some(read.snapshot.committed_signature);
    let content = read
        .content_signatures
        .get(&bot.config_path)
        .copied()
        .unwrap_or(read.snapshot.committed_signature);
    r.content_signature = Some(content);
    // Reported whenever the bot gave it, even if the committed side then fails.
    if let Some(RunningSide::Ready(_, loaded_at_ms)) = &running {
        r.running_loaded_at_ms = *loaded_at_ms;
    }

    if config.repo.require_signed_commits
        && (read.snapshot.committed_signature != SignatureState::Verified
            || content != SignatureState::Verified)
    {
        r.set_unknown(
            UnknownReason::CommittedUnverified,
            format!(
                "require_signed_commits is set and the head commit is {} and the commit that last changed {} is {}",
                read.snapshot.committed_signature.as_str(),
                bot.config_path,
                content.as_str()
            ),
        );
        return (r, None, Observed::new());
    }

    let (canonical_committed, schema) = match (read.entries.get(&bot.config_path), committed) {
        (None, _) => {
            r.set_unknown(
                UnknownReason::CommittedConfigMissing,
                format!(
                    "{} does not exist on branch {}",
                    bot.config_path, config.repo.branch
                ),
            );
            return (r, None, Observed::new());
        }
        (Some(TreeEntry::NotAFile(kind)), _) => {
            r.set_unknown(
                UnknownReason::CommittedConfigInvalid,
                format!("{} is a {kind} in the repo, not a file", bot.config_path),
            );
            return (r, None, Observed::new());
        }
        (Some(TreeEntry::Blob(_)), Some(CommittedSide::Ready { canonical, schema })) => {
            (canonical, schema)
        }
        (Some(TreeEntry::Blob(_)), Some(CommittedSide::Invalid(why))) => {
            r.set_unknown(UnknownReason::CommittedConfigInvalid, why.clone());
            return (r, None, Observed::new());
        }
        (Some(TreeEntry::Blob(_)), None) => {
            r.set_unknown(
                UnknownReason::CommittedConfigInvalid,
                format!("{} could not be read", bot.config_path),
            );
            return (r, None, Observed::new());
        }
    };

    let running = match running {
        Some(RunningSide::Ready(canonical, _)) => canonical,
        Some(RunningSide::Failed(FetchFailure { reason, detail })) => {
            r.set_unknown(reason, detail);
            return (r, None, Observed::new());
        }
        Some(RunningSide::NoSchema) | None => {
            r.set_unknown(
                UnknownReason::RuntimeTimeout,
                "the running config was not evaluated within the check",
            );
            return (r, None, Observed::new());
        }
    };
    let outcome = diff(
        &running,
        canonical_committed,
        &DiffOptions {
            tolerance: config.tolerance.clone(),
        },
    );
    fill_from_diff(
        &mut r,
        outcome,
        schema_path_used(bot, schema.is_some()),
        now_ms,
    );
    let settling: Vec<&str> = watched
        .iter()
        .map(String::as_str)
        .filter(|f| !r.drifts.iter().any(|d| d.field == *f))
        .collect();
    let seen = observe(&running, canonical_committed, &settling);
    // Only drifting bots need their running form later (matches_commit).
    let keep = (r.status == Status::Drift).then(|| Arc::from(running));
    (r, keep, seen)
}

fn schema_path_used(bot: &Bot, has_schema: bool) -> Option<String> {
    if has_schema {
        bot.schema_path.clone()
    } else {
        None
    }
}

/// Copies a diff's result into a report and settles IN_SYNC or DRIFT. Every drift
/// is stamped `since` = `now_ms`; the agent's latch replaces it with the time the
/// drift was first seen.
pub fn fill_from_diff(
    r: &mut ConfigDriftReport,
    outcome: DiffOutcome,
    schema: Option<String>,
    now_ms: i64,
) {
    r.schema = Some(schema);
    r.ignored = Some(outcome.ignored);
    r.schema_errors = outcome.schema_errors;
    r.drifts = outcome
        .drifts
        .into_iter()
        .map(|d| Drift {
            field: d.path.to_string(),
            kind: d.kind,
            running: d.running.and_then(raw_json),
            committed: d.committed.and_then(raw_json),
            delta: d.delta.and_then(raw_json),
            since_ts_ms: now_ms,
            latched: false,
        })
        .collect();
    r.settle();
}

fn raw_json(text: String) -> Option<Box<serde_json::value::RawValue>> {
    serde_json::value::RawValue::from_string(text).ok()
}

/// The bot file's past versions, canonicalised at most once per blob pair per
/// check and reusing what the check itself already canonicalised.
struct History<'a> {
    config: &'a Config,
    key: &'a SecretKey,
    committed: &'a HashMap<BlobPair, Arc<CommittedSide>>,
    schemas: &'a HashMap<String, CompiledSchema>,
    seen: HashMap<BlobPair, Arc<CommittedSide>>,
}

impl History<'_> {
    fn find_match(
        &mut self,
        repo: &mut RepoSession<'_>,
        snapshot: &Snapshot,
        bot: &Bot,
        running: &Canonical,
        deadline: Instant,
    ) -> MatchesCommit {
        let skipped = |why| MatchesCommit::Skipped { skipped: why };
        if Instant::now() >= deadline {
            return skipped(MatchSkipped::Budget);
        }
        let Ok(versions) =
            repo.file_versions(snapshot, &bot.config_path, bot.schema_path.as_deref())
        else {
            return skipped(MatchSkipped::HistoryUnreadable);
        };
        let tolerance = DiffOptions {
            tolerance: self.config.tolerance.clone(),
        };
        let mut best: Option<(usize, &FileVersion)> = None;
        for version in &versions {
            if Instant::now() >= deadline {
                return skipped(MatchSkipped::Budget);
            }
            let Some(config_blob) = &version.config_blob else {
                continue;
            };
            let pair = BlobPair {
                config: config_blob.clone(),
                schema: bot.schema_path.as_ref().and(version.schema_blob.clone()),
            };
            let side = self.version(repo, bot, pair);
            let CommittedSide::Ready { canonical, .. } = side.as_ref() else {
                continue;
            };
            let differing = diff(running, canonical, &tolerance).drifts.len();
            if best.is_none_or(|(d, _)| differing < d) {
                best = Some((differing, version));
            }
            if differing == 0 {
                break;
            }
        }
        match best {
            Some((differing, v)) => MatchesCommit::Found {
                commit: v.commit.clone(),
                committed_at_ms: v.committed_at_ms,
                author: v.author.clone(),
                summary: v.summary.clone(),
                commits_behind: v.commits_behind,
                exact: differing == 0,
                differing_fields: (differing > 0).then_some(differing as u64),
            },
            None => skipped(MatchSkipped::HistoryUnreadable),
        }
    }

    fn version(&mut self, repo: &RepoSession<'_>, bot: &Bot, pair: BlobPair) -> Arc<CommittedSide> {
        if let Some(side) = self.committed.get(&pair).or_else(|| self.seen.get(&pair)) {
            return Arc::clone(side);
        }
        let limits = ParseLimits {
            max_bytes: self.config.runtime.max_body_bytes,
        };
        let opts = CanonOptions {
            ignore_fields: &self.config.ignore_fields,
            secret_key: self.key,
        };
        let schema = match (&bot.schema_path, &pair.schema) {
            (Some(path), Some(id)) => Some(match self.schemas.get(id) {
                Some(compiled) => Arc::clone(compiled),
                None => Arc::new(compile_schema(
                    path,
                    repo.read_blob(id).ok().as_deref(),
                    &limits,
                )),
            }),
            _ => None,
        };
        let bytes = repo.read_blob(&pair.config).ok();
        let side = Arc::new(committed_side(
            &bot.config_path,
            bytes.as_deref(),
            schema.as_deref(),
            &limits,
            &opts,
        ));
        self.seen.insert(pair, Arc::clone(&side));
        side
    }
}

/// Like [`par_map`], consuming the items.
fn par_map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < 64 {
        return items.into_iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let c: Vec<T> = items.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Maps `f` over `items` on every core, keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    par_map_owned(items.iter().collect(), f)
}
