//! Raw serde shapes → the validated [`Config`] (§3). This module checks the
//! top-level keys (`mode`, `check_interval_minutes`, `tolerance_for_numeric_drift`,
//! `ignore_fields`, `registry_file` against inline `[[bots]]`) and holds the
//! helpers every section uses (integer ranges, paths, files that must exist);
//! each table has its own module: `repo`, `runtime` (with `headers`), `bots`,
//! `state`, `server`, `auth`.
//!
//! Collects every problem instead of stopping at the first. Reads the environment
//! only through the lookup it is given and the filesystem only to check that the
//! files it is told to read exist. Must never put a header value into an error.

mod auth;
mod bots;
mod headers;
mod repo;
mod runtime;
mod server;
mod state;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, ConfigErrorKind, Place};
use super::raw::{RawConfig, RawNumber};
use super::{
    CHECK_INTERVAL_MINUTES_RANGE, CHECK_INTERVAL_WARN_ABOVE_MINUTES, Config,
    DEFAULT_CHECK_INTERVAL_MINUTES, DEFAULT_MODE, Mode, Warning, max_tolerance,
};
use crate::canon::Decimal;
use crate::canon::path::FieldPattern;

pub(super) use bots::{BotDefaults, build_bots};

/// Looks an environment variable up (`std::env::var_os` outside tests).
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Where problems of one file go.
pub(super) struct Sink<'a> {
    pub file: &'a Path,
    pub errors: &'a mut Vec<ConfigError>,
}

impl Sink<'_> {
    pub(super) fn push(&mut self, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(self.file, kind));
    }
}

/// Builds everything but the bots of a `registry_file` (the caller reads that file).
pub(super) fn build_config(
    file: &Path,
    dir: &Path,
    raw: RawConfig,
    dropped: &BTreeSet<String>,
    env: Env<'_>,
    sink: &mut Sink<'_>,
    warnings: &mut Vec<Warning>,
) -> Config {
    let mode = match raw.mode.as_deref() {
        None => DEFAULT_MODE,
        Some(text) => Mode::parse(text).unwrap_or_else(|| {
            sink.push(ConfigErrorKind::UnknownMode {
                got: text.to_owned(),
            });
            DEFAULT_MODE
        }),
    };

    let minutes = int_in(
        sink,
        "check_interval_minutes",
        Place::Top,
        raw.check_interval_minutes,
        DEFAULT_CHECK_INTERVAL_MINUTES,
        CHECK_INTERVAL_MINUTES_RANGE,
    );
    if minutes > CHECK_INTERVAL_WARN_ABOVE_MINUTES {
        warnings.push(Warning::LongCheckInterval {
            minutes,
            above: CHECK_INTERVAL_WARN_ABOVE_MINUTES,
        });
    }

    let tolerance = tolerance(raw.tolerance_for_numeric_drift, sink, warnings);

    let mut ignore_fields = Vec::new();
    for text in raw.ignore_fields.unwrap_or_default() {
        match FieldPattern::parse(&text) {
            Ok(p) => ignore_fields.push(p),
            Err(e) => sink.push(ConfigErrorKind::IgnoreField(e)),
        }
    }

    let registry_file = raw
        .registry_file
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| resolve(dir, s));

    let repo = repo::repo(raw.repo, dir, dropped, sink);
    let runtime = runtime::runtime(raw.runtime, dir, env, sink, warnings);
    let state = state::state(raw.state, dir, sink);
    let server = server::server(raw.server, dir, sink);
    let tokens = auth::tokens(raw.auth, dropped, sink);

    let inline_bots = raw.bots.unwrap_or_default();
    let template_ok = repo::check_config_path_template(&repo.config_path_template, sink);
    let defaults = BotDefaults {
        config_path_template: template_ok.then_some(repo.config_path_template.as_str()),
        schema_path_template: repo.schema_path_template.as_deref(),
        runtime_headers: &runtime.headers,
    };
    let bots = match &registry_file {
        Some(registry) => {
            if !inline_bots.is_empty() {
                sink.push(ConfigErrorKind::RegistryAndInlineBots {
                    registry: registry.clone(),
                });
            }
            Vec::new()
        }
        None => {
            if inline_bots.is_empty() && !dropped.contains("bots") {
                sink.push(ConfigErrorKind::NoBots);
            }
            build_bots(inline_bots, dropped, &defaults, env, sink)
        }
    };

    Config {
        file: file.to_path_buf(),
        mode,
        check_interval: Duration::from_secs(minutes * 60),
        tolerance,
        ignore_fields,
        registry_file,
        repo,
        runtime,
        bots,
        state,
        server,
        tokens,
    }
}

fn tolerance(raw: Option<RawNumber>, sink: &mut Sink<'_>, warnings: &mut Vec<Warning>) -> Decimal {
    let value = match raw {
        None => return Decimal::ZERO,
        Some(RawNumber::Integer(i)) => Some(Decimal::from_i64(i)),
        // Through the shortest text that round-trips, so `0.001` is exactly 0.001
        // and not the binary64 value nearest to it.
        Some(RawNumber::Float(f)) => Decimal::from_f64(f),
    };
    let Some(value) = value else {
        sink.push(ConfigErrorKind::ToleranceNotFinite);
        return Decimal::ZERO;
    };
    let max = max_tolerance();
    if value.is_negative() || value > max {
        sink.push(ConfigErrorKind::ToleranceOutOfRange { got: value, max });
        return Decimal::ZERO;
    }
    if !value.is_zero() {
        warnings.push(Warning::NonZeroTolerance {
            tolerance: value.clone(),
        });
    }
    value
}

/// An optional file the agent will read: `""` is unset, a relative path resolves
/// against the config's folder, and the file must exist (a missing one is
/// reported, and still returned so nothing downstream calls it unset).
fn existing_file(
    dir: &Path,
    raw: Option<String>,
    key: &'static str,
    table: &'static str,
    sink: &mut Sink<'_>,
) -> Option<PathBuf> {
    let text = raw.filter(|s| !s.is_empty())?;
    let path = resolve(dir, &text);
    if !path.is_file() {
        sink.push(ConfigErrorKind::MissingFile {
            key,
            place: Place::Table(table),
            path: path.clone(),
        });
    }
    Some(path)
}

/// Two keys of `[table]` that are set together or not at all.
fn pair(
    first: &Option<PathBuf>,
    second: &Option<PathBuf>,
    first_key: &'static str,
    second_key: &'static str,
    table: &'static str,
    sink: &mut Sink<'_>,
) {
    match (first, second) {
        (Some(_), None) => sink.push(ConfigErrorKind::UnpairedFile {
            table,
            set: first_key,
            unset: second_key,
        }),
        (None, Some(_)) => sink.push(ConfigErrorKind::UnpairedFile {
            table,
            set: second_key,
            unset: first_key,
        }),
        _ => {}
    }
}

/// `dir/text` with `.` components dropped; `..` is kept, since a symlinked folder
/// makes lexical `..` wrong.
pub(super) fn resolve(dir: &Path, text: &str) -> PathBuf {
    dir.join(text).components().collect()
}

/// An integer key with a default and an inclusive range; out of range is reported
/// and the default used so checking can go on.
fn int_in(
    sink: &mut Sink<'_>,
    key: &'static str,
    place: Place,
    value: Option<i64>,
    default: u64,
    range: RangeInclusive<u64>,
) -> u64 {
    let Some(value) = value else {
        return default;
    };
    match u64::try_from(value) {
        Ok(v) if range.contains(&v) => v,
        _ => {
            sink.push(ConfigErrorKind::OutOfRange {
                key,
                place,
                got: value,
                range,
            });
            default
        }
    }
}
