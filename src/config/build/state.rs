//! `[state]` (§9): where the sled database lives and how long episodes and the
//! audit chain are kept. Opens nothing.

use std::path::Path;

use super::{Sink, int_in, resolve};
use crate::config::error::{ConfigErrorKind, Place};
use crate::config::raw::RawState;
use crate::config::{DEFAULT_STATE_PATH, RETENTION_DAYS_RANGE, StateConfig};

pub(super) fn state(raw: Option<RawState>, dir: &Path, sink: &mut Sink<'_>) -> StateConfig {
    let raw = raw.unwrap_or_default();
    let path = match raw.path.as_deref() {
        Some("") => {
            sink.push(ConfigErrorKind::EmptyStatePath);
            resolve(dir, DEFAULT_STATE_PATH)
        }
        other => resolve(dir, other.unwrap_or(DEFAULT_STATE_PATH)),
    };
    let retention_days = int_in(
        sink,
        "retention_days",
        Place::Table("state"),
        raw.retention_days,
        0,
        RETENTION_DAYS_RANGE,
    );
    let audit_retention_days = int_in(
        sink,
        "audit_retention_days",
        Place::Table("state"),
        raw.audit_retention_days,
        0,
        RETENTION_DAYS_RANGE,
    );
    StateConfig {
        path,
        retention_days: u32::try_from(retention_days).unwrap_or(u32::MAX),
        audit_retention_days: u32::try_from(audit_retention_days).unwrap_or(u32::MAX),
    }
}
