//! `diff --repo URL REV:PATH` (§2): reads one file at any revision of a
//! repository named on the command line — a local repository opened in place, or
//! a remote one fetched into a temporary bare clone that is removed afterwards.
//! Independent of the agent's clone and its lock; reads objects, never a work tree.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::path::Path;

use git2::{
    AutotagOption, Direction, ErrorCode, FetchOptions, Oid, Repository, RepositoryInitOptions,
    RepositoryOpenFlags,
};

use super::RepoReadError;
use super::fetch::{self, AuthAttempts};
use super::tree::Slot;
use crate::config::redact_url_credentials;

/// One repository opened for reading files at revisions. Open it once and read
/// every `REV:PATH` of a command through it (a remote is fetched once).
pub struct RevReader {
    // Declared before `_temp` so the repository closes before its folder goes.
    git: Repository,
    /// The repository as named, credentials redacted.
    name: String,
    _temp: Option<tempfile::TempDir>,
}

/// Reads `PATH` at `REV` of a repository: the file's bytes and the commit's hex id.
pub fn read_rev_path(
    url_or_path: &str,
    rev: &str,
    path: &str,
) -> Result<(Vec<u8>, String), RepoReadError> {
    RevReader::open(url_or_path)?.read(rev, path)
}

impl RevReader {
    /// A path that exists is opened in place (work tree or bare, found the way
    /// `git -C` finds it); `scheme://…` URLs and `host:path` are fetched.
    pub fn open(url_or_path: &str) -> Result<RevReader, RepoReadError> {
        let name = redact_url_credentials(url_or_path);
        if Path::new(url_or_path).exists() || !looks_remote(url_or_path) {
            let git =
                Repository::open_ext(url_or_path, RepositoryOpenFlags::empty(), [] as [&OsStr; 0])
                    .map_err(|e| RepoReadError::Open {
                        repo: name.clone(),
                        message: e.message().to_owned(),
                    })?;
            return Ok(RevReader {
                git,
                name,
                _temp: None,
            });
        }
        super::set_network_timeouts();
        let failed = |e: git2::Error, attempts: &RefCell<AuthAttempts>| RepoReadError::Fetch {
            repo: name.clone(),
            message: fetch::scrub(&fetch::explain(&e, attempts), url_or_path, &name),
        };
        let attempts = RefCell::new(AuthAttempts::default());
        let temp = tempfile::Builder::new()
            .prefix("config-drift-detector-diff-")
            .tempdir()
            .map_err(|e| RepoReadError::Fetch {
                repo: name.clone(),
                message: format!("cannot create a temporary folder: {e}"),
            })?;
        let mut options = RepositoryInitOptions::new();
        options.bare(true);
        let git = Repository::init_opts(temp.path(), &options).map_err(|e| failed(e, &attempts))?;
        clone_refs(&git, url_or_path, &attempts).map_err(|e| failed(e, &attempts))?;
        Ok(RevReader {
            git,
            name,
            _temp: Some(temp),
        })
    }

    /// Resolves `rev` (branch, tag, sha, `HEAD~1`, …) to a commit and reads the
    /// file at `path` in its tree. A symlink, folder or submodule there is an
    /// error: its blob is not a config.
    pub fn read(&self, rev: &str, path: &str) -> Result<(Vec<u8>, String), RepoReadError> {
        let not_found = |e: git2::Error| RepoReadError::RevNotFound {
            repo: self.name.clone(),
            rev: rev.to_owned(),
            message: e.message().to_owned(),
        };
        let commit = self
            .git
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(not_found)?;
        let missing = || RepoReadError::PathNotFound {
            repo: self.name.clone(),
            rev: rev.to_owned(),
            path: path.to_owned(),
        };
        if path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(missing());
        }
        let object_error = |id: String, e: git2::Error| RepoReadError::Object {
            repo: self.name.clone(),
            id,
            message: e.message().to_owned(),
        };
        let tree = commit
            .tree()
            .map_err(|e| object_error(commit.id().to_string(), e))?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Err(missing()),
            Err(e) => return Err(object_error(commit.id().to_string(), e)),
        };
        let slot = Slot {
            id: entry.id(),
            mode: entry.filemode(),
        };
        if let Some(kind) = slot.not_a_file() {
            return Err(RepoReadError::NotAFile {
                repo: self.name.clone(),
                rev: rev.to_owned(),
                path: path.to_owned(),
                kind,
            });
        }
        let blob = self
            .git
            .find_blob(slot.id)
            .map_err(|e| object_error(slot.id.to_string(), e))?;
        Ok((blob.content().to_vec(), commit.id().to_string()))
    }
}

/// `scheme://…`, or scp-like `[user@]host:path` (no `/` before the colon).
fn looks_remote(s: &str) -> bool {
    s.contains("://")
        || s.split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// Fetches every branch and tag of `url` under their own names, and points HEAD
/// at the remote's default branch, so revisions resolve as in the original.
fn clone_refs(
    git: &Repository,
    url: &str,
    attempts: &RefCell<AuthAttempts>,
) -> Result<(), git2::Error> {
    let mut remote = git.remote_anonymous(url)?;
    let mut connection =
        remote.connect_auth(Direction::Fetch, Some(fetch::callbacks(attempts)), None)?;
    let refs: Vec<(String, Oid)> = connection
        .list()?
        .iter()
        .filter(|h| {
            (h.name().starts_with("refs/heads/") || h.name().starts_with("refs/tags/"))
                && !h.name().ends_with("^{}")
        })
        .map(|h| (h.name().to_owned(), h.oid()))
        .collect();
    let default_branch = connection
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_owned));
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(fetch::callbacks(attempts))
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    connection.remote().download(
        &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
        Some(&mut options),
    )?;
    drop(connection);
    for (name, id) in refs {
        git.reference(&name, id, true, "config-drift-detector: diff --repo")?;
    }
    if let Some(branch) = default_branch {
        git.set_head(&branch)?;
    }
    Ok(())
}
