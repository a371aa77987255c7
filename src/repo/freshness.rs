//! The fetch-freshness record (§5 outage rules): when the pinned branch was last
//! fetched, and when fetches started failing if none ever succeeded. It lives in
//! a small JSON file inside `checkout_dir`, so it survives restarts and every
//! command sharing the clone sees the same outage clock. The file holds one
//! record per source (redacted URL and branch), so a command pinned to another
//! branch of the same clone never resets the agent's clock. It owns the record
//! and the `repo_unreachable` → `repo_stale` decision; it never touches Git.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::UnknownReason;

/// File name of the record, inside `checkout_dir`.
pub const FRESHNESS_FILE: &str = "config-drift-detector-fetch.json";
/// Version 1 held a single source; version 2 one record per source.
const RECORD_VERSION: u32 = 2;

/// When the pinned branch was last fetched, and since when fetches fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    /// End of the last successful fetch of the pinned branch.
    pub last_success_ms: Option<i64>,
    /// The first failed fetch since the last success (or ever, with none).
    pub first_failure_ms: Option<i64>,
}

/// The file: every source's record, by redacted URL and branch.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    sources: BTreeMap<String, Freshness>,
}

/// Version 1 of the file, still read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    #[serde(rename = "version")]
    _version: u32,
    source: String,
    last_success_ms: Option<i64>,
    first_failure_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    #[error("{path}: cannot read the fetch record: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{path}: the fetch record is corrupt ({message}); delete it to restart the outage clock"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: cannot write the fetch record: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl Freshness {
    pub fn record_success(&mut self, now_ms: i64) {
        self.last_success_ms = Some(now_ms);
        self.first_failure_ms = None;
    }

    pub fn record_failure(&mut self, now_ms: i64) {
        if self.first_failure_ms.is_none() {
            self.first_failure_ms = Some(now_ms);
        }
    }

    /// The reason for a failed fetch at `now_ms`: `repo_stale` once the last
    /// success (or, with none, the first failure) is older than `max_staleness`.
    pub fn outage_reason(&self, now_ms: i64, max_staleness: Duration) -> UnknownReason {
        let Some(since) = self.last_success_ms.or(self.first_failure_ms) else {
            return UnknownReason::RepoUnreachable;
        };
        let limit = i64::try_from(max_staleness.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(since) > limit {
            UnknownReason::RepoStale
        } else {
            UnknownReason::RepoUnreachable
        }
    }
}

/// Reads the record of `source` (redacted URL and branch); a missing file, or
/// one without that source, is "never fetched".
pub fn load(checkout_dir: &Path, source: &str) -> Result<Freshness, FreshnessError> {
    let mut sources = load_file(checkout_dir)?;
    Ok(sources.remove(source).unwrap_or_default())
}

fn load_file(checkout_dir: &Path) -> Result<BTreeMap<String, Freshness>, FreshnessError> {
    let path = checkout_dir.join(FRESHNESS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(FreshnessError::Read { path, source }),
    };
    let corrupt = |message: String| FreshnessError::Corrupt {
        path: path.clone(),
        message,
    };
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let version = serde_json::from_str::<Versioned>(&text)
        .map_err(|e| corrupt(e.to_string()))?
        .version;
    match version {
        1 => {
            let old: FileV1 = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
            let record = Freshness {
                last_success_ms: old.last_success_ms,
                first_failure_ms: old.first_failure_ms,
            };
            Ok(BTreeMap::from([(old.source, record)]))
        }
        RECORD_VERSION => serde_json::from_str::<File>(&text)
            .map(|file| file.sources)
            .map_err(|e| corrupt(e.to_string())),
        other => Err(corrupt(format!(
            "version {other} is newer than the version {RECORD_VERSION} this binary writes"
        ))),
    }
}

/// Updates the record of `source`, keeping every other source's, through a
/// temporary file and a rename, so a reader (or a crash) never sees half a file.
/// Callers hold the clone's lock, so no other process writes in between.
pub fn save(
    checkout_dir: &Path,
    source: &str,
    freshness: &Freshness,
) -> Result<(), FreshnessError> {
    let path = checkout_dir.join(FRESHNESS_FILE);
    let tmp = checkout_dir.join(format!("{FRESHNESS_FILE}.tmp"));
    // A file this binary cannot read is not overwritten: it may be a newer
    // binary's, or evidence of the damage it reports.
    let mut sources = load_file(checkout_dir)?;
    sources.insert(source.to_owned(), *freshness);
    let file = File {
        version: RECORD_VERSION,
        sources,
    };
    let write = || -> io::Result<()> {
        let body = serde_json::to_vec(&file).map_err(io::Error::other)?;
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|source| FreshnessError::Write {
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(900);

    #[test]
    fn never_fetched_is_unreachable() {
        assert_eq!(
            Freshness::default().outage_reason(1_000, MAX),
            UnknownReason::RepoUnreachable
        );
    }

    #[test]
    fn outage_turns_stale_after_max_staleness_since_last_success() {
        let mut f = Freshness::default();
        f.record_success(1_000);
        f.record_failure(2_000);
        assert_eq!(
            f.outage_reason(1_000 + 900_000, MAX),
            UnknownReason::RepoUnreachable
        );
        assert_eq!(
            f.outage_reason(1_000 + 900_001, MAX),
            UnknownReason::RepoStale
        );
    }

    #[test]
    fn without_success_the_first_failure_starts_the_clock() {
        let mut f = Freshness::default();
        f.record_failure(5_000);
        f.record_failure(600_000);
        assert_eq!(f.first_failure_ms, Some(5_000));
        assert_eq!(
            f.outage_reason(905_000, MAX),
            UnknownReason::RepoUnreachable
        );
        assert_eq!(f.outage_reason(905_001, MAX), UnknownReason::RepoStale);
    }

    #[test]
    fn success_resets_the_failure_clock() {
        let mut f = Freshness::default();
        f.record_failure(0);
        f.record_success(10_000_000);
        assert_eq!(f.first_failure_ms, None);
        assert_eq!(
            f.outage_reason(10_000_001, MAX),
            UnknownReason::RepoUnreachable
        );
    }

    #[test]
    fn record_of_another_url_or_branch_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let f = Freshness {
            last_success_ms: Some(7),
            first_failure_ms: None,
        };
        save(dir.path(), "u main", &f).unwrap();
        assert_eq!(load(dir.path(), "u staging").unwrap(), Freshness::default());
        assert_eq!(load(dir.path(), "v main").unwrap(), Freshness::default());
    }

    #[test]
    fn another_source_never_resets_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let prod = Freshness {
            last_success_ms: Some(7),
            first_failure_ms: Some(9),
        };
        save(dir.path(), "u main", &prod).unwrap();
        let mut staging = Freshness::default();
        staging.record_failure(11);
        save(dir.path(), "u staging", &staging).unwrap();
        assert_eq!(load(dir.path(), "u main").unwrap(), prod);
        assert_eq!(load(dir.path(), "u staging").unwrap(), staging);
    }

    #[test]
    fn a_version_1_record_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FRESHNESS_FILE),
            br#"{"version":1,"source":"u main","last_success_ms":5,"first_failure_ms":null}"#,
        )
        .unwrap();
        assert_eq!(load(dir.path(), "u main").unwrap().last_success_ms, Some(5));
        fs::write(
            dir.path().join(FRESHNESS_FILE),
            br#"{"version":9,"sources":{}}"#,
        )
        .unwrap();
        let err = load(dir.path(), "u main").unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
    }

    #[test]
    fn record_round_trips_and_corruption_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), "u main").unwrap(), Freshness::default());
        let f = Freshness {
            last_success_ms: Some(7),
            first_failure_ms: Some(9),
        };
        save(dir.path(), "u main", &f).unwrap();
        assert_eq!(load(dir.path(), "u main").unwrap(), f);
        fs::write(dir.path().join(FRESHNESS_FILE), b"{not json").unwrap();
        let err = load(dir.path(), "u main").unwrap_err().to_string();
        assert!(err.contains(FRESHNESS_FILE), "{err}");
    }
}
