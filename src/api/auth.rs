//! Bearer tokens and roles (§3 `[[auth.tokens]]`, §12): a request's token is
//! hashed with SHA-256 and compared, in constant time, with every configured
//! hash (only hashes are ever stored); the identity's role must reach the
//! route's (viewer < oncall < admin). Must not log, echo or keep a token.

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::config::{Role, TokenConfig};

/// The identity a presented token belongs to among `tokens` (the config in
/// force, so a reload's identities apply from the next request). Every
/// configured hash is compared in full, so timing tells nothing about which one
/// (or how much of one) matched.
pub fn identify(tokens: &[TokenConfig], token: &str) -> Option<(String, Role)> {
    let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        if constant_time_eq(&presented, &t.sha256) {
            found = Some((t.name.clone(), t.role));
        }
    }
    found
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// Why a request is refused before reaching its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    Unauthorized,
    Forbidden,
}

/// The caller's identity, or the error to answer (401 without or with an
/// unknown token, 403 below `needed`).
pub fn authorize(
    tokens: &[TokenConfig],
    headers: &HeaderMap,
    needed: Role,
) -> Result<(String, Role), (Denial, ApiError)> {
    let unauthorized = |message: &str| {
        (
            Denial::Unauthorized,
            ApiError::new(StatusCode::UNAUTHORIZED, message),
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "a bearer token is required (Authorization: Bearer TOKEN)",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer TOKEN`",
        ));
    };
    let Some((name, role)) = identify(tokens, token) else {
        return Err(unauthorized("the bearer token is not known"));
    };
    if role < needed {
        return Err((
            Denial::Forbidden,
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this needs the `{}` role; `{name}` has `{}`",
                    needed.as_str(),
                    role.as_str()
                ),
            ),
        ));
    }
    Ok((name, role))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn tokens() -> Vec<TokenConfig> {
        let hash = |t: &str| -> [u8; 32] { Sha256::digest(t.as_bytes()).into() };
        vec![
            TokenConfig {
                name: "vic".into(),
                role: Role::Viewer,
                sha256: hash("viewer-token"),
            },
            TokenConfig {
                name: "olga".into(),
                role: Role::Oncall,
                sha256: hash("oncall-token"),
            },
        ]
    }

    fn bearer(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_known_token_is_its_identity_and_role() {
        let got = authorize(&tokens(), &bearer("Bearer oncall-token"), Role::Viewer).unwrap();
        assert_eq!(got, ("olga".into(), Role::Oncall));
        let got = authorize(&tokens(), &bearer("bearer viewer-token"), Role::Viewer).unwrap();
        assert_eq!(got, ("vic".into(), Role::Viewer));
    }

    #[test]
    fn no_token_or_an_unknown_one_is_unauthorized() {
        for headers in [
            HeaderMap::new(),
            bearer("Bearer nope"),
            bearer("Basic b2xnYTpvbmNhbGwtdG9rZW4="),
            bearer("Bearer "),
        ] {
            let (denial, err) = authorize(&tokens(), &headers, Role::Viewer).unwrap_err();
            assert_eq!(denial, Denial::Unauthorized);
            assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn a_role_below_the_route_is_forbidden_and_the_message_never_has_the_token() {
        let (denial, err) =
            authorize(&tokens(), &bearer("Bearer viewer-token"), Role::Oncall).unwrap_err();
        assert_eq!(denial, Denial::Forbidden);
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(err.message.contains("`oncall`"), "{}", err.message);
        assert!(!err.message.contains("viewer-token"));
    }

    #[test]
    fn a_reload_replaces_the_identities() {
        // The API passes the config in force at each request: a reload that
        // drops an identity refuses its token from then on.
        assert!(identify(&tokens(), "oncall-token").is_some());
        assert!(identify(&[], "oncall-token").is_none());
    }
}
