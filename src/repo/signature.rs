//! Commit signature states (§5): where a commit's `gpgsig` header is read and
//! handed to a verifier. Verification against `allowed_signers` (SSH) and
//! `gpg_keyring` (OpenPGP) plugs in through [`SignatureVerifier`]; until one is
//! installed every signature is `unverified`, never `verified`. This module
//! never decides trust itself.

use git2::{ObjectType, Oid, Repository};

use crate::report::SignatureState;

/// Decides whether a commit signature is trusted. `signature` is the armored
/// `gpgsig` header (an SSH `-----BEGIN SSH SIGNATURE-----` or an OpenPGP
/// `-----BEGIN PGP SIGNATURE-----` block); `signed_data` is the commit object
/// without its signature headers, exactly the bytes the signer signed.
///
/// Implementations answer `Verified` only for a good signature by a trusted key,
/// `Bad` for a signature that does not match the data, and `Unverified` for one
/// they cannot check or whose key is not trusted.
pub trait SignatureVerifier: Send {
    fn verify(&self, signature: &[u8], signed_data: &[u8]) -> SignatureState;
}

/// The verifier used until SSH/GPG verification exists: a signature is present
/// but nobody vouched for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct UncheckedSignatures;

impl SignatureVerifier for UncheckedSignatures {
    fn verify(&self, _signature: &[u8], _signed_data: &[u8]) -> SignatureState {
        SignatureState::Unverified
    }
}

/// The signature state of one commit: `unsigned` without a `gpgsig` header, else
/// the verifier's verdict.
pub fn commit_signature_state(
    git: &Repository,
    commit: Oid,
    verifier: &dyn SignatureVerifier,
) -> Result<SignatureState, git2::Error> {
    let odb = git.odb()?;
    let object = odb.read(commit)?;
    if object.kind() != ObjectType::Commit {
        return Err(git2::Error::from_str(&format!(
            "object {commit} is a {}, not a commit",
            object.kind().str()
        )));
    }
    Ok(match split_signature(object.data()) {
        Some((signature, signed_data)) => verifier.verify(&signature, &signed_data),
        None => SignatureState::Unsigned,
    })
}

/// Headers that carry a signature; all are left out of the signed data, as git
/// does when it verifies.
const SIGNATURE_HEADERS: [&[u8]; 2] = [b"gpgsig", b"gpgsig-sha256"];

/// Splits a raw commit into its `gpgsig` value and the signed bytes. Only the
/// header section counts (libgit2's `extract_signature` also matches a message
/// line that happens to start with `gpgsig `, which would turn an unsigned commit
/// into a "signed" one).
fn split_signature(raw: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let header_end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(raw.len(), |p| p + 1);
    let (header, message) = raw.split_at(header_end);

    let mut signature: Option<Vec<u8>> = None;
    let mut signed = Vec::with_capacity(raw.len());
    // Which header the current continuation lines (starting with a space) belong to.
    let mut in_signature_header = false;
    let mut collecting = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b" ") {
            if in_signature_header {
                if collecting && let Some(sig) = signature.as_mut() {
                    sig.push(b'\n');
                    sig.extend_from_slice(trim_newline(rest));
                }
                continue;
            }
            signed.extend_from_slice(line);
            continue;
        }
        let name = line.split(|&b| b == b' ').next().unwrap_or(line);
        in_signature_header = SIGNATURE_HEADERS.contains(&name) && line.len() > name.len();
        if in_signature_header {
            collecting = name == b"gpgsig" && signature.is_none();
            if collecting {
                signature = Some(trim_newline(&line[name.len() + 1..]).to_vec());
            }
            continue;
        }
        signed.extend_from_slice(line);
    }
    signed.extend_from_slice(message);
    signature.map(|s| (s, signed))
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_header_is_split_from_signed_data() {
        let raw = b"tree t\nparent p\nauthor a\ncommitter c\ngpgsig -----BEGIN X-----\n line2\n -----END X-----\n\nsummary\n\nbody\n";
        let (sig, signed) = split_signature(raw).unwrap();
        assert_eq!(sig, b"-----BEGIN X-----\nline2\n-----END X-----");
        assert_eq!(
            signed,
            b"tree t\nparent p\nauthor a\ncommitter c\n\nsummary\n\nbody\n"
        );
    }

    #[test]
    fn gpgsig_line_in_the_message_is_not_a_signature() {
        let raw = b"tree t\nauthor a\ncommitter c\n\nsummary\ngpgsig fake\n";
        assert!(split_signature(raw).is_none());
    }

    #[test]
    fn commit_without_signature_is_unsigned() {
        assert!(split_signature(b"tree t\nauthor a\ncommitter c\n\nmsg\n").is_none());
    }
}
