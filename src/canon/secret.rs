//! Redaction of secret values: `<redacted:hmac-sha256:XXXXXXXX>`, an HMAC-SHA-256 of
//! the canonical value under a key that never leaves the process.
