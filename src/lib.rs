//! config-drift-detector: finds every field where a live bot's running config
//! differs from the signed-off version in Git, and makes it a telemetry signal.
//!
//! One check flows through the modules in this order: the schedule (or a one-shot
//! command) starts it; `runtime` fetches every bot's running config and `repo`
//! resolves the pinned branch to one commit and reads each bot's committed file;
//! `canon` parses both and canonicalises them through the bot's JSON Schema;
//! `diff` flattens them to leaf paths and compares; `check` turns that into one
//! `report::ConfigDriftReport` per bot (UNKNOWN, never "no drift", when a side
//! cannot be read); the latch keeps each drift until a commit or a revert
//! resolves it, and telemetry emits it. `canon`, `diff` and `report` are pure.

pub mod agent;
pub mod api;
pub mod canon;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod diff;
pub mod latch;
pub mod repo;
pub mod report;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod telemetry;
// Text helpers any layer may use: one-line messages, excerpts, percent-decoding.
pub mod text;
pub mod time;
