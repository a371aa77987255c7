//! The pure core's second half: flatten both canonical trees to leaves keyed by
//! path and compare them (§6.3–6.5). No I/O, no clock.

pub mod flatten;
pub mod path;
