//! `http(s)://` running configs.
