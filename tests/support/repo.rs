//! Fixture Git repos made with real commits through git2 (no `git` command
//! needed: the tests run where only the Rust toolchain is installed).

use std::path::{Path, PathBuf};

use git2::{BranchType, IndexAddOption, Repository, Signature, build::CheckoutBuilder};

pub struct FixtureRepo {
    pub dir: tempfile::TempDir,
}

impl FixtureRepo {
    pub fn new() -> FixtureRepo {
        let dir = tempfile::tempdir().expect("temp dir");
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
