//! The state database's errors: each names the database, and the record when
//! one is at fault, so an operator knows what to restore.
//!
//! Owns `StateError`, `Record` and the translation of sled's, the copy's and
//! the preflight's failures into them. Must not decide when to fail (that is
//! `store.rs`).

use std::fmt;
use std::path::{Path, PathBuf};

use super::envelope::RECORD_VERSION;
use super::layout::SCHEMA_VERSION;
use super::preflight::{CopyError, Damage};

/// Which stored record an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Bot(String),
    Meta(&'static str),
    Audit(u64),
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Bot(slug) => write!(f, "the record of bot `{slug}`"),
            Record::Meta(key) => write!(f, "the `{key}` record"),
            Record::Audit(seq) => write!(f, "audit entry {seq}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {} is in use by another process", path.display())]
    Locked { path: PathBuf },
    #[error("state database {} cannot be opened: {source}", path.display())]
    Open { path: PathBuf, source: sled::Error },
    #[error("state database {} is corrupt: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("state database {} cannot be checked before it is opened: copying {} failed: {source}", path.display(), file.display())]
    Copy {
        path: PathBuf,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {} has schema version {found}, newer than the {SCHEMA_VERSION} this binary understands; upgrade the agent", path.display())]
    FutureSchema { path: PathBuf, found: u64 },
    #[error("state database {}: {record} is corrupt: {detail}", path.display())]
    CorruptRecord {
        path: PathBuf,
        record: Record,
        detail: String,
    },
    #[error("state database {}: {record} has version {found}, newer than the {RECORD_VERSION} this binary understands; upgrade the agent", path.display())]
    FutureRecord {
        path: PathBuf,
        record: Record,
        found: u64,
    },
    #[error("state database {}: reading failed: {source}", path.display())]
    Read { path: PathBuf, source: sled::Error },
    #[error("state database {}: writing failed: {source}", path.display())]
    Write { path: PathBuf, source: sled::Error },
    #[error("state database {}: the file {} is unreadable: {detail}", path.display(), file.display())]
    GenerationFile {
        path: PathBuf,
        file: PathBuf,
        detail: String,
    },
    #[error("state database {}: {record} cannot be encoded: {source}", path.display())]
    Encode {
        path: PathBuf,
        record: Record,
        source: serde_json::Error,
    },
}

pub(crate) fn open_error(path: &Path, e: sled::Error) -> StateError {
    match e {
        // sled 0.34 reports a held lock only as this io error text (config.rs,
        // `try_lock`); the version is pinned and a test holds us to it.
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StateError::Locked {
                path: path.to_owned(),
            }
        }
        sled::Error::Corruption { .. } => corrupt_engine(path),
        source => StateError::Open {
            path: path.to_owned(),
            source,
        },
    }
}

/// A database whose copy lost flushed writes, refused.
pub(crate) fn refusal(damage: Damage) -> StateError {
    StateError::Corrupt {
        path: damage.path.clone(),
        detail: format!(
            "{damage}; restore it from a backup, or examine a copy with `audit verify`"
        ),
    }
}

pub(crate) fn copy_refused(path: &Path, e: CopyError) -> StateError {
    match e {
        CopyError::Locked => StateError::Locked {
            path: path.to_owned(),
        },
        CopyError::Io { file, source } => StateError::Copy {
            path: path.to_owned(),
            file,
            source,
        },
    }
}

pub(crate) fn corrupt_engine(path: &Path) -> StateError {
    StateError::Corrupt {
        path: path.to_owned(),
        detail: "the storage engine found damaged data".into(),
    }
}
