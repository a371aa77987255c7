//! Git repos made with real commits through git2 (no `git` command needed: the
//! tests run where only the Rust toolchain is installed). Two kinds, for two
//! kinds of test:
//! - [`FixtureRepo`], a repo with a work tree that the black-box tests write
//!   files into and commit, and the agent clones by path;
//! - [`Origin`], a bare repo whose branches get commits built tree by tree
//!   (symlinks, submodules, signatures, a fixed clock), for the `repo` module's
//!   own tests, with a [`RepoConfig`] pointing at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config_drift_detector::config::RepoConfig;
use git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use git2::{BranchType, FileMode, IndexAddOption, Oid, Repository, Signature, Time};

use super::temp_dir;

pub struct FixtureRepo {
    pub dir: tempfile::TempDir,
}

impl FixtureRepo {
    pub fn new() -> FixtureRepo {
        let dir = temp_dir();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        Repository::init_opts(dir.path(), &opts).expect("git init");
        FixtureRepo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn open(&self) -> Repository {
        Repository::open(self.path()).expect("the fixture repo opens")
    }

    pub fn write(&self, path: &str, contents: &str) -> &Self {
        let p = self.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, contents).expect("write");
        self
    }

    /// Commits everything in the work tree, deletions included (like `git add -A`
    /// and `git commit --allow-empty`); returns the new commit's sha.
    pub fn commit(&self, message: &str) -> String {
        let repo = self.open();
        let mut index = repo.index().expect("index");
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
            .expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("index written");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let who = Signature::now("Ada Lovelace", "ada@example.invalid").expect("signature");
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &who, &who, message, &tree, &parents)
            .expect("commit")
            .to_string()
    }

    pub fn head(&self) -> String {
        self.open()
            .head()
            .and_then(|h| h.peel_to_commit())
            .expect("a head commit")
            .id()
            .to_string()
    }

    /// Switches the work tree to `branch`, creating it at HEAD when `create`.
    pub fn checkout(&self, branch: &str, create: bool) {
        let repo = self.open();
        if create {
            let head = repo
                .head()
                .and_then(|h| h.peel_to_commit())
                .expect("a head commit");
            repo.branch(branch, &head, false).expect("branch created");
        }
        repo.set_head(&format!("refs/heads/{branch}"))
            .expect("HEAD set");
        repo.checkout_head(Some(CheckoutBuilder::new().force()))
            .expect("checkout");
    }

    /// Renames a branch (HEAD follows when it named it), like `git branch -m`.
    pub fn rename_branch(&self, from: &str, to: &str) {
        let repo = self.open();
        let on_it = repo
            .head()
            .ok()
            .and_then(|h| h.shorthand().ok().map(str::to_owned))
            .as_deref()
            == Some(from);
        repo.find_branch(from, BranchType::Local)
            .expect("branch")
            .rename(to, false)
            .expect("renamed");
        if on_it {
            repo.set_head(&format!("refs/heads/{to}"))
                .expect("HEAD set");
        }
    }

    /// Moves the repo away (the "blocked repo" failure injection); returns where.
    pub fn block(&self) -> PathBuf {
        let away = self.path().with_extension("blocked");
        std::fs::rename(self.path(), &away).expect("rename");
        away
    }

    pub fn unblock(&self, away: &Path) {
        std::fs::rename(away, self.path()).expect("rename back");
    }
}

// ---------------------------------------------------------------------------
// A bare origin

/// What [`Origin::commit_signed`] writes as the `gpgsig` header: well-formed,
/// not a real signature.
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
        let temp = temp_dir();
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
