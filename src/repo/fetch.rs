//! Talking to the config repo's remote: credentials, host verification, and the
//! fetch of one branch. It owns the network side only; what a failure means for
//! the bots (unreachable, stale) is decided by the caller.
//!
//! Credentials, in the order libgit2 asks for them:
//! - `https://`: a `user:token@` inside the URL first (libgit2 presents it
//!   itself), then git's credential helpers (`credential.helper` in the user's
//!   git config), each once.
//! - `ssh://`: the user in the URL (else `git`); the ssh-agent
//!   (`SSH_AUTH_SOCK`), then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`
//!   (unencrypted), each once.
//!
//! Hosts: an SSH host key must already be in `~/.ssh/known_hosts` of the user
//! running the agent (hashed entries and `[host]:port` forms work); an unknown or
//! changed key refuses the fetch. To trust a host, add its key there, e.g.
//! `ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts` after checking the
//! fingerprint out of band. The `certificate_check` callback below never
//! accepts a host itself: it passes libgit2's verdict through (the known_hosts
//! lookup done by libssh2 for SSH, the CA chain check by OpenSSL for HTTPS), so
//! nothing here can weaken either check.

use std::cell::RefCell;
use std::path::PathBuf;

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, ErrorClass, ErrorCode,
    FetchOptions, Oid, RemoteCallbacks, Repository,
};

/// What the remote said about the pinned branch.
pub enum FetchOutcome {
    /// The branch's head, now present locally with all its history.
    Head(Oid),
    /// The remote answered and has no such branch.
    BranchMissing,
}

/// What the callbacks tried, so each credential is offered once (libgit2 keeps
/// asking while the server refuses) and a refusal can be explained.
#[derive(Default)]
pub struct AuthAttempts {
    username_sent: bool,
    agent_tried: bool,
    keys_tried: usize,
    helper_tried: bool,
    default_tried: bool,
    ssh_host: Option<String>,
}

fn default_key_files() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| ssh.join(name))
        .filter(|p| p.is_file())
        .collect()
}

/// Remote callbacks sharing one attempt record across a connection's requests.
pub fn callbacks(attempts: &RefCell<AuthAttempts>) -> RemoteCallbacks<'_> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |url, username_from_url, allowed| {
        let mut tried = attempts.borrow_mut();
        let user = username_from_url.unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) && !tried.username_sent {
            tried.username_sent = true;
            return Cred::username(user);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if !tried.agent_tried {
                tried.agent_tried = true;
                if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                    return Cred::ssh_key_from_agent(user);
                }
            }
            let keys = default_key_files();
            if let Some(key) = keys.get(tried.keys_tried) {
                tried.keys_tried += 1;
                let public = key.with_extension("pub");
                let public = public.is_file().then_some(public);
                return Cred::ssh_key(user, public.as_deref(), key, None);
            }
            return Err(git2::Error::from_str(
                "no SSH key was accepted (tried the ssh-agent and ~/.ssh/id_ed25519, id_ecdsa, id_rsa)",
            ));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && !tried.helper_tried {
            tried.helper_tried = true;
            if let Ok(config) = git2::Config::open_default()
                && let Ok(cred) = Cred::credential_helper(&config, url, username_from_url)
            {
                return Ok(cred);
            }
        }
        if allowed.contains(CredentialType::DEFAULT) && !tried.default_tried {
            tried.default_tried = true;
            return Cred::default();
        }
        Err(git2::Error::from_str(
            "the server refused the credentials (from the URL and git's credential helpers)",
        ))
    });
    cb.certificate_check(move |cert, host| {
        if cert.as_hostkey().is_some() {
            attempts.borrow_mut().ssh_host = Some(host.to_owned());
        }
        // Never `CertificateOk`: libgit2 has already matched the host against
        // known_hosts (SSH) or the CA store (HTTPS); passing its verdict through
        // refuses unknown hosts and keeps this callback from weakening the check.
        Ok(CertificateCheckStatus::CertificatePassthrough)
    });
    cb
}

/// Explains a libgit2 failure in one clause, naming the host for a refused SSH
/// host key. The caller scrubs credentials from it.
pub fn explain(err: &git2::Error, attempts: &RefCell<AuthAttempts>) -> String {
    if err.class() == ErrorClass::Ssh && err.code() == ErrorCode::Certificate {
        let host = attempts.borrow().ssh_host.clone().unwrap_or_default();
        return format!(
            "the SSH host key of `{host}` is not in ~/.ssh/known_hosts or has changed (add the verified key there)"
        );
    }
    let message = err.message().trim_end_matches('.');
    if err.code() == ErrorCode::Auth {
        return format!("authentication failed ({message})");
    }
    message.to_owned()
}

/// Fetches only `refs/heads/<branch>` from the `origin` remote into
/// `refs/remotes/origin/<branch>`. One round trip when nothing changed: the ref
/// advertisement shows the head we already have, and no pack is asked for.
pub fn fetch_branch(
    git: &Repository,
    branch: &str,
    attempts: &RefCell<AuthAttempts>,
) -> Result<FetchOutcome, git2::Error> {
    let wanted = format!("refs/heads/{branch}");
    let tracking = tracking_ref(branch);
    let mut remote = git.find_remote("origin")?;
    let mut connection = remote.connect_auth(Direction::Fetch, Some(callbacks(attempts)), None)?;
    let advertised = connection
        .list()?
        .iter()
        .find(|head| head.name() == wanted)
        .map(|head| head.oid());
    let Some(head) = advertised else {
        drop(connection);
        // A deleted branch must never be served from its last local copy.
        match git.find_reference(&tracking) {
            Ok(mut stale) => stale.delete()?,
            Err(e) if e.code() == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        return Ok(FetchOutcome::BranchMissing);
    };
    // Full fetches only (no depth): the clone is never shallower than
    // `history_depth`. A head already present came with its whole history.
    if !git.odb()?.exists(head) {
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks(attempts))
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        let spec = format!("+{wanted}:{tracking}");
        connection
            .remote()
            .download(&[spec.as_str()], Some(&mut options))?;
    }
    drop(connection);
    git.find_commit(head)?;
    git.reference(&tracking, head, true, "config-drift-detector: fetch")?;
    Ok(FetchOutcome::Head(head))
}

pub fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// Removes credentials from a message that may quote the URL: the URL itself is
/// replaced by its redacted form, and the password (or token) wherever it occurs.
pub fn scrub(message: &str, url: &str, url_redacted: &str) -> String {
    let mut out = if url != url_redacted {
        message.replace(url, url_redacted)
    } else {
        message.to_owned()
    };
    if let Some(userinfo) = userinfo(url) {
        if let Some((_, secret)) = userinfo.split_once(':')
            && !secret.is_empty()
        {
            out = out.replace(secret, "***");
        }
        if !userinfo.is_empty() {
            out = out.replace(&format!("{userinfo}@"), "***@");
        }
    }
    out
}

fn userinfo(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_token_wherever_it_appears() {
        let url = "https://bot:s3cr3t@git.example/x.git";
        let red = "https://***@git.example/x.git";
        let msg = format!("failed to fetch {url}: s3cr3t rejected");
        let out = scrub(&msg, url, red);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains(red), "{out}");
    }

    #[test]
    fn scrub_leaves_urls_without_credentials_alone() {
        assert_eq!(scrub("boom", "/srv/repo", "/srv/repo"), "boom");
        assert_eq!(
            scrub("at https://h/x", "https://h/x", "https://h/x"),
            "at https://h/x"
        );
    }
}
