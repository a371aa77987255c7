//! The committed side of a check: what one check reads from the pinned branch
//! (head, tree entries, new blobs, content signatures) under the repo's lock,
//! and each bot's committed document canonicalised through its schema, with the
//! parse caches a `Checker` keeps between checks.
//!
//! Owns the repo reads and the caches' keys. It must not look at the running
//! side or decide a bot's status: a failure here becomes a value
//! (`RepoFailure` for the whole check, `CommittedSide::Invalid` for one bot)
//! that the verdict turns into the reason.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::canon::canonical::{CanonOptions, Canonical, canonicalise};
use crate::canon::schema::Schema;
use crate::canon::{Format, ParseLimits, parse_document};
use crate::config::Bot;
use crate::repo::{CommittedRepo, RepoFailure, Snapshot, TreeEntry};
use crate::report::{Side, SignatureState, UnknownReason};

/// A schema compiled once per blob id, or why it does not compile.
pub(super) type CompiledSchema = Arc<Result<Arc<Schema>, String>>;

/// A committed document canonicalised through its schema, or why it could not be.
pub(super) enum CommittedSide {
    Ready {
        canonical: Box<Canonical>,
        schema: Option<Arc<Schema>>,
    },
    Invalid(String),
}

/// The cache key of a committed side: the same file under a changed schema is
/// canonicalised anew.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct BlobPair {
    pub config: String,
    pub schema: Option<String>,
}

/// The parse caches a `Checker` keeps between checks, handed to the blocking
/// evaluation and back.
pub(super) struct Caches {
    pub committed: HashMap<BlobPair, Arc<CommittedSide>>,
    pub schemas: HashMap<String, CompiledSchema>,
}

/// Everything read from the repo for one check, under its lock.
pub(super) struct CommittedRead {
    pub snapshot: Snapshot,
    pub entries: HashMap<String, TreeEntry>,
    /// Blobs not already cached, by id.
    pub blobs: HashMap<String, Vec<u8>>,
    pub content_signatures: HashMap<String, SignatureState>,
    /// Filled during evaluation: each bot's canonical running config, for matches_commit.
    pub running: HashMap<String, Arc<Canonical>>,
}

impl CommittedRead {
    /// The signature of the commit that last changed `config_path`; the head's
    /// when its history could not be read.
    pub(super) fn content_signature(&self, config_path: &str) -> SignatureState {
        self.content_signatures
            .get(config_path)
            .copied()
            .unwrap_or(self.snapshot.committed_signature)
    }
}

/// Syncs the pinned branch and reads, for the `wanted` (config, schema) paths,
/// their tree entries, the blobs the caches (`known`, `known_schemas`) cannot
/// answer, and each config's content signature.
pub(super) fn read_committed(
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

/// The bot's (config blob, schema blob) at this commit; `None` when its config
/// is not a file there.
pub(super) fn blob_pair(bot: &Bot, entries: &HashMap<String, TreeEntry>) -> Option<BlobPair> {
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

/// The schema at `path` compiled, or the sentence that makes its bots
/// `committed_config_invalid` (§6.2).
pub(super) fn compile_schema(
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

/// The committed document at `path` canonicalised through its schema; a schema
/// that failed to compile makes the side invalid with the schema's sentence.
pub(super) fn committed_side(
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
