//! `[repo]` (§3): the committed side's URL (a local path resolves against the
//! config's folder; scp-style SSH is refused), the branch name, the
//! `config_path`/`schema_path` templates, bounds, and the trust source signed
//! commits need. Also owns what a path inside the repo tree may be
//! ([`repo_path`]), which bots' own paths use too.
//!
//! Opens nothing: whether a local repository is there is the caller's question.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Sink, existing_file, int_in, resolve};
use crate::canon::Format;
use crate::config::error::{ConfigErrorKind, PathProblem, Place, RepoUrlError};
use crate::config::raw::RawRepo;
use crate::config::{
    DEFAULT_BRANCH, DEFAULT_CHECKOUT_DIR, DEFAULT_CONFIG_PATH, DEFAULT_HISTORY_DEPTH,
    DEFAULT_MAX_STALENESS_S, HISTORY_DEPTH_RANGE, MAX_STALENESS_S_RANGE, REPO_URL_SCHEMES,
    RepoConfig, redact_url_credentials,
};

pub(super) fn repo(
    raw: Option<RawRepo>,
    dir: &Path,
    dropped: &BTreeSet<String>,
    sink: &mut Sink<'_>,
) -> RepoConfig {
    let table_missing = raw.is_none();
    if table_missing && !dropped.contains("repo") {
        sink.push(ConfigErrorKind::RepoMissing);
    }
    let raw = raw.unwrap_or_default();
    let url = match raw.url.as_deref() {
        Some(url) => repo_url(url, dir).unwrap_or_else(|e| {
            sink.push(ConfigErrorKind::RepoUrl(e));
            String::new()
        }),
        None => {
            if !table_missing && !dropped.contains("repo.url") {
                sink.push(ConfigErrorKind::RepoUrl(RepoUrlError::Missing));
            }
            String::new()
        }
    };

    let branch = raw.branch.unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
    if branch.is_empty() || !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        sink.push(ConfigErrorKind::InvalidBranch {
            branch: branch.clone(),
        });
    }

    let config_path_template = raw
        .config_path
        .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_owned());
    let schema_path_template = raw.schema_path.filter(|s| !s.is_empty());
    if let Some(template) = &schema_path_template
        && let Err(problem) = repo_path(&template.replace("{slug}", "x"))
    {
        sink.push(ConfigErrorKind::RepoPathTemplate {
            key: "schema_path",
            template: template.clone(),
            problem,
        });
    }

    let checkout_dir = resolve(
        dir,
        raw.checkout_dir.as_deref().unwrap_or(DEFAULT_CHECKOUT_DIR),
    );
    let history_depth = int_in(
        sink,
        "history_depth",
        Place::Table("repo"),
        raw.history_depth,
        DEFAULT_HISTORY_DEPTH,
        HISTORY_DEPTH_RANGE,
    );
    let max_staleness_s = int_in(
        sink,
        "max_staleness_s",
        Place::Table("repo"),
        raw.max_staleness_s,
        DEFAULT_MAX_STALENESS_S,
        MAX_STALENESS_S_RANGE,
    );
    let require_signed_commits = raw.require_signed_commits.unwrap_or(false);
    let allowed_signers = existing_file(dir, raw.allowed_signers, "allowed_signers", "repo", sink);
    let gpg_keyring = existing_file(dir, raw.gpg_keyring, "gpg_keyring", "repo", sink);
    if require_signed_commits
        && raw_path_unset(&allowed_signers, dropped, "repo.allowed_signers")
        && raw_path_unset(&gpg_keyring, dropped, "repo.gpg_keyring")
    {
        sink.push(ConfigErrorKind::NoSignatureTrust);
    }

    RepoConfig {
        url,
        branch,
        config_path_template,
        schema_path_template,
        checkout_dir,
        history_depth: u32::try_from(history_depth).unwrap_or(u32::MAX),
        max_staleness: Duration::from_secs(max_staleness_s),
        require_signed_commits,
        allowed_signers,
        gpg_keyring,
    }
}

/// Whether a path key is absent; one that was set (even to a missing file, already
/// reported) or dropped for its type counts as set, so nothing is reported twice.
fn raw_path_unset(value: &Option<PathBuf>, dropped: &BTreeSet<String>, key: &str) -> bool {
    value.is_none() && !dropped.contains(key)
}

/// `[repo].url`: a URL with a scheme is kept as written; anything else is a local
/// path, resolved against the config file's folder.
fn repo_url(url: &str, dir: &Path) -> Result<String, RepoUrlError> {
    if url.is_empty() {
        return Err(RepoUrlError::Empty);
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !REPO_URL_SCHEMES.contains(&scheme) {
            return Err(RepoUrlError::UnknownScheme {
                scheme: scheme.to_owned(),
            });
        }
        if rest.is_empty() {
            return Err(RepoUrlError::NoRepository {
                scheme: scheme.to_owned(),
            });
        }
        return Ok(url.to_owned());
    }
    // `git@host:org/repo` looks like a relative path but is scp-style SSH; resolving
    // it as a folder would fail far from here, so ask for the explicit form.
    if let Some(colon) = url.find(':')
        && !url[..colon].contains('/')
        && url[..colon].contains('@')
    {
        return Err(RepoUrlError::ScpStyle {
            redacted: redact_url_credentials(url),
            ssh_redacted: redact_url_credentials(&url.replacen(':', "/", 1)),
        });
    }
    Ok(resolve(dir, url).to_string_lossy().into_owned())
}

/// Checks `[repo].config_path` once, so a wrong template is one error and not one
/// per bot. Returns whether bots may use it.
pub(super) fn check_config_path_template(template: &str, sink: &mut Sink<'_>) -> bool {
    let problem = if !template.contains("{slug}") {
        Some(PathProblem::NoSlug)
    } else if Format::from_path(template).is_none() {
        Some(PathProblem::UnknownFormat)
    } else {
        repo_path(&template.replace("{slug}", "x")).err()
    };
    match problem {
        Some(problem) => {
            sink.push(ConfigErrorKind::RepoPathTemplate {
                key: "config_path",
                template: template.to_owned(),
                problem,
            });
            false
        }
        None => true,
    }
}

/// Normalises a path inside the repo's tree: `.` and empty segments dropped, `..`
/// applied; the result is `/`-separated with no leading `/`. Fails only with
/// `Absolute`, `Escapes` or `Empty`.
pub(super) fn repo_path(path: &str) -> Result<String, PathProblem> {
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(PathProblem::Escapes)?;
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(PathProblem::Empty);
    }
    Ok(parts.join("/"))
}
