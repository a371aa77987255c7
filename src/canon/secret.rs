//! Redaction of secret values: `<redacted:hmac-sha256:XXXXXXXX>`, an HMAC-SHA-256 of
//! the canonical value under a key that never leaves the process.
//!
//! Owns the key type and the HMAC; must not store, print or log the key (its
//! `Debug` is opaque) and does no I/O: where the key comes from (the state
//! database, or a fresh one per run) is the caller's business.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::canon::path::redaction_token;

type HmacSha256 = Hmac<Sha256>;

/// The per-installation (or per-run) key secrets are HMAC'd under.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG, for commands that keep no
    /// state (`check`, `diff`, `compare`).
    pub fn random() -> SecretKey {
        SecretKey(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// The key's bytes, for the caller that persists it (the state database).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The full HMAC-SHA-256 of `canonical_json`, 64 lowercase hex digits. Paths use
    /// all of it for ordering and equality, so two secrets never collide there.
    pub fn hmac_hex(&self, canonical_json: &str) -> String {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(canonical_json.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `<redacted:hmac-sha256:XXXXXXXX>`: what reports carry instead of the value.
    pub fn token(&self, canonical_json: &str) -> String {
        redaction_token(&self.hmac_hex(canonical_json))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: a key in a log line would let anyone confirm guesses.
        f.write_str("SecretKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_key_bytes() {
        let key = SecretKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecretKey(..)");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn hmac_matches_a_reference_implementation() {
        // Python: hmac.new(bytes([0x0b] * 32), b"Hi There", hashlib.sha256).hexdigest()
        let key = SecretKey::from_bytes([0x0b; 32]);
        assert_eq!(
            key.hmac_hex("Hi There"),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }

    #[test]
    fn token_is_the_first_eight_hex_digits_and_depends_on_key_and_value() {
        let a = SecretKey::from_bytes([1; 32]);
        let b = SecretKey::from_bytes([2; 32]);
        let t = a.token("\"hunter2\"");
        let full = a.hmac_hex("\"hunter2\"");
        assert_eq!(t, format!("<redacted:hmac-sha256:{}>", &full[..8]));
        assert_ne!(t, b.token("\"hunter2\""));
        assert_ne!(t, a.token("\"hunter3\""));
        assert_eq!(t, a.token("\"hunter2\""));
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(SecretKey::random(), SecretKey::random());
    }
}
