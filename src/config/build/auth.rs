//! `[[auth.tokens]]` (§12): who may call the admin API. Each token has a unique
//! non-empty name, a role, and the SHA-256 of its secret (the secret itself is
//! never in the file).

use std::collections::{BTreeMap, BTreeSet};

use super::Sink;
use crate::config::error::{ConfigErrorKind, Entry};
use crate::config::raw::RawAuth;
use crate::config::{Role, TokenConfig};

pub(super) fn tokens(
    raw: Option<RawAuth>,
    dropped: &BTreeSet<String>,
    sink: &mut Sink<'_>,
) -> Vec<TokenConfig> {
    let raw_tokens = raw.and_then(|a| a.tokens).unwrap_or_default();
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in raw_tokens.into_iter().enumerate() {
        let number = index + 1;
        let was_dropped = |key: &str| {
            dropped.contains(&format!("auth.tokens[{index}]"))
                || dropped.contains(&format!("auth.tokens[{index}].{key}"))
        };
        if dropped.contains(&format!("auth.tokens[{index}]")) {
            continue;
        }
        let entry = match raw.name.as_deref() {
            Some(name) if !name.is_empty() => Entry::Token(name.to_owned()),
            _ => Entry::TokenNumber(number),
        };
        let name = match raw.name {
            Some(name) if !name.is_empty() => {
                if let Some(first) = seen.insert(name.clone(), number) {
                    sink.push(ConfigErrorKind::DuplicateTokenName {
                        name: name.clone(),
                        first,
                        second: number,
                    });
                }
                Some(name)
            }
            Some(_) => {
                sink.push(ConfigErrorKind::EmptyTokenName { number });
                None
            }
            None => {
                if !was_dropped("name") {
                    sink.push(ConfigErrorKind::MissingEntryKey {
                        entry: Entry::TokenNumber(number),
                        key: "name",
                    });
                }
                None
            }
        };
        let role = match raw.role.as_deref() {
            Some(text) => Role::parse(text).or_else(|| {
                sink.push(ConfigErrorKind::UnknownRole {
                    token: entry.clone(),
                    got: text.to_owned(),
                });
                None
            }),
            None => {
                if !was_dropped("role") {
                    sink.push(ConfigErrorKind::MissingEntryKey {
                        entry: entry.clone(),
                        key: "role",
                    });
                }
                None
            }
        };
        let sha256 = match raw.sha256.as_deref() {
            Some(text) => parse_sha256(text).or_else(|| {
                sink.push(ConfigErrorKind::InvalidSha256 {
                    token: entry.clone(),
                });
                None
            }),
            None => {
                if !was_dropped("sha256") {
                    sink.push(ConfigErrorKind::MissingEntryKey {
                        entry: entry.clone(),
                        key: "sha256",
                    });
                }
                None
            }
        };
        if let (Some(name), Some(role), Some(sha256)) = (name, role, sha256) {
            out.push(TokenConfig { name, role, sha256 });
        }
    }
    out
}

fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}
