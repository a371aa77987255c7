//! The state database's on-disk layout: its schema version, its trees and
//! keys, and the files in its folder that are not sled's records.
//!
//! Names only; must not read or write anything (that is `store.rs`, and
//! `preflight.rs` for the copy). A change here that an older binary would
//! misread bumps `SCHEMA_VERSION`.

/// The layout of the database as a whole (trees and keys).
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const BOTS_TREE: &str = "bots";
pub(crate) const META_TREE: &str = "meta";
pub(crate) const AUDIT_TREE: &str = "audit";
pub(crate) const PAUSE_KEY: &str = "pause";
/// Where the audit chain starts once retention has removed its beginning.
pub(crate) const AUDIT_ANCHOR_KEY: &str = "audit_anchor";
pub(crate) const SCHEMA_KEY: &str = "schema_version";
pub(crate) const SECRET_KEY: &str = "secret_key";
pub(crate) const GENERATION_KEY: &str = "generation";
/// The last generation known flushed, outside sled's files (see `store.rs`).
pub(crate) const GENERATION_FILE: &str = "cdd-generation";
/// A file sled creates in every database directory; its presence means the
/// database existed before this open.
pub(crate) const SLED_CONF_FILE: &str = "conf";
/// sled's log, which it also locks.
pub(crate) const SLED_LOG_FILE: &str = "db";
