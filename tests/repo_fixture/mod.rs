//! Real Git repositories for the `repo` tests: a bare "origin" whose branches get
//! real commits (git2, no work tree), and a `RepoConfig` pointing at it.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use config_drift_detector::config::RepoConfig;
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, Oid, Repository, Signature, Time};

pub const FAKE_SSH_SIGNATURE: &str =
    "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----";

/// One change to a tree: a file's content, a symlink, or a removal.
pub enum Change<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Submodule(&'a str, Oid),
    Remove(&'a str),
}

pub struct Origin {
    pub temp: tempfile::TempDir,
    pub path: PathBuf,
    pub git: Repository,
    clock: std::cell::Cell<i64>,
}

impl Origin {
    pub fn new() -> Origin {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("origin.git");
        let git = Repository::init_bare(&path).unwrap();
        Origin {
            temp,
            path,
            git,
            clock: std::cell::Cell::new(1_700_000_000),
        }
    }

    pub fn url(&self) -> String {
        self.path.to_str().unwrap().to_owned()
    }

    /// A config for a checkout beside the origin.
    pub fn config(&self, branch: &str) -> RepoConfig {
        repo_config(&self.url(), branch, &self.temp.path().join("checkout"))
    }

    fn signature(&self, author: &str) -> Signature<'static> {
        let t = self.clock.get() + 60;
        self.clock.set(t);
        Signature::new(author, "dev@example.invalid", &Time::new(t, 0)).unwrap()
    }

    pub fn head(&self, branch: &str) -> Option<Oid> {
        self.git.refname_to_id(&format!("refs/heads/{branch}")).ok()
    }

    fn tree_with(&self, branch: &str, changes: &[Change<'_>]) -> (Oid, Vec<Oid>) {
        let parent = self.head(branch);
        let base = match parent {
            Some(p) => self.git.find_commit(p).unwrap().tree().unwrap(),
            None => {
                let empty = self.git.treebuilder(None).unwrap().write().unwrap();
                self.git.find_tree(empty).unwrap()
            }
        };
        let mut update = TreeUpdateBuilder::new();
        for change in changes {
            match change {
                Change::File(path, data) => {
                    let blob = self.git.blob(data).unwrap();
                    update.upsert(*path, blob, FileMode::Blob);
                }
                Change::Symlink(path, target) => {
                    let blob = self.git.blob(target.as_bytes()).unwrap();
                    update.upsert(*path, blob, FileMode::Link);
                }
                Change::Submodule(path, commit) => {
                    update.upsert(*path, *commit, FileMode::Commit);
                }
                Change::Remove(path) => {
                    update.remove(*path);
                }
            }
        }
        let tree = update.create_updated(&self.git, &base).unwrap();
        (tree, parent.into_iter().collect())
    }

    /// Commits `changes` on top of `branch` (creating it as an orphan if absent).
    pub fn commit(&self, branch: &str, changes: &[Change<'_>], message: &str) -> Oid {
        self.commit_by(branch, changes, message, "Alice")
    }

    pub fn commit_by(
        &self,
        branch: &str,
        changes: &[Change<'_>],
        message: &str,
        author: &str,
    ) -> Oid {
        let (tree, parents) = self.tree_with(branch, changes);
        let tree = self.git.find_tree(tree).unwrap();
        let parents: Vec<_> = parents
            .iter()
            .map(|p| self.git.find_commit(*p).unwrap())
            .collect();
        let parent_refs: Vec<_> = parents.iter().collect();
        let sig = self.signature(author);
        self.git
            .commit(
                Some(&format!("refs/heads/{branch}")),
                &sig,
                &sig,
                message,
                &tree,
                &parent_refs,
            )
            .unwrap()
    }

    /// Like `commit`, with a `gpgsig` header (any text: verification comes later).
    pub fn commit_signed(&self, branch: &str, changes: &[Change<'_>], message: &str) -> Oid {
        let (tree, parents) = self.tree_with(branch, changes);
        let tree = self.git.find_tree(tree).unwrap();
        let parents: Vec<_> = parents
            .iter()
            .map(|p| self.git.find_commit(*p).unwrap())
            .collect();
        let parent_refs: Vec<_> = parents.iter().collect();
        let sig = self.signature("Signer");
        let buffer = self
            .git
            .commit_create_buffer(&sig, &sig, message, &tree, &parent_refs)
            .unwrap();
        let id = self
            .git
            .commit_signed(buffer.as_str().unwrap(), FAKE_SSH_SIGNATURE, None)
            .unwrap();
        self.git
            .reference(&format!("refs/heads/{branch}"), id, true, "signed")
            .unwrap();
        id
    }

    pub fn delete_branch(&self, branch: &str) {
        self.git
            .find_reference(&format!("refs/heads/{branch}"))
            .unwrap()
            .delete()
            .unwrap();
    }

    pub fn blob_id(data: &[u8]) -> String {
        Oid::hash_object(git2::ObjectType::Blob, data)
            .unwrap()
            .to_string()
    }
}

pub fn repo_config(url: &str, branch: &str, checkout: &Path) -> RepoConfig {
    RepoConfig {
        url: url.to_owned(),
        branch: branch.to_owned(),
        config_path_template: "bots/{slug}.yaml".to_owned(),
        schema_path_template: None,
        checkout_dir: checkout.to_owned(),
        history_depth: 500,
        max_staleness: Duration::from_secs(900),
        require_signed_commits: false,
        allowed_signers: None,
        gpg_keyring: None,
    }
}
