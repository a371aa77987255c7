//! The agent's state database (§9): one record per bot slug in a sled database,
//! plus the per-installation redaction key and the database's schema version.
//!
//! Owns what is stored where (`layout.rs` names the trees and keys), the open
//! (after `preflight.rs`'s check of a copy), the atomic, flushed writes and the
//! generation file; `error.rs` words its failures. Must
//! not decide anything about latching (that is `episode.rs` and `ack.rs`, over
//! `record.rs`'s types), nor the envelope's bytes (`envelope.rs`) or the audit
//! chain's rules (`audit.rs`), nor emit telemetry; a corrupt or unknown record
//! is an error naming the database and the record, never a silent reset.
//!
//! sled 0.34 is beta ("if reliability is your primary constraint, use SQLite").
//! The risks and what this module does about them (silent damage to a value is
//! `envelope.rs`'s, recovery that destroys the evidence `preflight.rs`'s):
//! - Format drift between versions: besides each envelope's `v`, the `meta`
//!   tree's `schema_version` is checked on open; a newer version is refused,
//!   never misread or overwritten. A damaged value is refused naming its record
//!   (the bot, the meta key, the audit entry).
//! - Lost writes on a crash: one check's updates go in one atomic batch and the
//!   database is flushed (fsync) before `write_check` returns, so the caller emits
//!   telemetry only for state that the next start remembers. Tests kill a writer
//!   with SIGKILL mid-loop and reopen.
//! - Recovery that drops too much: sled recovers a damaged log by truncating it
//!   at the damage, silently rolling back to an older state (seen in a test). So
//!   every flushed write bumps a `generation` counter in the `meta` tree and, once
//!   flushed, copies it to a small file beside sled's (`cdd-generation`, written
//!   by rename). At open, a database older than that file is refused as corrupt,
//!   and so is one that existed but lost its `meta` records. That check runs on
//!   `preflight.rs`'s copy first, so a refused database is left as it was.
//! - Panics inside the engine on damaged files are caught at open and reported as
//!   corruption.
//!
//! Besides the `bots` tree, the `meta` tree holds the pause (§9) and the `audit`
//! tree the admin audit chain (§12; entries keyed by their number, big-endian,
//! in the same envelope, whose checksum doubles as the entry's chain hash: see
//! `audit.rs`). An admin action's state change and its audit entry are written in
//! one transaction and flushed together. A damaged audit entry is not a startup
//! error: the chain goes on from its stored bytes, and `audit verify` names it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::de::DeserializeOwned;
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::audit::{self, Anchor, AuditDraft, AuditEntry, Head, RawEntry, Verdict};
use super::envelope::{Fault, open_envelope, seal, seal_bytes, unchecked_data, unseal};
use super::error::{copy_refused, corrupt_engine, open_error, refusal};
use super::layout::{
    AUDIT_ANCHOR_KEY, AUDIT_TREE, BOTS_TREE, GENERATION_FILE, GENERATION_KEY, META_TREE, PAUSE_KEY,
    SCHEMA_KEY, SCHEMA_VERSION, SECRET_KEY, SLED_CONF_FILE,
};
use super::pause::Pause;
use super::preflight::{self, Damage, PREFLIGHT_CACHE_BYTES};
use super::record::BotState;
use crate::canon::secret::SecretKey;

use super::error::{Record, StateError};

/// The open state database. Holds sled's exclusive lock until dropped.
pub struct StateStore {
    path: PathBuf,
    db: sled::Db,
    bots: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    /// The generation of the last flushed write; the lock also serialises writers.
    generation: Mutex<u64>,
    /// The audit chain's end, read at open and moved by each append (under the
    /// generation lock).
    audit_head: Mutex<Head>,
    /// Set on a copy (`open_copy`) whose recovery dropped flushed writes.
    damage: Option<Damage>,
    /// The private copy sled works on (`open_copy`); removed when the store is
    /// dropped. Last, so that sled's handles close before the folder goes.
    copy: Option<tempfile::TempDir>,
}

/// What an admin write does to the stored pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PauseChange {
    Keep,
    Set(Pause),
    Remove,
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens (or creates) the database at `path`, its page cache bounded to
    /// `cache_capacity_bytes`. Checks the database's schema version; records are
    /// checked as they are read (`load_all` at startup reads them all). An
    /// existing database is first checked on a copy (see `preflight.rs`): a
    /// damaged one is refused and left exactly as it was.
    pub fn open(path: &Path, cache_capacity_bytes: u64) -> Result<StateStore, StateError> {
        if path.join(SLED_CONF_FILE).exists() {
            let copy = Self::open_copy(path, cache_capacity_bytes.min(PREFLIGHT_CACHE_BYTES))?;
            if let Some(damage) = copy.damage() {
                return Err(match damage.at {
                    Some(_) => refusal(damage.clone()),
                    None => StateError::Corrupt {
                        path: path.to_owned(),
                        detail: damage.detail.clone(),
                    },
                });
            }
        }
        Self::open_at(path, path, cache_capacity_bytes, None)
    }

    /// The database at `path` as a private copy, for commands that only read
    /// (`audit verify`): the database itself is never opened, so nothing of it
    /// can change. A copy whose recovery dropped flushed writes still opens;
    /// `damage()` then says where the log is damaged. Refused like `open` while
    /// an agent holds the database (its lock), so the copy is never torn.
    pub fn open_copy(path: &Path, cache_capacity_bytes: u64) -> Result<StateStore, StateError> {
        if !path.join(SLED_CONF_FILE).exists() {
            return Err(StateError::Corrupt {
                path: path.to_owned(),
                detail: format!("it holds no sled database (no `{SLED_CONF_FILE}` file)"),
            });
        }
        let copy = preflight::copy_database(path).map_err(|e| copy_refused(path, e))?;
        let engine_dir = copy.path().to_owned();
        let mut store = Self::open_at(&engine_dir, path, cache_capacity_bytes, Some(copy))?;
        if let Err(e) = store.check_generation() {
            let StateError::Corrupt { detail, .. } = e else {
                return Err(e);
            };
            store.damage = Some(Damage::find(path, store.engine_dir(), detail));
        }
        Ok(store)
    }

    /// Where the log of a database opened with `open_copy` is damaged, if sled's
    /// recovery of the copy dropped writes that had been flushed.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// Opens sled on `engine_dir` (the database, or a copy of it) for the
    /// database at `path`, which every error names.
    fn open_at(
        engine_dir: &Path,
        path: &Path,
        cache_capacity_bytes: u64,
        copy: Option<tempfile::TempDir>,
    ) -> Result<StateStore, StateError> {
        let existed = engine_dir.join(SLED_CONF_FILE).exists();
        let config = sled::Config::new()
            .path(engine_dir)
            .cache_capacity(cache_capacity_bytes);
        let db = match catch_unwind(AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_error(path, e)),
            Err(_) => {
                return Err(StateError::Corrupt {
                    path: path.to_owned(),
                    detail: "the storage engine failed while reading it".into(),
                });
            }
        };
        let tree = |name: &str| {
            db.open_tree(name).map_err(|e| match e {
                sled::Error::Corruption { .. } => corrupt_engine(path),
                source => StateError::Open {
                    path: path.to_owned(),
                    source,
                },
            })
        };
        let store = StateStore {
            path: path.to_owned(),
            bots: tree(BOTS_TREE)?,
            meta: tree(META_TREE)?,
            audit: tree(AUDIT_TREE)?,
            db,
            generation: Mutex::new(0),
            audit_head: Mutex::new(Head::empty()),
            damage: None,
            copy,
        };
        if let Err(e) = store.check_schema(existed) {
            // On a copy, a lost schema record is what a recovery that dropped
            // the whole log leaves: say where.
            return Err(match (e, &store.copy) {
                (StateError::Corrupt { detail, .. }, Some(copy)) => {
                    let damage = Damage::find(path, copy.path(), detail.clone());
                    match damage.at {
                        Some(_) => refusal(damage),
                        None => StateError::Corrupt {
                            path: path.to_owned(),
                            detail,
                        },
                    }
                }
                (e, _) => e,
            });
        }
        if store.copy.is_none() {
            store.check_generation()?;
        }
        store.load_audit_head()?;
        Ok(store)
    }

    /// The folder sled works in: the database's own, or the copy's.
    fn engine_dir(&self) -> &Path {
        self.copy.as_ref().map_or(&self.path, |c| c.path())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every bot's state, by slug. Fails on the first damaged record.
    pub fn load_all(&self) -> Result<BTreeMap<String, BotState>, StateError> {
        let mut all = BTreeMap::new();
        for entry in self.bots.iter() {
            let (key, value) = entry.map_err(|e| self.read_error(e))?;
            let slug = match std::str::from_utf8(&key) {
                Ok(slug) => slug.to_owned(),
                Err(_) => {
                    return Err(StateError::CorruptRecord {
                        path: self.path.clone(),
                        record: Record::Bot(String::from_utf8_lossy(&key).into_owned()),
                        detail: "its key is not UTF-8".into(),
                    });
                }
            };
            let state = self.unseal(&value, Record::Bot(slug.clone()))?;
            all.insert(slug, state);
        }
        Ok(all)
    }

    /// Stores one check's results atomically (all or none after a crash), then
    /// flushes: the contract emits a check's telemetry only after its state is
    /// on disk.
    pub fn write_check(
        &self,
        updates: &[(String, BotState)],
        deletes: &[String],
    ) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for (slug, state) in updates {
            let sealed = seal(state).map_err(|source| StateError::Encode {
                path: self.path.clone(),
                record: Record::Bot(slug.clone()),
                source,
            })?;
            batch.insert(slug.as_bytes(), sealed);
        }
        for slug in deletes {
            batch.remove(slug.as_bytes());
        }
        let mut generation = self.lock_generation();
        self.bots
            .apply_batch(batch)
            .map_err(|e| self.write_error(e))?;
        self.commit(&mut generation)
    }

    /// An admin action (§9, §12), atomically: bot states, the pause, and the
    /// action's audit entry chained to the last one; then flushed. Returns the
    /// entry as stored.
    pub fn write_admin(
        &self,
        updates: &[(String, BotState)],
        pause: &PauseChange,
        draft: Option<AuditDraft>,
    ) -> Result<Option<AuditEntry>, StateError> {
        let mut sealed_bots = Vec::with_capacity(updates.len());
        for (slug, state) in updates {
            let sealed = seal(state).map_err(|source| StateError::Encode {
                path: self.path.clone(),
                record: Record::Bot(slug.clone()),
                source,
            })?;
            sealed_bots.push((slug.as_bytes(), sealed));
        }
        let sealed_pause = match pause {
            PauseChange::Set(p) => Some(seal(p).map_err(|source| StateError::Encode {
                path: self.path.clone(),
                record: Record::Meta(PAUSE_KEY),
                source,
            })?),
            _ => None,
        };
        let mut generation = self.lock_generation();
        let mut head = self.lock_audit_head();
        let entry = draft.map(|d| head.next(d));
        let entry_data = match &entry {
            Some(e) => Some(serde_json::to_vec(e).map_err(|source| StateError::Encode {
                path: self.path.clone(),
                record: Record::Audit(e.seq),
                source,
            })?),
            None => None,
        };
        let result: Result<(), TransactionError<()>> = (&self.bots, &self.meta, &self.audit)
            .transaction(|(bots, meta, audit_tree)| {
                for (key, value) in &sealed_bots {
                    bots.insert(*key, value.as_slice())?;
                }
                match (pause, &sealed_pause) {
                    (PauseChange::Set(_), Some(v)) => {
                        meta.insert(PAUSE_KEY, v.as_slice())?;
                    }
                    (PauseChange::Remove, _) => {
                        meta.remove(PAUSE_KEY)?;
                    }
                    _ => {}
                }
                if let (Some(e), Some(data)) = (&entry, &entry_data) {
                    audit_tree.insert(&audit::key(e.seq), seal_bytes(data))?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        self.transacted(result, "an admin write")?;
        self.commit(&mut generation)?;
        if let (Some(e), Some(data)) = (&entry, &entry_data) {
            *head = Head {
                seq: e.seq,
                hash: audit::hash(data),
            };
        }
        Ok(entry)
    }

    /// The stored pause, if any.
    pub fn pause(&self) -> Result<Option<Pause>, StateError> {
        match self.meta.get(PAUSE_KEY).map_err(|e| self.read_error(e))? {
            Some(value) => self.unseal(&value, Record::Meta(PAUSE_KEY)).map(Some),
            None => Ok(None),
        }
    }

    /// The audit chain's end.
    pub fn audit_head(&self) -> Head {
        self.lock_audit_head().clone()
    }

    /// Every stored audit entry, raw, in chain order (for `audit::verify`).
    pub fn audit_raw(&self) -> Result<Vec<RawEntry>, StateError> {
        self.audit_entries().collect()
    }

    /// The stored audit entries, raw, in chain order, read as they are asked for.
    fn audit_entries(&self) -> impl Iterator<Item = Result<RawEntry, StateError>> + '_ {
        self.audit.iter().map(|item| {
            let (key, value) = item.map_err(|e| self.read_error(e))?;
            Ok(RawEntry {
                key: key.to_vec(),
                value: value.to_vec(),
            })
        })
    }

    /// The anchor left by retention, if it has removed anything.
    pub fn audit_anchor(&self) -> Result<Option<Anchor>, StateError> {
        match self
            .meta
            .get(AUDIT_ANCHOR_KEY)
            .map_err(|e| self.read_error(e))?
        {
            Some(value) => self
                .unseal(&value, Record::Meta(AUDIT_ANCHOR_KEY))
                .map(Some),
            None => Ok(None),
        }
    }

    /// Walks the stored audit chain from its anchor (`audit verify`).
    pub fn verify_audit(&self) -> Result<Verdict, StateError> {
        let anchor = self.audit_anchor()?;
        Ok(audit::verify(anchor.as_ref(), self.audit_raw()?))
    }

    /// Removes the audit entries written before `cutoff_ms` (those that verify,
    /// §10 `audit_retention_days`) and stores the anchor the rest verifies from,
    /// in one flushed transaction. The new anchor, or `None` when nothing went.
    pub fn prune_audit(&self, cutoff_ms: i64, now_ms: i64) -> Result<Option<Anchor>, StateError> {
        // Both held (in `write_admin`'s order) so that no entry is appended
        // while the prefix is chosen.
        let mut generation = self.lock_generation();
        let _head = self.lock_audit_head();
        let current = self.audit_anchor()?;
        // Read lazily: the walk stops at the first entry to keep, so an hourly
        // prune reads what it removes, not the whole log.
        let mut failed = None;
        let entries = self
            .audit_entries()
            .map_while(|entry| entry.map_err(|e| failed = Some(e)).ok());
        let point = audit::prune_point(current.as_ref(), entries, cutoff_ms, now_ms);
        if let Some(e) = failed {
            return Err(e);
        }
        let Some(anchor) = point else {
            return Ok(None);
        };
        let sealed = seal(&anchor).map_err(|source| StateError::Encode {
            path: self.path.clone(),
            record: Record::Meta(AUDIT_ANCHOR_KEY),
            source,
        })?;
        let from = current.as_ref().map_or(1, |a| a.seq + 1);
        let result: Result<(), TransactionError<()>> =
            (&self.meta, &self.audit).transaction(|(meta, audit_tree)| {
                for seq in from..=anchor.seq {
                    audit_tree.remove(&audit::key(seq))?;
                }
                meta.insert(AUDIT_ANCHOR_KEY, sealed.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        self.transacted(result, "an audit prune")?;
        self.commit(&mut generation)?;
        Ok(Some(anchor))
    }

    /// A sled transaction's outcome as ours. Our closures never abort, so an
    /// abort is a bug in sled, reported as a failed write of `what`.
    fn transacted(
        &self,
        result: Result<(), TransactionError<()>>,
        what: &str,
    ) -> Result<(), StateError> {
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(self.write_error(e)),
            Err(TransactionError::Abort(())) => {
                Err(self.write_error(sled::Error::ReportableBug(format!("{what} aborted"))))
            }
        }
    }

    /// The audit entries at or after `since_ms`, each as its stored JSON (whose
    /// SHA-256 is the next entry's `prev`). Damaged entries are left out here;
    /// `audit verify` names them.
    pub fn audit_lines(&self, since_ms: i64) -> Result<Vec<String>, StateError> {
        let mut lines = Vec::new();
        for raw in self.audit_raw()? {
            let Ok(data) = open_envelope(&raw.value) else {
                continue;
            };
            let Ok(entry) = serde_json::from_str::<AuditEntry>(data) else {
                continue;
            };
            if entry.draft.at_ms >= since_ms {
                lines.push(data.to_owned());
            }
        }
        Ok(lines)
    }

    fn lock_audit_head(&self) -> std::sync::MutexGuard<'_, Head> {
        self.audit_head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The chain continues from the last stored entry's bytes, damaged or not,
    /// so damage stays detectable rather than being papered over.
    fn load_audit_head(&self) -> Result<(), StateError> {
        let Some((key, value)) = self.audit.last().map_err(|e| self.read_error(e))? else {
            // Everything pruned: the chain goes on from the anchor.
            let anchor = self.audit_anchor()?;
            *self.lock_audit_head() = audit::start(anchor.as_ref());
            return Ok(());
        };
        let seq = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StateError::CorruptRecord {
                path: self.path.clone(),
                record: Record::Meta(AUDIT_TREE),
                detail: "the last audit key is not an entry number".into(),
            })?;
        let hash = match unchecked_data(&value) {
            Some(data) => audit::hash(data.as_bytes()),
            None => audit::hash(&value),
        };
        *self.lock_audit_head() = Head { seq, hash };
        Ok(())
    }

    /// Bumps the generation, flushes sled (fsync) and then records the flushed
    /// generation outside it. Callers hold the generation lock across their
    /// write and this.
    fn commit(&self, generation: &mut u64) -> Result<(), StateError> {
        let next = *generation + 1;
        let sealed = seal(&next).map_err(|source| StateError::Encode {
            path: self.path.clone(),
            record: Record::Meta(GENERATION_KEY),
            source,
        })?;
        self.meta
            .insert(GENERATION_KEY, sealed.as_slice())
            .map_err(|e| self.write_error(e))?;
        self.db.flush().map_err(|e| self.write_error(e))?;
        *generation = next;
        self.write_generation_file(&sealed)
    }

    fn lock_generation(&self) -> std::sync::MutexGuard<'_, u64> {
        // The counter stays valid if a writer panicked: it only moves after a flush.
        self.generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn generation_file(&self) -> PathBuf {
        self.engine_dir().join(GENERATION_FILE)
    }

    fn write_generation_file(&self, sealed: &[u8]) -> Result<(), StateError> {
        let file = self.generation_file();
        let fail = |e: std::io::Error| StateError::GenerationFile {
            path: self.path.clone(),
            file: file.clone(),
            detail: format!("writing it failed ({e})"),
        };
        let tmp = self.engine_dir().join(format!("{GENERATION_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        f.write_all(sealed).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &file).map_err(fail)?;
        // The rename itself is durable only once the directory is synced.
        std::fs::File::open(self.engine_dir())
            .and_then(|d| d.sync_all())
            .map_err(fail)
    }

    /// Refuses a database that sled rolled back past a flushed write.
    fn check_generation(&self) -> Result<(), StateError> {
        let stored: u64 = match self
            .meta
            .get(GENERATION_KEY)
            .map_err(|e| self.read_error(e))?
        {
            Some(value) => self.unseal(&value, Record::Meta(GENERATION_KEY))?,
            None => 0,
        };
        let shown = self.path.join(GENERATION_FILE);
        let flushed: u64 = match std::fs::read(self.generation_file()) {
            Ok(bytes) => unseal(&bytes).map_err(|fault| StateError::GenerationFile {
                path: self.path.clone(),
                file: shown.clone(),
                detail: match fault {
                    Fault::Corrupt(detail) => detail,
                    Fault::Future(v) => format!("it has version {v}, newer than this binary"),
                },
            })?,
            // Only a crash before the first write leaves it absent; nothing to compare.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(StateError::GenerationFile {
                    path: self.path.clone(),
                    file: shown,
                    detail: e.to_string(),
                });
            }
        };
        if stored < flushed {
            return Err(StateError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "it holds write {stored} but write {flushed} had been flushed: the storage engine dropped damaged data"
                ),
            });
        }
        *self.lock_generation() = stored;
        Ok(())
    }

    /// The per-installation redaction key: created (and flushed) on first use,
    /// the same one after every restart.
    pub fn secret_key(&self) -> Result<SecretKey, StateError> {
        let record = Record::Meta(SECRET_KEY);
        // Two rounds at most: a lost compare-and-swap means the key now exists.
        for _ in 0..2 {
            if let Some(value) = self.meta.get(SECRET_KEY).map_err(|e| self.read_error(e))? {
                let hex_key: String = self.unseal(&value, record.clone())?;
                let bytes: Option<[u8; 32]> = hex::decode(&hex_key)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                return bytes
                    .map(SecretKey::from_bytes)
                    .ok_or_else(|| StateError::CorruptRecord {
                        path: self.path.clone(),
                        record: record.clone(),
                        detail: "it does not hold 32 bytes of hex".into(),
                    });
            }
            let key = SecretKey::random();
            let sealed =
                seal(&hex::encode(key.to_bytes())).map_err(|source| StateError::Encode {
                    path: self.path.clone(),
                    record: record.clone(),
                    source,
                })?;
            let mut generation = self.lock_generation();
            let swapped = self
                .meta
                .compare_and_swap(SECRET_KEY, None::<&[u8]>, Some(sealed))
                .map_err(|e| self.write_error(e))?;
            if swapped.is_ok() {
                // Secrets redacted with a key the next start forgets would look
                // like changed values: the key is on disk before anyone uses it.
                self.commit(&mut generation)?;
                return Ok(key);
            }
        }
        Err(StateError::CorruptRecord {
            path: self.path.clone(),
            record,
            detail: "it changed while being created".into(),
        })
    }

    fn check_schema(&self, existed: bool) -> Result<(), StateError> {
        let record = Record::Meta(SCHEMA_KEY);
        match self.meta.get(SCHEMA_KEY).map_err(|e| self.read_error(e))? {
            Some(value) => {
                let found: u64 = self.unseal(&value, record)?;
                if found > SCHEMA_VERSION {
                    return Err(StateError::FutureSchema {
                        path: self.path.clone(),
                        found,
                    });
                }
                Ok(())
            }
            // sled recovers a damaged log by dropping its tail; a database that
            // had been created but lost its first record lost everything.
            None if existed => Err(StateError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "its `{SCHEMA_KEY}` record is missing (move the directory away to start afresh)"
                ),
            }),
            None => {
                let sealed = seal(&SCHEMA_VERSION).map_err(|source| StateError::Encode {
                    path: self.path.clone(),
                    record,
                    source,
                })?;
                let mut generation = self.lock_generation();
                self.meta
                    .insert(SCHEMA_KEY, sealed)
                    .map_err(|e| self.write_error(e))?;
                self.commit(&mut generation)
            }
        }
    }

    fn unseal<T: DeserializeOwned>(&self, bytes: &[u8], record: Record) -> Result<T, StateError> {
        unseal(bytes).map_err(|fault| match fault {
            Fault::Future(found) => StateError::FutureRecord {
                path: self.path.clone(),
                record,
                found,
            },
            Fault::Corrupt(detail) => StateError::CorruptRecord {
                path: self.path.clone(),
                record,
                detail,
            },
        })
    }

    fn read_error(&self, e: sled::Error) -> StateError {
        match e {
            sled::Error::Corruption { .. } => corrupt_engine(&self.path),
            source => StateError::Read {
                path: self.path.clone(),
                source,
            },
        }
    }

    fn write_error(&self, source: sled::Error) -> StateError {
        StateError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: crate::latch::AuditAction) -> AuditDraft {
        AuditDraft {
            at_ms: 1000,
            action,
            actor: "alice".into(),
            role: Some("admin".into()),
            source: "127.0.0.1".into(),
            bot_slug: None,
            ack_id: None,
            reason: Some("window".into()),
            detail: None,
        }
    }

    #[test]
    fn admin_writes_chain_audit_entries_and_keep_the_pause_across_reopens() {
        use crate::latch::{AuditAction, Verdict};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let pause = Pause {
            reason: "window".into(),
            by: "alice".into(),
            since_ms: 1000,
            until_ms: Some(5000),
        };
        {
            let store = StateStore::open(&path, 1 << 20).unwrap();
            let state = BotState {
                last_seen_ms: 3,
                ..BotState::default()
            };
            let first = store
                .write_admin(
                    &[("a".into(), state.clone())],
                    &PauseChange::Set(pause.clone()),
                    Some(draft(AuditAction::Pause)),
                )
                .unwrap()
                .unwrap();
            assert_eq!(first.seq, 1);
            assert_eq!(first.prev, audit::GENESIS);
            assert_eq!(store.load_all().unwrap()["a"], state);
        }
        let store = StateStore::open(&path, 1 << 20).unwrap();
        assert_eq!(store.pause().unwrap(), Some(pause));
        let head = store.audit_head();
        assert_eq!(head.seq, 1);
        let second = store
            .write_admin(&[], &PauseChange::Remove, Some(draft(AuditAction::Resume)))
            .unwrap()
            .unwrap();
        assert_eq!(second.prev, head.hash, "the chain goes on after a reopen");
        assert_eq!(store.pause().unwrap(), None);
        assert!(matches!(
            store.verify_audit().unwrap(),
            Verdict::Intact { entries: 2, .. }
        ));
        assert_eq!(store.audit_lines(0).unwrap().len(), 2);
        assert_eq!(store.audit_lines(1001).unwrap().len(), 0);
    }

    #[test]
    fn pruned_audit_entries_leave_an_anchor_the_chain_goes_on_from_across_reopens() {
        use crate::latch::{AuditAction, Verdict};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let at = |t: i64| AuditDraft {
            at_ms: t,
            ..draft(AuditAction::Check)
        };
        {
            let store = StateStore::open(&path, 1 << 20).unwrap();
            for t in [100, 200, 300] {
                store
                    .write_admin(&[], &PauseChange::Keep, Some(at(t)))
                    .unwrap();
            }
            assert_eq!(
                store.prune_audit(50, 400).unwrap(),
                None,
                "nothing that old"
            );
            let anchor = store.prune_audit(250, 400).unwrap().expect("two go");
            assert_eq!((anchor.seq, anchor.at_ms), (2, 200));
            assert_eq!(store.audit_lines(0).unwrap().len(), 1);
        }
        let store = StateStore::open(&path, 1 << 20).unwrap();
        assert_eq!(store.audit_anchor().unwrap().map(|a| a.seq), Some(2));
        let Verdict::Intact {
            entries,
            pruned_through,
            ..
        } = store.verify_audit().unwrap()
        else {
            panic!("intact expected");
        };
        assert_eq!((entries, pruned_through), (1, Some(2)));
        // Everything goes: the head is the anchor, and the chain goes on from it.
        let all = store
            .prune_audit(1_000, 1_000)
            .unwrap()
            .expect("the last goes");
        assert_eq!(all.seq, 3);
        drop(store);
        let store = StateStore::open(&path, 1 << 20).unwrap();
        assert_eq!(store.audit_head().seq, 3);
        let next = store
            .write_admin(&[], &PauseChange::Keep, Some(at(2_000)))
            .unwrap()
            .unwrap();
        assert_eq!((next.seq, next.prev.as_str()), (4, all.hash.as_str()));
        assert!(matches!(
            store.verify_audit().unwrap(),
            Verdict::Intact {
                entries: 1,
                pruned_through: Some(3),
                ..
            }
        ));
    }
}
