//! One evaluation of the fleet → one `ConfigDriftReport` per bot, in slug order.
//! No state, no telemetry: the agent's latch and emitters take it from here.
//!
//! The committed side and the running side are read concurrently; the pure core
//! then runs on every core. Committed documents and schemas are parsed once per
//! blob id and kept for the next check while their blob is still in use.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::canon::canonical::{CanonOptions, Canonical, canonicalise};
use crate::canon::schema::Schema;
use crate::canon::secret::SecretKey;
use crate::canon::{Format, ParseLimits, parse_document};
use crate::config::{Bot, Config};
use crate::diff::{DiffOptions, DiffOutcome, diff};
use crate::repo::{CommittedRepo, FileVersion, RepoFailure, RepoSession, Snapshot, TreeEntry};
use crate::report::{
    ConfigDriftReport, Drift, MatchSkipped, MatchesCommit, Side, SignatureState, Status,
    UnknownReason,
};
use crate::runtime::{FetchFailure, Fetched, Fetcher};

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
}

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
    schemas: HashMap<String, Arc<Result<Arc<Schema>, String>>>,
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
    pub async fn run(&mut self, bots: &[Bot], now_ms: i64) -> CheckOutcome {
        let started = Instant::now();
        let budget = self.config.runtime.latency_budget;
        let deadline = started + budget;

        let known: HashSet<String> = self.committed.keys().map(|k| k.config.clone()).collect();
        let known_schemas: HashSet<String> = self.schemas.keys().cloned().collect();
        let repo = Arc::clone(&self.repo);
        let wanted: Vec<(String, Option<String>)> = bots
            .iter()
            .map(|b| (b.config_path.clone(), b.schema_path.clone()))
            .collect();
        let committed_task = tokio::task::spawn_blocking(move || {
            read_committed(&repo, now_ms, &wanted, &known, &known_schemas)
        });
        let timed_fetch = async {
            let fetched = self.fetcher.fetch_all(bots, deadline).await;
            tracing::debug!(
                bots = bots.len(),
                ms = started.elapsed().as_millis() as u64,
                "Fetched running configs."
            );
            fetched
        };
        let (committed, fetched) = tokio::join!(committed_task, timed_fetch);
        let committed = committed.unwrap_or_else(|e| {
            Err(RepoFailure {
                reason: UnknownReason::RepoUnreachable,
                detail: format!("reading the config repo failed unexpectedly: {e}"),
            })
        });

        let budget_exhausted = fetched.iter().any(|f| f.duration.is_none());
        let fetch_durations = fetched.iter().filter_map(|f| f.duration).collect();
        let branch = self.config.repo.branch.clone();

        let mut read = match committed {
            Ok(read) => read,
            Err(failure) => {
                let reports = bots
                    .iter()
                    .map(|bot| {
                        let mut r = ConfigDriftReport::new(Some(bot.slug.to_string()), now_ms);
                        r.committed_ref = Some(branch.clone());
                        r.set_unknown(failure.reason, failure.detail.clone());
                        r
                    })
                    .collect();
                return CheckOutcome {
                    checked_at_ms: now_ms,
                    reports,
                    commit: None,
                    repo_failure: Some(failure),
                    budget_exhausted,
                    fetch_durations,
                    duration: started.elapsed(),
                };
            }
        };

        let secret_key = Arc::clone(&self.secret_key);
        let config = Arc::clone(&self.config);
        let mut committed_cache = std::mem::take(&mut self.committed);
        let mut schema_cache = std::mem::take(&mut self.schemas);
        let bots_owned = bots.to_vec();
        let evaluated = tokio::task::spawn_blocking(move || {
            let reports = evaluate_all(
                &config,
                &secret_key,
                &bots_owned,
                &mut read,
                fetched,
                now_ms,
                &mut committed_cache,
                &mut schema_cache,
            );
            (reports, read, committed_cache, schema_cache)
        })
        .await;
        let (mut reports, read, committed_cache, schema_cache) = match evaluated {
            Ok(v) => v,
            Err(e) => {
                // A panic in the pure core is a bug; still never report "no drift".
                let reports = bots
                    .iter()
                    .map(|bot| {
                        let mut r = ConfigDriftReport::new(Some(bot.slug.to_string()), now_ms);
                        r.committed_ref = Some(branch.clone());
                        r.set_unknown(
                            UnknownReason::CommittedConfigInvalid,
                            format!("evaluation failed: {e}"),
                        );
                        r
                    })
                    .collect();
                return CheckOutcome {
                    checked_at_ms: now_ms,
                    reports,
                    commit: None,
                    repo_failure: None,
                    budget_exhausted,
                    fetch_durations,
                    duration: started.elapsed(),
                };
            }
        };
        self.committed = committed_cache;
        self.schemas = schema_cache;
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
        }
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
    known: &HashSet<String>,
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
    let missing: Vec<&str> = entries
        .values()
        .filter_map(|e| match e {
            TreeEntry::Blob(id) if !known.contains(id) && !known_schemas.contains(id) => {
                Some(id.as_str())
            }
            _ => None,
        })
        .collect::<HashSet<&str>>()
        .into_iter()
        .collect();
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

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn evaluate_all(
    config: &Config,
    key: &SecretKey,
    bots: &[Bot],
    read: &mut CommittedRead,
    fetched: Vec<Fetched>,
    now_ms: i64,
    committed_cache: &mut HashMap<BlobPair, Arc<CommittedSide>>,
    schema_cache: &mut HashMap<String, Arc<Result<Arc<Schema>, String>>>,
) -> Vec<ConfigDriftReport> {
    let limits = ParseLimits {
        max_bytes: config.runtime.max_body_bytes,
    };
    let opts = CanonOptions {
        ignore_fields: &config.ignore_fields,
        secret_key: key,
    };

    // Schemas: once per blob id.
    let mut schemas: HashMap<String, Arc<Result<Arc<Schema>, String>>> = HashMap::new();
    for bot in bots {
        let Some(path) = &bot.schema_path else {
            continue;
        };
        let Some(TreeEntry::Blob(id)) = read.entries.get(path) else {
            continue;
        };
        if schemas.contains_key(id) {
            continue;
        }
        let compiled = match schema_cache.get(id) {
            Some(c) => Arc::clone(c),
            None => Arc::new(compile_schema(
                path,
                read.blobs.get(id).map(Vec::as_slice),
                &limits,
            )),
        };
        schemas.insert(id.clone(), compiled);
    }

    // Committed sides: once per (config blob, schema blob), in parallel.
    let mut pairs: Vec<(BlobPair, String)> = Vec::new();
    let mut seen: HashSet<BlobPair> = HashSet::new();
    for bot in bots {
        if let Some(pair) = blob_pair(bot, &read.entries)
            && !committed_cache.contains_key(&pair)
            && seen.insert(pair.clone())
        {
            pairs.push((pair, bot.config_path.clone()));
        }
    }
    let fresh = par_map(&pairs, |(pair, path)| {
        let schema = pair
            .schema
            .as_ref()
            .and_then(|id| schemas.get(id))
            .map(Arc::clone);
        let side = committed_side(
            path,
            read.blobs.get(&pair.config).map(Vec::as_slice),
            schema.as_deref(),
            &limits,
            &opts,
        );
        (pair.clone(), Arc::new(side))
    });
    let mut in_use: HashMap<BlobPair, Arc<CommittedSide>> = HashMap::new();
    for (pair, side) in fresh {
        in_use.insert(pair, side);
    }
    for bot in bots {
        if let Some(pair) = blob_pair(bot, &read.entries)
            && let Some(side) = committed_cache.get(&pair)
        {
            in_use.insert(pair, Arc::clone(side));
        }
    }

    // Per bot, in parallel.
    let jobs: Vec<(&Bot, Fetched)> = bots.iter().zip(fetched).collect();
    let results = par_map(&jobs, |(bot, fetched)| {
        let pair = blob_pair(bot, &read.entries);
        let committed = pair.as_ref().and_then(|p| in_use.get(p)).map(Arc::clone);
        evaluate_bot(
            config,
            bot,
            fetched,
            read,
            committed.as_deref(),
            &limits,
            &opts,
            now_ms,
        )
    });

    // Keep only what this check used, so the caches stay bounded by the fleet.
    *committed_cache = in_use;
    *schema_cache = schemas;
    let mut reports = Vec::with_capacity(results.len());
    for (report, running) in results {
        if let (Some(slug), Some(running)) = (report.bot_slug.clone(), running) {
            read.running.insert(slug, running);
        }
        reports.push(report);
    }
    reports
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

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn evaluate_bot(
    config: &Config,
    bot: &Bot,
    fetched: &Fetched,
    read: &CommittedRead,
    committed: Option<&CommittedSide>,
    limits: &ParseLimits,
    opts: &CanonOptions,
    now_ms: i64,
) -> (ConfigDriftReport, Option<Arc<Canonical>>) {
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
    if let Ok(doc) = &fetched.result {
        r.running_loaded_at_ms = doc.loaded_at_ms;
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
        return (r, None);
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
            return (r, None);
        }
        (Some(TreeEntry::NotAFile(kind)), _) => {
            r.set_unknown(
                UnknownReason::CommittedConfigInvalid,
                format!("{} is a {kind} in the repo, not a file", bot.config_path),
            );
            return (r, None);
        }
        (Some(TreeEntry::Blob(_)), Some(CommittedSide::Ready { canonical, schema })) => {
            (canonical, schema)
        }
        (Some(TreeEntry::Blob(_)), Some(CommittedSide::Invalid(why))) => {
            r.set_unknown(UnknownReason::CommittedConfigInvalid, why.clone());
            return (r, None);
        }
        (Some(TreeEntry::Blob(_)), None) => {
            r.set_unknown(
                UnknownReason::CommittedConfigInvalid,
                format!("{} could not be read", bot.config_path),
            );
            return (r, None);
        }
    };

    let doc = match &fetched.result {
        Ok(doc) => doc,
        Err(FetchFailure { reason, detail }) => {
            r.set_unknown(*reason, detail.clone());
            return (r, None);
        }
    };
    let running_doc = match parse_document(&doc.bytes, doc.format, limits) {
        Ok(v) => v,
        Err(e) => {
            r.set_unknown(
                UnknownReason::RuntimeBadResponse,
                format!("the running config is not valid: {e}"),
            );
            return (r, None);
        }
    };
    let running = canonicalise(running_doc, schema.as_deref(), Side::Running, opts);
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
    (r, Some(Arc::new(running)))
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
    schemas: &'a HashMap<String, Arc<Result<Arc<Schema>, String>>>,
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

/// Maps `f` over `items` on every core, keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| scope.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
