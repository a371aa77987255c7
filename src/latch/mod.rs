//! The agent's memory between checks (§9): each bot's drift episode, its latched
//! fields with `since_ts_ms`, and its last report, kept in a sled database.
//!
//! `episode` is the pure rule book (prior state + report + now → new state and
//! transitions); `store` persists states atomically and flushes them. Must not
//! emit telemetry or run checks: the scheduler calls `episode::advance` for each
//! report, `store::StateStore::write_check` for the whole check, and only then
//! emits the transitions, so a crash never reports an episode the next start
//! does not remember.

pub mod episode;
pub mod store;

pub use episode::{
    BotState, CommitRef, Episode, LatchedField, Observed, Resolution, ResolvedBy, Transition,
    advance, clear, expired, mark_removed, mark_returned,
};
pub use store::{StateError, StateStore};
