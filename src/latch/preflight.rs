//! The check before an existing state database is opened: copy it under
//! sled's own lock, and, when the copy's recovery lost a flushed write, find the
//! first byte that recovery changed.
//!
//! Owns the copy (`copy_database`, `copy_tree`, the wait for a lock that is
//! being released) and the comparison of a database with its recovered copy
//! (`Damage`). Must not open sled or judge a store: `store.rs` opens the copy,
//! checks its generation and schema, and decides whether the database itself
//! may be opened. Never writes into the database's folder.
//!
//! The sled risk it answers (see `store.rs` for the rest):
//! - Recovery that destroys the evidence: sled recovers a damaged log by
//!   truncating it at the damage, and that truncation also zeroes every byte of
//!   the log from the damage to its end, in place, before anything can refuse
//!   the database (one flipped byte cost 316,731 bytes of audit log in a trial).
//!   So an existing database is never opened first: it is copied (under sled's
//!   own lock, so no writer moves it meanwhile), the copy is opened and checked,
//!   and only a copy that lost no flushed write lets the database itself be
//!   opened. A damaged one is refused byte for byte as it was, the error naming
//!   the first byte sled's recovery changed. Read-only commands (`audit verify`)
//!   work on such a copy only (`StateStore::open_copy`). Recovery that drops
//!   only the torn tail of an unflushed write (a crash mid-write) loses nothing
//!   flushed and passes.

use std::fmt;
use std::path::{Path, PathBuf};

use super::layout::SLED_LOG_FILE;

/// Why the database could not be copied; `error.rs` names the database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    /// Another process holds sled's lock (past the wait for a release).
    #[error("its lock is held by another process")]
    Locked,
    #[error("copying {} failed: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// sled's page cache for the check of a copy at `open`: it reads little.
pub(crate) const PREFLIGHT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A database whose recovery drops flushed writes: where its log is damaged,
/// when the recovery changed bytes that were there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The state database.
    pub path: PathBuf,
    pub at: Option<DamageAt>,
    /// What the check found (which flushed write is missing).
    pub detail: String,
}

/// The first byte sled's recovery changed, and how much it would discard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamageAt {
    /// The file inside the database folder (sled's log is `db`).
    pub file: String,
    pub offset: u64,
    /// Bytes from `offset` to the end of the file as it was.
    pub discarded_bytes: u64,
}

impl Damage {
    /// Compares the database with its recovered copy to find the first byte
    /// sled's recovery changed.
    pub(crate) fn find(original: &Path, copy: &Path, detail: String) -> Damage {
        let mut first: Option<(String, u64, u64)> = None;
        if let Ok(entries) = std::fs::read_dir(original) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (Ok(before), Ok(after)) =
                    (std::fs::read(entry.path()), std::fs::read(copy.join(&name)))
                else {
                    continue;
                };
                // sled legitimately grows its log and rewrites snapshots; what
                // matters is a byte that was there and is no more.
                if name.starts_with("snap.") {
                    continue;
                }
                let changed = before
                    .iter()
                    .zip(after.iter().chain(std::iter::repeat(&0)))
                    .position(|(b, a)| b != a);
                if let Some(at) = changed {
                    let at = at as u64;
                    let len = before.len() as u64;
                    if first.as_ref().is_none_or(|(_, o, _)| at < *o) {
                        first = Some((name, at, len - at));
                    }
                }
            }
        }
        Damage {
            path: original.to_owned(),
            at: first.map(|(file, offset, discarded_bytes)| DamageAt {
                file,
                offset,
                discarded_bytes,
            }),
            detail,
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(
                f,
                "{}; its log `{}` is damaged at byte {} (opening it would make the storage engine discard the {} bytes from there to the end); it was left exactly as it is",
                self.detail, at.file, at.offset, at.discarded_bytes
            ),
            None => write!(f, "{}; it was left exactly as it is", self.detail),
        }
    }
}

/// How long a held lock may take to be released before the database is in use.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Copies the database folder into a private temporary folder (under `TMPDIR`),
/// holding the database's lock meanwhile so that no writer tears the copy.
pub(crate) fn copy_database(path: &Path) -> Result<tempfile::TempDir, CopyError> {
    let log = path.join(SLED_LOG_FILE);
    let locked = std::fs::OpenOptions::new()
        .read(true)
        .open(&log)
        .map_err(|e| copy_error(&log, e))?;
    // sled takes an exclusive `flock` on its log: the same lock, from outside.
    // A database just closed (a restart in this process, a holder that is
    // exiting) keeps it a moment longer: sled's background writer threads hold
    // the log open until their last write is done. So a held lock is polled for
    // a short while before the database is called in use.
    let deadline = std::time::Instant::now() + LOCK_RELEASE_WAIT;
    loop {
        match locked.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL);
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(CopyError::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(copy_error(&log, e)),
        }
    }
    let copy = tempfile::Builder::new()
        .prefix("cdd-state-copy-")
        .tempdir()
        .map_err(|e| copy_error(&std::env::temp_dir(), e))?;
    copy_tree(path, copy.path()).map_err(|(file, e)| copy_error(&file, e))?;
    drop(locked);
    Ok(copy)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let entries = std::fs::read_dir(from).map_err(|e| (from.to_owned(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| (from.to_owned(), e))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| (source.clone(), e))?;
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(|e| (target.clone(), e))?;
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(|e| (source.clone(), e))?;
        }
    }
    Ok(())
}

fn copy_error(file: &Path, e: std::io::Error) -> CopyError {
    CopyError::Io {
        file: file.to_owned(),
        source: e,
    }
}
