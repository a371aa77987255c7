//! The lock file that serialises every process reading or updating the shared
//! clone (§5): the agent, a `check` started beside it, a second agent by mistake.
//! It owns only the advisory lock; what the lock protects is the caller's business.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// File name of the lock, inside `checkout_dir`.
pub const LOCK_FILE: &str = "config-drift-detector.lock";

/// An exclusive hold on the clone; released when dropped (or when the process
/// dies: the kernel drops `flock`-style locks with the last descriptor, so a crash
/// never leaves the clone locked).
#[derive(Debug)]
pub struct RepoLock {
    file: File,
    path: PathBuf,
}

impl RepoLock {
    /// Waits for the lock: a `check` beside a running agent queues behind its
    /// fetch instead of racing it.
    pub fn acquire(checkout_dir: &Path) -> io::Result<RepoLock> {
        let (file, path) = open(checkout_dir)?;
        file.lock()?;
        Ok(RepoLock { file, path })
    }

    /// Takes the lock only if nobody holds it.
    pub fn try_acquire(checkout_dir: &Path) -> io::Result<Option<RepoLock>> {
        let (file, path) = open(checkout_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RepoLock { file, path })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway; unlocking first just
        // makes the release independent of when the `File` is finally closed.
        let _ = self.file.unlock();
    }
}

fn open(checkout_dir: &Path) -> io::Result<(File, PathBuf)> {
    let path = checkout_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    Ok((file, path))
}
