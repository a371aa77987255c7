//! Fixture Git repos made with real commits through the `git` command.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct FixtureRepo {
    pub dir: tempfile::TempDir,
}

impl FixtureRepo {
    pub fn new() -> FixtureRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = FixtureRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "Ada Lovelace")
            .env("GIT_AUTHOR_EMAIL", "ada@example.invalid")
            .env("GIT_COMMITTER_NAME", "Ada Lovelace")
            .env("GIT_COMMITTER_EMAIL", "ada@example.invalid")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn write(&self, path: &str, contents: &str) -> &Self {
        let p = self.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, contents).expect("write");
        self
    }

    /// Commits everything; returns the new commit's sha.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn checkout(&self, branch: &str, create: bool) {
        if create {
            self.git(&["checkout", "-q", "-b", branch]);
        } else {
            self.git(&["checkout", "-q", branch]);
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
