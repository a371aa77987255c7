//! The demo's temporary config repo, made with git2 so the demo needs no `git`
//! binary: real commits on `main`.

use std::path::Path;

use git2::{Repository, Signature};

pub struct DemoRepo {
    repo: Repository,
}

impl DemoRepo {
    pub fn init(dir: &Path) -> Result<DemoRepo, git2::Error> {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        Ok(DemoRepo {
            repo: Repository::init_opts(dir, &opts)?,
        })
    }

    /// Writes `files` (path → contents) into the work tree and commits them on
    /// `main` as `author`; returns the commit's sha.
    pub fn commit(
        &self,
        files: &[(&str, String)],
        author: &str,
        message: &str,
    ) -> Result<String, git2::Error> {
        let root = self
            .repo
            .workdir()
            .ok_or_else(|| git2::Error::from_str("the demo repo has no work tree"))?;
        for (path, contents) in files {
            let full = root.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| git2::Error::from_str(&e.to_string()))?;
            }
            std::fs::write(&full, contents).map_err(|e| git2::Error::from_str(&e.to_string()))?;
        }
        let mut index = self.repo.index()?;
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
        index.write()?;
        let tree = self.repo.find_tree(index.write_tree()?)?;
        let sig = Signature::now(
            author,
            &format!(
                "{}@example.invalid",
                author.to_lowercase().replace(' ', ".")
            ),
        )?;
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let oid = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
        Ok(oid.to_string())
    }
}
