//! The committed side (`[repo]`, §5): the agent's own clone under `checkout_dir`,
//! shared through a lock file; the pinned branch fetched and resolved to one commit
//! per check; blobs read from Git objects, never from a work tree; the branch's
//! first-parent history for `content_signature` and `matches_commit`. It never
//! writes to the config repo (only to its own clone), never falls back to another
//! ref, and never prints a URL's credentials.
//!
//! One check, in order:
//! ```text
//! let mut repo = CommittedRepo::open(&cfg.repo)?;     // at startup
//! let mut session = repo.lock()?;                     // waits for other processes
//! let snapshot = session.sync(now_ms)?;               // or every bot UNKNOWN
//! let entries = session.entries(&snapshot, &paths)?;  // one tree walk
//! let blobs = session.read_blobs(&ids);               // one object-database handle
//! let sigs = session.content_signatures(&snapshot, &paths)?;
//! drop(session);                                      // the next process may go
//! ```

mod fetch;
pub mod freshness;
mod history;
pub mod lock;
mod rev;
pub mod signature;
mod tree;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use git2::{ObjectType, Oid, Repository, RepositoryInitOptions, RepositoryOpenFlags};

use crate::config::RepoConfig;
use crate::report::{SignatureState, UnknownReason};

pub use freshness::Freshness;
pub use lock::RepoLock;
pub use rev::{RevReader, read_rev_path};
pub use signature::{SignatureVerifier, UncheckedSignatures};

use fetch::{AuthAttempts, FetchOutcome};
use history::History;

/// Why the committed side could not be read for a whole check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFailure {
    /// `repo_unreachable`, `repo_stale` or `branch_not_found`.
    pub reason: UnknownReason,
    /// One sentence naming the (redacted) URL and the branch.
    pub detail: String,
}

impl RepoFailure {
    /// True when a fetch was tried and failed (`drift_repo_fetch_errors_total`);
    /// a missing branch is an answer, not a failed fetch.
    pub fn is_fetch_error(&self) -> bool {
        matches!(
            self.reason,
            UnknownReason::RepoUnreachable | UnknownReason::RepoStale
        )
    }
}

/// A problem opening or creating the clone (not an outage: a startup error).
#[derive(Debug, thiserror::Error)]
pub enum RepoSetupError {
    #[error("{path}: cannot create the checkout folder: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot take the repository lock: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: the checkout is not a usable Git repository ({message}); move it away to let the agent clone afresh"
    )]
    Unusable { path: PathBuf, message: String },
    #[error("{path}: cannot set the `origin` remote to {url}: {message}")]
    Remote {
        path: PathBuf,
        url: String,
        message: String,
    },
    /// A clone belongs to the one repository it was made from: re-pointing it
    /// would make every process sharing it compare against another repo's branch.
    #[error(
        "{path} is the clone of {clone_url}, not of [repo].url = {url}; give this config its own [repo].checkout_dir (or move the clone away to clone {url} afresh)"
    )]
    OtherRepository {
        path: PathBuf,
        clone_url: String,
        url: String,
    },
    #[error(transparent)]
    Freshness(#[from] freshness::FreshnessError),
}

/// An object of the clone (or of a repository named on the command line) that
/// cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RepoReadError {
    #[error("`{id}` is not a Git object id")]
    BadObjectId { id: String },
    #[error("object {id} cannot be read from {repo}: {message}")]
    Object {
        repo: String,
        id: String,
        message: String,
    },
    #[error("object {id} in {repo} is a {kind}, not a file")]
    NotABlob {
        repo: String,
        id: String,
        kind: &'static str,
    },
    #[error("{repo} cannot be opened as a Git repository: {message}")]
    Open { repo: String, message: String },
    #[error("cannot fetch {repo}: {message}")]
    Fetch { repo: String, message: String },
    #[error("`{rev}` does not name a commit in {repo}: {message}")]
    RevNotFound {
        repo: String,
        rev: String,
        message: String,
    },
    #[error("`{rev}:{path}` does not exist in {repo}")]
    PathNotFound {
        repo: String,
        rev: String,
        path: String,
    },
    #[error("`{rev}:{path}` in {repo} is a {kind}, not a file")]
    NotAFile {
        repo: String,
        rev: String,
        path: String,
        kind: &'static str,
    },
}

/// The branch history cannot be read (`matches_commit` is then
/// `{"skipped": "history_unreadable"}`).
#[derive(Debug, thiserror::Error)]
#[error("the history of branch `{branch}` in {repo} cannot be read: {message}")]
pub struct HistoryError {
    pub repo: String,
    pub branch: String,
    pub message: String,
}

/// The pinned branch resolved to one commit for one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Full hex sha of the branch head.
    pub commit: String,
    /// The head commit's signature state.
    pub committed_signature: SignatureState,
}

/// What a path names in the snapshot's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular (or executable) file: its blob id, hex.
    Blob(String),
    /// `"symlink"`, `"folder"`, `"submodule"`: not a valid config.
    NotAFile(&'static str),
}

/// The commit that last changed a path, as seen from the head (§5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastChange {
    pub commit: String,
    /// 0 for the head; larger is older. Of a bot's config and schema, the
    /// smaller wins.
    pub commits_ago: usize,
    pub signature: SignatureState,
}

/// One version of a bot's committed (config, schema) pair (§7 `matches_commit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVersion {
    /// The newest commit holding this pair.
    pub commit: String,
    pub committed_at_ms: i64,
    /// Author name.
    pub author: String,
    pub summary: String,
    /// The config file's blob id; `None` when absent or not a file there.
    pub config_blob: Option<String>,
    pub schema_blob: Option<String>,
    /// Commits on the branch newer than `commit` that changed the config file.
    pub commits_behind: u64,
}

/// The agent's clone of the config repo.
pub struct CommittedRepo {
    cfg: RepoConfig,
    git: Repository,
    verifier: Box<dyn SignatureVerifier>,
    /// Commit signature states never change for a given verifier.
    signatures: HashMap<Oid, SignatureState>,
    /// The history of the last head asked about.
    history: Option<History>,
    /// What went wrong without failing the read (a fetch record not saved),
    /// for the caller to say: this layer writes no log records.
    warnings: Vec<String>,
}

/// Names this module writes inside `checkout_dir` beside Git's own files.
const OWN_FILES: [&str; 3] = [
    lock::LOCK_FILE,
    freshness::FRESHNESS_FILE,
    "config-drift-detector-fetch.json.tmp",
];

/// A dead remote must not hold a check for libgit2's defaults (minutes).
const CONNECT_TIMEOUT_MS: i32 = 10_000;
const SERVER_TIMEOUT_MS: i32 = 30_000;

pub(crate) fn set_network_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these write two process-wide libgit2 integers; `Once` runs this
        // before any fetch of this process starts, so no transport reads them
        // concurrently.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS);
            let _ = git2::opts::set_server_timeout_in_milliseconds(SERVER_TIMEOUT_MS);
        }
    });
}

impl CommittedRepo {
    /// Opens the clone under `cfg.checkout_dir`, creating a bare one (with an
    /// `origin` remote at `cfg.url`) if the folder is absent or empty. A clone of
    /// another URL is refused, never re-pointed. Fetches nothing.
    pub fn open(cfg: &RepoConfig) -> Result<CommittedRepo, RepoSetupError> {
        set_network_timeouts();
        let dir = &cfg.checkout_dir;
        fs::create_dir_all(dir).map_err(|source| RepoSetupError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        // Initialise under the lock: two processes starting together must not
        // both create the repository.
        let _lock = RepoLock::acquire(dir).map_err(|source| RepoSetupError::Lock {
            path: dir.join(lock::LOCK_FILE),
            source,
        })?;
        let unusable = |e: git2::Error| RepoSetupError::Unusable {
            path: dir.clone(),
            message: e.message().to_owned(),
        };
        let git = if is_fresh(dir).map_err(|source| RepoSetupError::CreateDir {
            path: dir.clone(),
            source,
        })? {
            let mut options = RepositoryInitOptions::new();
            options.bare(true).mkdir(true);
            Repository::init_opts(dir, &options).map_err(unusable)?
        } else {
            let git = Repository::open_ext(dir, RepositoryOpenFlags::NO_SEARCH, [] as [&OsStr; 0])
                .map_err(unusable)?;
            // Opening reads only HEAD and the config; a clone whose object store
            // is gone would otherwise fail only at the first check.
            git.odb().map_err(unusable)?;
            if git.is_shallow() {
                // Made by hand: its history stops short of `history_depth`, and
                // libgit2's local transport cannot deepen it.
                return Err(RepoSetupError::Unusable {
                    path: dir.clone(),
                    message: "it is a shallow clone, and history_depth needs the full history"
                        .to_owned(),
                });
            }
            git
        };
        ensure_origin(&git, cfg)?;
        freshness::load(dir, &source_key(cfg))?;
        Ok(CommittedRepo {
            cfg: cfg.clone(),
            git,
            verifier: Box::new(UncheckedSignatures),
            signatures: HashMap::new(),
            history: None,
            warnings: Vec::new(),
        })
    }

    /// Installs the signature verifier (SSH allowed signers, GPG keyring).
    pub fn set_verifier(&mut self, verifier: Box<dyn SignatureVerifier>) {
        self.verifier = verifier;
        self.signatures.clear();
    }

    pub fn config(&self) -> &RepoConfig {
        &self.cfg
    }

    /// The fetch record as last written by any process sharing the clone.
    pub fn freshness(&self) -> Result<Freshness, freshness::FreshnessError> {
        freshness::load(&self.cfg.checkout_dir, &source_key(&self.cfg))
    }

    /// Waits for the clone's lock: one check at a time across every process
    /// sharing `checkout_dir`. Released when the session is dropped.
    pub fn lock(&mut self) -> Result<RepoSession<'_>, RepoSetupError> {
        let lock =
            RepoLock::acquire(&self.cfg.checkout_dir).map_err(|source| RepoSetupError::Lock {
                path: self.cfg.checkout_dir.join(lock::LOCK_FILE),
                source,
            })?;
        Ok(RepoSession {
            repo: self,
            _lock: lock,
        })
    }

    /// What went wrong since the last call without failing a read.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Takes the lock only if no other process holds it.
    pub fn try_lock(&mut self) -> Result<Option<RepoSession<'_>>, RepoSetupError> {
        let lock = RepoLock::try_acquire(&self.cfg.checkout_dir).map_err(|source| {
            RepoSetupError::Lock {
                path: self.cfg.checkout_dir.join(lock::LOCK_FILE),
                source,
            }
        })?;
        Ok(lock.map(|lock| RepoSession {
            repo: self,
            _lock: lock,
        }))
    }

    fn signature_of(&mut self, commit: Oid) -> Result<SignatureState, git2::Error> {
        if let Some(&state) = self.signatures.get(&commit) {
            return Ok(state);
        }
        let state = signature::commit_signature_state(&self.git, commit, &*self.verifier)?;
        self.signatures.insert(commit, state);
        Ok(state)
    }

    fn history_error(&self, e: &git2::Error) -> HistoryError {
        HistoryError {
            repo: self.cfg.url_redacted(),
            branch: self.cfg.branch.clone(),
            message: self.scrub(e.message()),
        }
    }

    fn scrub(&self, message: &str) -> String {
        fetch::scrub(message, &self.cfg.url, &self.cfg.url_redacted())
    }

    /// The history of `snapshot`'s head with `paths` known, built once per head.
    fn history_for(
        &mut self,
        snapshot: &Snapshot,
        paths: &[&str],
    ) -> Result<&History, HistoryError> {
        let head = parse_commit(snapshot).map_err(|e| self.history_error(&e))?;
        let depth = self.cfg.history_depth;
        let mut history = match self.history.take() {
            Some(h) if h.head == head && h.depth == depth => h,
            _ => History::walk(&self.git, head, depth).map_err(|e| self.history_error(&e))?,
        };
        // On failure the history is dropped: the next call starts afresh.
        history
            .ensure_paths(&self.git, paths)
            .map_err(|e| self.history_error(&e))?;
        Ok(self.history.insert(history))
    }
}

/// One process's turn with the clone: holds the lock file until dropped.
pub struct RepoSession<'a> {
    repo: &'a mut CommittedRepo,
    _lock: RepoLock,
}

impl RepoSession<'_> {
    /// Fetches the pinned branch (only it) and resolves it to one commit. A failed
    /// fetch is never answered from the local copy: every bot of the check is then
    /// UNKNOWN. `now_ms` drives `repo_stale`.
    pub fn sync(&mut self, now_ms: i64) -> Result<Snapshot, RepoFailure> {
        let cfg = &self.repo.cfg;
        let url = cfg.url_redacted();
        let branch = cfg.branch.clone();
        let key = source_key(cfg);
        let dir = cfg.checkout_dir.clone();
        let max_staleness = cfg.max_staleness;
        // Another process (an older binary, a hand-made change) may have moved
        // `origin` since this one opened the clone: never fetch another repo's
        // branch, and leave the other repo's fetch record alone.
        if let Err(e) = verify_origin(&self.repo.git, cfg) {
            return Err(RepoFailure {
                reason: UnknownReason::RepoUnreachable,
                detail: format!("Branch `{branch}` of {url} cannot be fetched: {e}."),
            });
        }
        let mut record = freshness::load(&dir, &key).map_err(|e| RepoFailure {
            reason: UnknownReason::RepoUnreachable,
            detail: format!("Branch `{branch}` of {url} cannot be checked: {e}."),
        })?;

        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(RepoFailure {
                reason: UnknownReason::BranchNotFound,
                detail: format!("`{branch}` is not a valid branch name, so it is not in {url}."),
            });
        }

        let attempts = RefCell::new(AuthAttempts::default());
        let outcome = fetch::fetch_branch(&self.repo.git, &branch, &attempts);
        match outcome {
            Ok(FetchOutcome::Head(head)) => {
                record.record_success(now_ms);
                if let Err(e) = freshness::save(&dir, &key, &record) {
                    self.repo.warnings.push(format!(
                        "The fetch succeeded but its record was not saved: {e}"
                    ));
                }
                let signature = self.repo.signature_of(head).map_err(|e| RepoFailure {
                    reason: UnknownReason::RepoUnreachable,
                    detail: format!(
                        "Head {head} of branch `{branch}` from {url} cannot be read: {}.",
                        self.repo.scrub(e.message())
                    ),
                })?;
                Ok(Snapshot {
                    commit: head.to_string(),
                    committed_signature: signature,
                })
            }
            Ok(FetchOutcome::BranchMissing) => Err(RepoFailure {
                reason: UnknownReason::BranchNotFound,
                detail: format!("Branch `{branch}` does not exist in {url}."),
            }),
            Err(e) => {
                record.record_failure(now_ms);
                if let Err(save_error) = freshness::save(&dir, &key, &record) {
                    self.repo
                        .warnings
                        .push(format!("The failed fetch was not recorded: {save_error}"));
                }
                // libgit2 says "unsupported URL protocol" for a local path that is
                // gone; name what is really wrong.
                let why = local_repository_problem(&self.repo.cfg.url)
                    .unwrap_or_else(|| self.repo.scrub(&fetch::explain(&e, &attempts)));
                let reason = record.outage_reason(now_ms, max_staleness);
                let detail = match (reason, record.last_success_ms) {
                    (UnknownReason::RepoStale, Some(last)) => format!(
                        "Branch `{branch}` of {url} was last fetched {}s ago, more than max_staleness_s = {}; the fetch fails: {why}.",
                        now_ms.saturating_sub(last) / 1000,
                        max_staleness.as_secs()
                    ),
                    (UnknownReason::RepoStale, None) => format!(
                        "Branch `{branch}` of {url} has never been fetched and fetches have failed for more than max_staleness_s = {}: {why}.",
                        max_staleness.as_secs()
                    ),
                    _ => format!("Fetching branch `{branch}` from {url} failed: {why}."),
                };
                Err(RepoFailure { reason, detail })
            }
        }
    }

    /// Looks up every path in the snapshot's tree in one walk, opening only the
    /// folders some path needs. Paths absent from the tree are absent from the map.
    pub fn entries(
        &self,
        snapshot: &Snapshot,
        paths: &[&str],
    ) -> Result<HashMap<String, TreeEntry>, RepoReadError> {
        let git = &self.repo.git;
        let head = parse_commit(snapshot).map_err(|e| self.object_error(&snapshot.commit, &e))?;
        let tree = git
            .find_commit(head)
            .and_then(|c| c.tree())
            .map_err(|e| self.object_error(&snapshot.commit, &e))?;
        let trie = tree::PathTrie::new(paths);
        let slots = trie
            .lookup(git, &tree)
            .map_err(|e| self.object_error(&snapshot.commit, &e))?;
        Ok(paths
            .iter()
            .zip(slots)
            .filter_map(|(path, slot)| {
                let slot = slot?;
                let entry = match slot.not_a_file() {
                    None => TreeEntry::Blob(slot.id.to_string()),
                    Some(kind) => TreeEntry::NotAFile(kind),
                };
                Some(((*path).to_owned(), entry))
            })
            .collect())
    }

    /// Reads one blob's bytes.
    pub fn read_blob(&self, id: &str) -> Result<Vec<u8>, RepoReadError> {
        let odb = self.repo.git.odb().map_err(|e| self.object_error(id, &e))?;
        self.read_with(&odb, id)
    }

    /// Reads many blobs through one object-database handle, in the order asked.
    pub fn read_blobs(&self, ids: &[&str]) -> Vec<Result<Vec<u8>, RepoReadError>> {
        match self.repo.git.odb() {
            Ok(odb) => ids.iter().map(|id| self.read_with(&odb, id)).collect(),
            Err(e) => ids
                .iter()
                .map(|id| Err(self.object_error(id, &e)))
                .collect(),
        }
    }

    fn read_with(&self, odb: &git2::Odb<'_>, id: &str) -> Result<Vec<u8>, RepoReadError> {
        let oid =
            Oid::from_str(id).map_err(|_| RepoReadError::BadObjectId { id: id.to_owned() })?;
        let object = odb.read(oid).map_err(|e| self.object_error(id, &e))?;
        if object.kind() != ObjectType::Blob {
            return Err(RepoReadError::NotABlob {
                repo: self.repo.cfg.url_redacted(),
                id: id.to_owned(),
                kind: object.kind().str(),
            });
        }
        Ok(object.data().to_vec())
    }

    fn object_error(&self, id: &str, e: &git2::Error) -> RepoReadError {
        RepoReadError::Object {
            repo: self.repo.cfg.url_redacted(),
            id: id.to_owned(),
            message: self.repo.scrub(e.message()),
        }
    }

    /// Computes the history for every path at once, so later per-bot questions
    /// (`bot_content_signature`, `file_versions`) are lookups. Call it with the
    /// whole fleet's config and schema paths.
    pub fn prime_history(
        &mut self,
        snapshot: &Snapshot,
        paths: &[&str],
    ) -> Result<(), HistoryError> {
        self.repo.history_for(snapshot, paths).map(|_| ())
    }

    /// For each path, the commit that last changed it within `history_depth`
    /// first-parent commits. A path never changed within that window (or absent
    /// throughout) gets the oldest walked commit: the window cannot see further.
    pub fn last_changes(
        &mut self,
        snapshot: &Snapshot,
        paths: &[&str],
    ) -> Result<HashMap<String, LastChange>, HistoryError> {
        let history = self.repo.history_for(snapshot, paths)?;
        let found: Vec<(String, usize, Oid)> = paths
            .iter()
            .filter_map(|p| {
                let index = history.last_change(p);
                history
                    .commits
                    .get(index)
                    .map(|c| ((*p).to_owned(), index, c.id))
            })
            .collect();
        let mut out = HashMap::with_capacity(found.len());
        for (path, commits_ago, id) in found {
            let signature = self
                .repo
                .signature_of(id)
                .map_err(|e| self.repo.history_error(&e))?;
            out.insert(
                path,
                LastChange {
                    commit: id.to_string(),
                    commits_ago,
                    signature,
                },
            );
        }
        Ok(out)
    }

    /// The signature state of the commit that last changed each path (see
    /// `last_changes` for paths unchanged within the window).
    pub fn content_signatures(
        &mut self,
        snapshot: &Snapshot,
        paths: &[&str],
    ) -> Result<HashMap<String, SignatureState>, HistoryError> {
        Ok(self
            .last_changes(snapshot, paths)?
            .into_iter()
            .map(|(path, change)| (path, change.signature))
            .collect())
    }

    /// A bot's `content_signature`: the state of the newer of the commits that
    /// last changed its config file and its schema.
    pub fn bot_content_signature(
        &mut self,
        snapshot: &Snapshot,
        config_path: &str,
        schema_path: Option<&str>,
    ) -> Result<SignatureState, HistoryError> {
        let paths: Vec<&str> = std::iter::once(config_path).chain(schema_path).collect();
        let changes = self.last_changes(snapshot, &paths)?;
        changes
            .into_values()
            .min_by_key(|c| c.commits_ago)
            .map(|c| c.signature)
            .ok_or_else(|| HistoryError {
                repo: self.repo.cfg.url_redacted(),
                branch: self.repo.cfg.branch.clone(),
                message: format!("commit {} has no history", snapshot.commit),
            })
    }

    /// The distinct (config, schema) versions along the first-parent history
    /// within `history_depth`, newest first. A pair seen again further back (a
    /// revert) is listed once, at its newest commit: an older copy can never be a
    /// better match.
    pub fn file_versions(
        &mut self,
        snapshot: &Snapshot,
        config_path: &str,
        schema_path: Option<&str>,
    ) -> Result<Vec<FileVersion>, HistoryError> {
        let paths: Vec<&str> = std::iter::once(config_path).chain(schema_path).collect();
        let history = self.repo.history_for(snapshot, &paths)?;
        let blob =
            |slot: Option<tree::Slot>| slot.filter(|s| s.is_file()).map(|s| s.id.to_string());
        let mut out: Vec<FileVersion> = Vec::new();
        for run in history.versions(config_path, schema_path) {
            let (config_blob, schema_blob) = (blob(run.config), blob(run.schema));
            if out
                .iter()
                .any(|v| v.config_blob == config_blob && v.schema_blob == schema_blob)
            {
                continue;
            }
            let Some(commit) = history.commits.get(run.start) else {
                continue;
            };
            out.push(FileVersion {
                commit: commit.id.to_string(),
                committed_at_ms: commit.committed_at_ms,
                author: commit.author.clone(),
                summary: commit.summary.clone(),
                config_blob,
                schema_blob,
                commits_behind: run.commits_behind,
            });
        }
        Ok(out)
    }
}

fn parse_commit(snapshot: &Snapshot) -> Result<Oid, git2::Error> {
    Oid::from_str(&snapshot.commit)
}

/// For a local `[repo].url` (a path or a `file://` URL), why no repository can
/// be read there: the path is missing, or holds no Git repository. `None` for a
/// remote URL or a usable local one.
pub fn local_repository_problem(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        None => Path::new(url),
        Some(("file", rest)) => Path::new(rest),
        Some(_) => return None,
    };
    if !path.exists() {
        return Some(format!("the path {} does not exist", path.display()));
    }
    match Repository::open_ext(path, RepositoryOpenFlags::NO_SEARCH, [] as [&OsStr; 0]) {
        Ok(_) => None,
        Err(_) => Some(format!("{} is not a Git repository", path.display())),
    }
}

/// What the fetch record belongs to: a record of another URL or branch says
/// nothing about this one. Credentials are left out, so rotating a token keeps
/// the outage clock.
fn source_key(cfg: &RepoConfig) -> String {
    format!("{} {}", cfg.url_redacted(), cfg.branch)
}

/// True when `dir` holds nothing but this module's own files: a new clone goes
/// there. Anything else must open as a repository or is reported.
fn is_fresh(dir: &Path) -> std::io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if !OWN_FILES.iter().any(|own| name == OsStr::new(own)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives a new clone its `origin`; an existing one must already point at `cfg.url`.
fn ensure_origin(git: &Repository, cfg: &RepoConfig) -> Result<(), RepoSetupError> {
    match git.find_remote("origin") {
        Err(e) if e.code() == git2::ErrorCode::NotFound => git
            .remote("origin", &cfg.url)
            .map(|_| ())
            .map_err(|e| remote_error(cfg, &e)),
        _ => verify_origin(git, cfg),
    }
}

/// The clone's `origin` is `cfg.url`, byte for byte.
fn verify_origin(git: &Repository, cfg: &RepoConfig) -> Result<(), RepoSetupError> {
    let remote = git
        .find_remote("origin")
        .map_err(|e| remote_error(cfg, &e))?;
    if remote.url_bytes() == cfg.url.as_bytes() {
        return Ok(());
    }
    let clone_url = String::from_utf8_lossy(remote.url_bytes());
    Err(RepoSetupError::OtherRepository {
        path: cfg.checkout_dir.clone(),
        clone_url: crate::config::redact_url_credentials(&clone_url),
        url: cfg.url_redacted(),
    })
}

fn remote_error(cfg: &RepoConfig, e: &git2::Error) -> RepoSetupError {
    RepoSetupError::Remote {
        path: cfg.checkout_dir.clone(),
        url: cfg.url_redacted(),
        message: fetch::scrub(e.message(), &cfg.url, &cfg.url_redacted()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn origin_with_history(dir: &Path) -> Repository {
        let git = Repository::init_bare(dir.join("origin.git")).unwrap();
        let sig = git2::Signature::new("A", "a@example.invalid", &git2::Time::new(1, 0)).unwrap();
        let mut parent: Option<Oid> = None;
        for n in 0..3 {
            let blob = git.blob(format!("n: {n}\n").as_bytes()).unwrap();
            let mut bots = git.treebuilder(None).unwrap();
            bots.insert("a.yaml", blob, 0o100644).unwrap();
            let bots = bots.write().unwrap();
            let mut root = git.treebuilder(None).unwrap();
            root.insert("bots", bots, 0o040000).unwrap();
            let tree = git.find_tree(root.write().unwrap()).unwrap();
            let parents: Vec<git2::Commit<'_>> = parent
                .iter()
                .map(|p| git.find_commit(*p).unwrap())
                .collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            parent = Some(
                git.commit(Some("refs/heads/main"), &sig, &sig, "c", &tree, &refs)
                    .unwrap(),
            );
        }
        git
    }

    fn config(dir: &Path) -> RepoConfig {
        RepoConfig {
            url: dir.join("origin.git").to_string_lossy().into_owned(),
            branch: "main".into(),
            config_path_template: "bots/{slug}.yaml".into(),
            schema_path_template: None,
            checkout_dir: dir.join("checkout"),
            history_depth: 500,
            max_staleness: Duration::from_secs(900),
            require_signed_commits: false,
            allowed_signers: None,
            gpg_keyring: None,
        }
    }

    #[test]
    fn repeated_history_questions_for_one_head_read_no_objects() {
        let temp = tempfile::tempdir().unwrap();
        origin_with_history(temp.path());
        let mut repo = CommittedRepo::open(&config(temp.path())).unwrap();
        let snapshot = repo.lock().unwrap().sync(1).unwrap();
        let first = repo
            .lock()
            .unwrap()
            .file_versions(&snapshot, "bots/a.yaml", None)
            .unwrap();
        assert_eq!(first.len(), 3);

        // From here on the clone has no objects at all: only the cache can answer.
        repo.git = Repository::init_bare(temp.path().join("empty.git")).unwrap();
        let mut session = repo.lock().unwrap();
        assert_eq!(
            session
                .file_versions(&snapshot, "bots/a.yaml", None)
                .unwrap(),
            first
        );
        let sigs = session.content_signatures(&snapshot, &["bots/a.yaml"]);
        assert_eq!(sigs.unwrap()["bots/a.yaml"], SignatureState::Unsigned);
        // A path not asked before needs the objects, proving the cache was used.
        assert!(
            session
                .file_versions(&snapshot, "bots/b.yaml", None)
                .is_err()
        );
    }
}
