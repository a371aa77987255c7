//! The checksummed value envelope every stored value is kept in:
//! `{"v":1,"sha256":"<hex of data's bytes>","data":<data>}`.
//!
//! Owns the envelope's bytes: sealing data, and opening a sealed value with its
//! version and checksum checked. Must not know trees, keys or records (that is
//! `store.rs`, which names the record in its errors), nor the audit chain's
//! links (`audit.rs`, which uses the checksum as an entry's hash). No I/O.
//!
//! The sled risks it answers (see `store.rs` for the rest):
//! - Silent damage to a value: the checksum covers the data's exact bytes, so a
//!   flipped byte fails loudly instead of reading as another value.
//! - Format drift between versions: `v` is read first and alone, and a newer
//!   version is refused, never misread (a newer envelope may not parse as this
//!   one).

use std::borrow::Cow;
use std::io::Write as _;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The envelope and record shapes this binary reads and writes.
pub const RECORD_VERSION: u64 = 1;

/// Why a stored value could not be read.
pub(crate) enum Fault {
    Corrupt(String),
    Future(u64),
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    v: u64,
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    sha256: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// `{"v":1,"sha256":"<hex of data's bytes>","data":<data>}`.
pub(crate) fn seal<T: Serialize + ?Sized>(data: &T) -> Result<Vec<u8>, serde_json::Error> {
    Ok(seal_bytes(&serde_json::to_vec(data)?))
}

/// Seals data already serialised as JSON.
pub(crate) fn seal_bytes(body: &[u8]) -> Vec<u8> {
    let sum = hex::encode(Sha256::digest(body));
    let mut out = Vec::with_capacity(body.len() + sum.len() + 32);
    // Writing to a Vec cannot fail.
    let _ = write!(out, r#"{{"v":{RECORD_VERSION},"sha256":"{sum}","data":"#);
    out.extend_from_slice(body);
    out.push(b'}');
    out
}

/// The data of a sealed value, its version and checksum checked; the error is
/// a phrase saying what is wrong with it.
pub(crate) fn open_envelope(bytes: &[u8]) -> Result<&str, String> {
    let head: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| format!("its envelope does not parse ({e})"))?;
    if head.v > RECORD_VERSION {
        return Err(format!(
            "it has version {}, newer than this binary's {RECORD_VERSION}",
            head.v
        ));
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| format!("its envelope does not parse ({e})"))?;
    let data = envelope.data.get();
    if hex::encode(Sha256::digest(data.as_bytes())) != envelope.sha256 {
        return Err("its checksum does not match its data".into());
    }
    Ok(data)
}

pub(crate) fn unseal<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Fault> {
    // The version first, alone: a newer envelope may not parse as this one.
    let head: VersionOnly = serde_json::from_slice(bytes)
        .map_err(|e| Fault::Corrupt(format!("its envelope does not parse ({e})")))?;
    if head.v > RECORD_VERSION {
        return Err(Fault::Future(head.v));
    }
    let envelope: Envelope<'_> = serde_json::from_slice(bytes)
        .map_err(|e| Fault::Corrupt(format!("its envelope does not parse ({e})")))?;
    let sum = hex::encode(Sha256::digest(envelope.data.get().as_bytes()));
    if sum != envelope.sha256 {
        return Err(Fault::Corrupt(
            "its checksum does not match its data".into(),
        ));
    }
    serde_json::from_str(envelope.data.get())
        .map_err(|e| Fault::Corrupt(format!("its data does not parse ({e})")))
}

/// The data of a sealed value whose envelope parses, its version and checksum
/// unchecked: the audit chain goes on from a damaged entry's stored bytes.
pub(crate) fn unchecked_data(bytes: &[u8]) -> Option<&str> {
    serde_json::from_slice::<Envelope<'_>>(bytes)
        .ok()
        .map(|envelope| envelope.data.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latch::record::BotState;

    #[test]
    fn sealed_value_unseals_to_itself() {
        let sealed = seal(&42u64).unwrap();
        assert_eq!(
            std::str::from_utf8(&sealed).unwrap(),
            format!(
                r#"{{"v":1,"sha256":"{}","data":42}}"#,
                hex::encode(Sha256::digest(b"42"))
            )
        );
        assert!(matches!(unseal::<u64>(&sealed), Ok(42)));
    }

    #[test]
    fn any_flipped_byte_in_a_sealed_value_is_refused() {
        let state = BotState {
            last_seen_ms: 7,
            last_report_json: Some(r#"{"a":1}"#.into()),
            ..BotState::default()
        };
        let sealed = seal(&state).unwrap();
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                if let Ok(read) = unseal::<BotState>(&bad) {
                    // A flip inside insignificant positions must still give the
                    // same state, never a different one.
                    assert_eq!(
                        read, state,
                        "flip at byte {i} bit {bit:#x} changed the state"
                    );
                }
            }
        }
    }

    #[test]
    fn newer_envelope_version_is_reported_as_future() {
        let bytes = br#"{"v":2,"checksum":"whatever","payload":{}}"#;
        assert!(matches!(unseal::<BotState>(bytes), Err(Fault::Future(2))));
    }
}
