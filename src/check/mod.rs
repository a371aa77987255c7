//! One evaluation of the fleet → one `ConfigDriftReport` per bot, in slug order.
//! No state, no telemetry: the agent's latch and emitters take it from here.
//!
//! The committed side and the running side are read concurrently; once the
//! committed side is in, running configs are canonicalised as they arrive, on
//! every core. Committed documents and schemas are parsed once per
//! blob id and kept for the next check while their blob is still in use.
//!
//! This file owns the orchestration under the latency budget: which task reads
//! what, when, and what a failed task means for the check. It must not decide a
//! bot's status itself (`verdict.rs` does, purely), read the repo outside
//! `committed.rs` and `history.rs`, or keep state beyond the parse caches.
//!
//! - `committed.rs`: the branch read under the repo's lock, committed sides, caches.
//! - `running.rs`: a fetched running config parsed and canonicalised.
//! - `verdict.rs`: both sides → one report, with the UNKNOWN precedence of §7.
//! - `history.rs`: `matches_commit` for drifting bots.
//! - `par_map.rs`: the order-keeping thread pool the CPU work runs on.

mod committed;
mod history;
mod par_map;
mod running;
mod verdict;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::canon::ParseLimits;
use crate::canon::canonical::{CanonOptions, Canonical};
use crate::canon::secret::SecretKey;
use crate::config::{Bot, Config};
use crate::latch::{CommitRef, Observed};
use crate::repo::{CommittedRepo, RepoFailure, RepoSetupError, Snapshot, TreeEntry};
use crate::report::{
    ConfigDriftReport, MatchSkipped, MatchesCommit, SignatureState, Status, Tally, UnknownReason,
};
use crate::runtime::{Fetched, Fetcher, RuntimeSetupError};

use committed::{
    BlobPair, Caches, CommittedRead, CommittedSide, CompiledSchema, blob_pair, committed_side,
    compile_schema, read_committed,
};
use history::History;
use par_map::{par_map, par_map_owned};
use running::{RunningSide, running_side};
use verdict::{Committed, Rules, Verdict};

pub use verdict::fill_from_diff;

use futures_util::StreamExt;

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
    /// What went wrong without failing the check (a fetch record not saved),
    /// for the caller to say.
    pub warnings: Vec<String>,
}

/// Per bot slug: fields the caller wants current values of (the latch's fields).
pub type Watched = HashMap<String, Vec<String>>;

impl CheckOutcome {
    /// How many reports have each status.
    pub fn tally(&self) -> Tally {
        Tally::of(&self.reports)
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

/// Why a `Checker` could not be set up: the part that failed, with its own
/// message (the `Display` is that part's, so the CLI prints it unchanged).
#[derive(Debug, thiserror::Error)]
pub enum CheckSetupError {
    /// The running side's clients (TLS, headers, HTTP client).
    #[error(transparent)]
    Runtime(#[from] RuntimeSetupError),
    /// The clone of the config repo (its folder, lock or git state).
    #[error(transparent)]
    Repo(#[from] RepoSetupError),
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
    pub fn new(config: Arc<Config>, secret_key: SecretKey) -> Result<Checker, CheckSetupError> {
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
        let mut outcome = self.evaluate(bots, now_ms, watched).await;
        outcome.warnings = self
            .repo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_warnings();
        outcome
    }

    async fn evaluate(&mut self, bots: &[Bot], now_ms: i64, watched: Arc<Watched>) -> CheckOutcome {
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
        let config = Arc::clone(&self.config);
        let rules = Rules::of(&config, now_ms);

        let mut read = match committed {
            Ok(read) => read,
            Err(failure) => {
                // Nothing to compare against: stop fetching.
                drop(receiver);
                fetch_task.abort();
                return CheckOutcome {
                    checked_at_ms: now_ms,
                    reports: bots
                        .iter()
                        .map(|bot| verdict::evaluate_bot(&rules, bot, Err(&failure), None, &[]))
                        .map(|v| v.report)
                        .collect(),
                    commit: None,
                    repo_failure: Some(failure),
                    budget_exhausted: false,
                    fetch_durations: Vec::new(),
                    duration: started.elapsed(),
                    observed: HashMap::new(),
                    warnings: Vec::new(),
                };
            }
        };

        let secret_key = Arc::clone(&self.secret_key);
        let eval_config = Arc::clone(&config);
        let mut caches = Caches {
            committed: std::mem::take(&mut self.committed),
            schemas: std::mem::take(&mut self.schemas),
        };
        let evaluated = tokio::task::spawn_blocking(move || {
            let (reports, observed) = evaluate_all(
                &Evaluate {
                    config: &eval_config,
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
                    reports: bots
                        .iter()
                        .map(|bot| {
                            rules.unknown(
                                bot,
                                UnknownReason::CommittedConfigInvalid,
                                format!("evaluation failed: {e}"),
                            )
                        })
                        .collect(),
                    commit: None,
                    repo_failure: None,
                    budget_exhausted,
                    fetch_durations,
                    duration: started.elapsed(),
                    observed: HashMap::new(),
                    warnings: Vec::new(),
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
            warnings: Vec::new(),
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

    let rules = Rules::of(config, now_ms);
    let jobs: Vec<(&Bot, Option<RunningSide>)> = bots.iter().zip(running).collect();
    let results = par_map_owned(jobs, |(bot, running)| {
        let pair = blob_pair(bot, &read.entries);
        let side = pair.as_ref().and_then(|p| in_use.get(p));
        let committed = Committed {
            snapshot: &read.snapshot,
            content_signature: read.content_signature(&bot.config_path),
            entry: read.entries.get(&bot.config_path),
            side: side.map(Arc::as_ref),
        };
        let watched = watched.get(bot.slug.as_str()).map(Vec::as_slice);
        verdict::evaluate_bot(
            &rules,
            bot,
            Ok(committed),
            running,
            watched.unwrap_or_default(),
        )
    });

    // Keep only what this check used, so the caches stay bounded by the fleet.
    caches.committed = in_use;
    caches.schemas = schemas;
    let mut reports = Vec::with_capacity(results.len());
    let mut observed = HashMap::new();
    for Verdict {
        report,
        running,
        observed: seen,
    } in results
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_error_reads_as_the_part_that_failed() {
        let repo = RepoSetupError::Unusable {
            path: "/var/lib/config-drift/repo".into(),
            message: "reference HEAD not found".into(),
        };
        let expected = repo.to_string();
        let e = CheckSetupError::from(repo);
        assert_eq!(e.to_string(), expected, "the message is unchanged");
        assert!(matches!(
            e,
            CheckSetupError::Repo(RepoSetupError::Unusable { .. })
        ));
    }
}
