//! Flattening canonical trees to leaves keyed by path (§6.3).
