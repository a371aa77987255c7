//! `file://` running configs.
