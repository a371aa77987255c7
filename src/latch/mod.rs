//! The agent's memory between checks (§9): each bot's drift episode, its latched
//! fields with `since_ts_ms`, its last report and its acks, the detector's pause,
//! and the admin audit chain, kept in a sled database.
//!
//! `episode`, `ack`, `pause` and `audit` are pure rule books (prior state, an
//! input and the time give the new state); `store` persists them atomically and
//! flushes. Must not
//! emit telemetry or run checks: the scheduler calls `episode::advance` for each
//! report, `store::StateStore::write_check` for the whole check, and only then
//! emits the transitions, so a crash never reports an episode the next start
//! does not remember.

pub mod ack;
pub mod audit;
pub mod episode;
pub mod pause;
pub mod store;

pub use ack::{Ack, AckEnd, AckError, AckStatus};
pub use audit::{AuditAction, AuditDraft, AuditEntry, Verdict};
pub use episode::{
    BotState, CommitRef, Episode, LatchedField, Observed, Resolution, ResolvedBy, Transition,
    advance, clear, expired, mark_removed, mark_returned,
};
pub use pause::Pause;
pub use store::{Damage, DamageAt, StateError, StateStore};
