//! The configuration file as serde reads it: every table `deny_unknown_fields`.
