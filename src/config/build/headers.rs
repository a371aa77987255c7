//! Header tables (`[runtime].headers` and a bot's own): names checked, `${ENV}`
//! expanded, values checked, a bot's headers merged over the runtime's.
//!
//! The one place a secret passes through: errors name the header and the
//! variable, never a value, written or expanded.

use super::{Env, Sink};
use crate::config::Header;
use crate::config::error::{ConfigErrorKind, ExpandError, HeaderOwner};
use crate::config::raw::RawHeaders;

/// Builds one header table; a header with a problem is reported and left out.
pub(super) fn headers(
    raw: Option<RawHeaders>,
    owner: &HeaderOwner,
    env: Env<'_>,
    sink: &mut Sink<'_>,
) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for (name, value) in raw.unwrap_or_default() {
        if !is_header_name(&name) {
            sink.push(ConfigErrorKind::InvalidHeaderName {
                owner: owner.clone(),
                name,
            });
            continue;
        }
        if let Some(other) = out.iter().find(|h| h.name.eq_ignore_ascii_case(&name)) {
            sink.push(ConfigErrorKind::DuplicateHeader {
                owner: owner.clone(),
                first: other.name.clone(),
                second: name,
            });
            continue;
        }
        let value = match expand_env(&value.0, env) {
            Ok(v) => v,
            Err(error) => {
                sink.push(ConfigErrorKind::HeaderEnv {
                    owner: owner.clone(),
                    name,
                    error,
                });
                continue;
            }
        };
        if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
            sink.push(ConfigErrorKind::InvalidHeaderValue {
                owner: owner.clone(),
                name,
            });
            continue;
        }
        out.push(Header { name, value });
    }
    out
}

/// The bot's headers replace same-named (case-insensitive) runtime headers; the
/// result is in lower-cased name order so it does not depend on the file's order.
pub(super) fn merge_headers(runtime: &[Header], own: Vec<Header>) -> Vec<Header> {
    let mut merged: Vec<Header> = runtime
        .iter()
        .filter(|r| !own.iter().any(|o| o.name.eq_ignore_ascii_case(&r.name)))
        .cloned()
        .collect();
    merged.extend(own);
    merged.sort_by_key(|h| h.name.to_ascii_lowercase());
    merged
}

/// An RFC 9110 token.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Replaces every `${NAME}` with the variable's value; `$${` stands for a literal
/// `${`, and any other `$` is kept as written.
pub(super) fn expand_env(text: &str, env: Env<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or(ExpandError::Malformed)?;
            let var = &after[..end];
            let valid = var
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ExpandError::Malformed);
            }
            let value = env(var).ok_or_else(|| ExpandError::Unset(var.to_owned()))?;
            let value = value
                .into_string()
                .map_err(|_| ExpandError::NotUtf8(var.to_owned()))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}
