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

// The modules from the entrance down, in layers: each imports only from layers
// below it (tests/layers.rs holds them to it). Peers share a layer.

// The command line: parses arguments, prints, maps outcomes to exit codes.
pub mod cli;
// The self-contained tour on loopback (`demo`), built on `app`.
pub mod demo;
// The composition root: store, telemetry, agent, API and server, and signals.
pub mod app;
// The admin API under /api/v1 and its vocabulary, shared with the CLI client.
pub mod api;
// The HTTP(S) server: liveness, health, /metrics.
pub mod server;
// The long-lived agent: schedule, latch, store, admin actions; publishes status.
pub mod agent;
// One evaluation of the fleet into one report per bot.
pub mod check;
// Metrics, log records (events) and spans, over OTLP and /metrics.
pub mod telemetry;
// Running configs over HTTP(S), gRPC or a file.
pub mod runtime;
// The Git config repo: fetch, pin, read, history, signatures.
pub mod repo;
// The config file and the bot registry, checked into typed settings.
pub mod config;
// Latch rules (episodes, acks, pause) and the state database with its audit log.
pub mod latch;
// Field-by-field comparison of two canonical documents.
pub mod diff;
// Parsing (JSON, YAML, TOML) and canonicalisation through a JSON Schema.
pub mod canon;
// The report every check produces, and its reason codes.
pub mod report;
// Which agent of N owns a bot (§13).
pub mod shard;
// Text helpers any layer may use: one-line messages, excerpts, percent-decoding.
pub mod text;
// The wall clock, durations and times as people write them.
pub mod time;
