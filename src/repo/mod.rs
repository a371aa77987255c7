//! The committed side (`[repo]`, §5): the agent's own clone under `checkout_dir`,
//! shared through a lock file; the pinned branch fetched and resolved to one commit
//! per check; blobs read from Git objects, never from a work tree.

use std::collections::HashMap;

use crate::config::RepoConfig;
use crate::report::{SignatureState, UnknownReason};

/// Why the committed side could not be read for a whole check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFailure {
    /// `repo_unreachable`, `repo_stale` or `branch_not_found`.
    pub reason: UnknownReason,
    /// One sentence, URL credentials redacted.
    pub detail: String,
}

/// A problem opening or creating the clone (not an outage: a startup error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RepoSetupError(pub String);

/// The pinned branch resolved to one commit for one check.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Full hex sha of the branch head.
    pub commit: String,
    pub committed_signature: SignatureState,
}

/// What a path names in the snapshot's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular (or executable) file: its blob id, hex.
    Blob(String),
    /// A symlink, a folder or a submodule: not a valid config.
    NotAFile(&'static str),
}

/// The agent's clone of the config repo.
pub struct CommittedRepo {
    _private: (),
}

impl CommittedRepo {
    /// Opens (creating if needed) the clone under `cfg.checkout_dir`.
    pub fn open(cfg: &RepoConfig) -> Result<CommittedRepo, RepoSetupError> {
        let _ = cfg;
        todo!("repo::CommittedRepo::open")
    }

    /// Fetches the pinned branch (only it) and resolves it to one commit. Holds the
    /// lock file for the duration. `now_ms` drives `repo_stale`.
    pub fn sync(&mut self, now_ms: i64) -> Result<Snapshot, RepoFailure> {
        let _ = now_ms;
        todo!("repo::CommittedRepo::sync")
    }

    /// Looks up every path in the snapshot's tree in one walk. Paths absent from the
    /// tree are absent from the map.
    pub fn entries(&self, snapshot: &Snapshot, paths: &[&str]) -> HashMap<String, TreeEntry> {
        let _ = (snapshot, paths);
        todo!("repo::CommittedRepo::entries")
    }

    pub fn read_blob(&self, blob: &str) -> Result<Vec<u8>, RepoSetupError> {
        let _ = blob;
        todo!("repo::CommittedRepo::read_blob")
    }
}
