//! The running side of one bot after parsing and canonicalisation: the
//! counterpart of `committed.rs` for what the fetch delivered.
//!
//! Pure: no I/O, no clock. It must not decide the bot's status; a failure is
//! kept as a value for the verdict to rank against the committed side's.

use std::sync::Arc;

use crate::canon::canonical::{CanonOptions, Canonical, canonicalise};
use crate::canon::schema::Schema;
use crate::canon::{ParseLimits, parse_document};
use crate::report::{Side, UnknownReason};
use crate::runtime::{FetchFailure, Fetched};

/// A bot's running config after parsing and canonicalisation, or why not.
pub(super) enum RunningSide {
    /// With the source's `loaded_at_ms`, when it gave one.
    Ready(Box<Canonical>, Option<i64>),
    Failed(FetchFailure),
    /// Its schema does not compile: the committed side reports that.
    NoSchema,
}

/// Parses and canonicalises what the fetch delivered, through the bot's schema.
pub(super) fn running_side(
    fetched: Fetched,
    schema: Option<&Result<Arc<Schema>, String>>,
    limits: &ParseLimits,
    opts: &CanonOptions,
) -> RunningSide {
    let doc = match fetched.result {
        Ok(doc) => doc,
        Err(failure) => return RunningSide::Failed(failure),
    };
    let schema = match schema {
        Some(Ok(s)) => Some(s.as_ref()),
        Some(Err(_)) => return RunningSide::NoSchema,
        None => None,
    };
    match parse_document(&doc.bytes, doc.format, limits) {
        Ok(value) => RunningSide::Ready(
            Box::new(canonicalise(value, schema, Side::Running, opts)),
            doc.loaded_at_ms,
        ),
        Err(e) => RunningSide::Failed(FetchFailure {
            reason: UnknownReason::RuntimeBadResponse,
            detail: format!("the running config is not valid: {e}"),
        }),
    }
}
