//! The agent's memory between checks (§9): each bot's drift episode, its latched
//! fields with `since_ts_ms`, its last report and its acks, the detector's pause,
//! and the admin audit chain, kept in a sled database.
//!
//! Who owns what, from the stored shapes up (each file imports only those
//! before it in this list):
//! - `record`: the stored per-bot record (`BotState` and what it holds).
//! - `episode`, `ack`: pure rule books over that record (prior state, an input
//!   and the time give the new state); neither uses the other.
//! - `pause`: the detector's pause (pure).
//! - `envelope`: the checksummed, versioned bytes every stored value is kept in.
//! - `audit`: the audit chain's rules (pure), over entries in that envelope.
//! - `layout`: the database's schema version, trees, keys and file names.
//! - `preflight`: the copy of an existing database checked before it is opened.
//! - `error`: the database's errors, naming the database and the record.
//! - `store`: the sled database; persists all of the above atomically and flushes.
//!
//! Must not emit telemetry or run checks: the scheduler calls `episode::advance`
//! for each report, `store::StateStore::write_check` for the whole check, and
//! only then emits the transitions, so a crash never reports an episode the next
//! start does not remember.

pub mod ack;
pub mod audit;
pub mod envelope;
pub mod episode;
pub mod error;
pub mod layout;
pub mod pause;
pub mod preflight;
pub mod record;
pub mod store;

pub use ack::AckError;
pub use audit::{AuditAction, AuditDraft, AuditEntry, Verdict};
pub use episode::{Observed, Transition, advance, clear, expired, mark_removed, mark_returned};
pub use error::StateError;
pub use pause::Pause;
pub use preflight::{Damage, DamageAt};
pub use record::{
    Ack, AckEnd, AckStatus, BotState, CommitRef, Episode, LatchedField, Resolution, ResolvedBy,
};
pub use store::StateStore;
