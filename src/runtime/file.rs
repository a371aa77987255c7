//! `file://` running configs: read a local JSON/YAML/TOML file, bounded by
//! `max_body_bytes`. The format comes from the extension; the content is not
//! parsed here, and the per-fetch deadline is applied by the caller.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{FetchFailure, RunningDoc};
use crate::canon::Format;
use crate::report::UnknownReason;

/// Reads the file on the blocking pool: one hop for metadata, open and read,
/// instead of one per `tokio::fs` call.
pub(super) async fn read(path: &Path, max_body_bytes: u64) -> Result<RunningDoc, FetchFailure> {
    let source = format!("file://{}", path.display());
    let Some(format) = Format::from_path(&path.to_string_lossy()) else {
        return Err(FetchFailure::new(
            UnknownReason::RuntimeBadResponse,
            format!("{source} has no .json, .yaml, .yml or .toml extension"),
        ));
    };
    let owned: PathBuf = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || read_bounded(&owned, max_body_bytes));
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Err(e.into_failure(&source, max_body_bytes)),
        Err(e) => {
            return Err(FetchFailure::new(
                UnknownReason::RuntimeUnreachable,
                format!("{source} could not be read: the reading task failed: {e}"),
            ));
        }
    };
    Ok(RunningDoc {
        bytes,
        format,
        loaded_at_ms: None,
    })
}

enum ReadError {
    Missing,
    NotAFile,
    TooLarge { len: Option<u64> },
    Io(io::Error),
}

impl ReadError {
    fn into_failure(self, source: &str, max: u64) -> FetchFailure {
        match self {
            ReadError::Missing => FetchFailure::new(
                UnknownReason::RuntimeUnreachable,
                format!("{source} does not exist"),
            ),
            ReadError::NotAFile => FetchFailure::new(
                UnknownReason::RuntimeBadResponse,
                format!("{source} is not a regular file"),
            ),
            ReadError::TooLarge { len: Some(len) } => FetchFailure::new(
                UnknownReason::RuntimeTooLarge,
                format!("{source} holds {len} bytes, above max_body_bytes = {max}"),
            ),
            ReadError::TooLarge { len: None } => FetchFailure::new(
                UnknownReason::RuntimeTooLarge,
                format!("{source} grew past max_body_bytes = {max} while being read"),
            ),
            ReadError::Io(e) => FetchFailure::new(
                UnknownReason::RuntimeUnreachable,
                format!("{source} cannot be read: {e}"),
            ),
        }
    }
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let io_err = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            ReadError::Missing
        } else {
            ReadError::Io(e)
        }
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    // A FIFO or device could block or never end; a directory has no content.
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            len: Some(meta.len()),
        });
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    // The file may grow between the metadata and the read: read one byte past
    // the limit to notice, never more.
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { len: None });
    }
    Ok(bytes)
}
