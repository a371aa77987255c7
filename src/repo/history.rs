//! The branch's first-parent history within `history_depth`, for
//! `content_signature` (§5) and `matches_commit` (§7). Built once per head commit
//! and kept until the head moves: the commit list, and per requested path the
//! runs of commits holding the same entry. Every commit is diffed against its
//! first parent once for all paths asked together, never once per path.
//! Reads Git objects only; never fetches and never decides trust.

use std::collections::HashMap;

use git2::{Oid, Repository};

use super::tree::{PathTrie, Slot};

/// A commit of the walked history.
#[derive(Clone, Debug)]
pub struct CommitMeta {
    pub id: Oid,
    pub tree: Oid,
    /// Committer time: when the change landed on the branch.
    pub committed_at_ms: i64,
    pub author: String,
    pub summary: String,
}

/// From `start` (an index into the commit list, 0 = head) until the next run's
/// start, the path held `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub start: usize,
    pub slot: Option<Slot>,
}

/// One version of a bot's (config, schema) pair: `start` is the newest commit
/// holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRun {
    pub start: usize,
    pub config: Option<Slot>,
    pub schema: Option<Slot>,
    pub commits_behind: u64,
}

#[derive(Debug)]
pub struct History {
    pub head: Oid,
    pub depth: u32,
    /// Newest first; `commits[0]` is the head.
    pub commits: Vec<CommitMeta>,
    /// Per path: its runs, newest first, the first starting at 0.
    runs: HashMap<String, Vec<Run>>,
}

impl History {
    /// Walks at most `depth` commits along first parents from `head`.
    pub fn walk(git: &Repository, head: Oid, depth: u32) -> Result<History, git2::Error> {
        let limit = depth.max(1) as usize;
        let mut commits = Vec::with_capacity(limit.min(4096));
        let mut next = Some(head);
        while let Some(id) = next {
            if commits.len() == limit {
                break;
            }
            let commit = git.find_commit(id)?;
            commits.push(CommitMeta {
                id,
                tree: commit.tree_id(),
                committed_at_ms: commit.time().seconds().saturating_mul(1000),
                author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
                summary: commit
                    .summary_bytes()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default(),
            });
            next = commit.parent_ids().next();
        }
        Ok(History {
            head,
            depth,
            commits,
            runs: HashMap::new(),
        })
    }

    /// Computes the runs of every path not yet known, all in one pass over the
    /// history.
    pub fn ensure_paths(&mut self, git: &Repository, paths: &[&str]) -> Result<(), git2::Error> {
        let mut missing: Vec<&str> = paths
            .iter()
            .copied()
            .filter(|p| !self.runs.contains_key(*p))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let trie = PathTrie::new(&missing);
        let Some(first) = self.commits.first() else {
            return Ok(());
        };
        let mut newer = git.find_tree(first.tree)?;
        let mut current = trie.lookup(git, &newer)?;
        let mut runs: Vec<Vec<Run>> = current
            .iter()
            .map(|&slot| vec![Run { start: 0, slot }])
            .collect();
        for (index, commit) in self.commits.iter().enumerate().skip(1) {
            if commit.tree == newer.id() {
                continue;
            }
            let older = git.find_tree(commit.tree)?;
            for (path, slot) in trie.changes(git, &newer, &older)? {
                if current[path] != slot {
                    current[path] = slot;
                    runs[path].push(Run { start: index, slot });
                }
            }
            newer = older;
        }
        for (path, path_runs) in missing.into_iter().zip(runs) {
            self.runs.insert(path.to_owned(), path_runs);
        }
        Ok(())
    }

    /// The runs of a path already passed to `ensure_paths`.
    pub fn runs(&self, path: &str) -> &[Run] {
        self.runs.get(path).map_or(&[], Vec::as_slice)
    }

    /// The (config, schema) versions along the history, newest first: one per run
    /// of consecutive commits holding the same pair of entries. Both paths must
    /// have been passed to `ensure_paths`.
    pub fn versions(&self, config: &str, schema: Option<&str>) -> Vec<VersionRun> {
        let config_runs = self.runs(config);
        let schema_runs = schema.map_or(&[][..], |s| self.runs(s));
        let mut starts: Vec<usize> = config_runs
            .iter()
            .chain(schema_runs)
            .map(|r| r.start)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        let at = |runs: &[Run], index: usize| {
            runs.iter()
                .take_while(|r| r.start <= index)
                .last()
                .and_then(|r| r.slot)
        };
        starts
            .into_iter()
            .map(|start| VersionRun {
                start,
                config: at(config_runs, start),
                schema: at(schema_runs, start),
                // A commit at index j changed the config file when its parent
                // (j + 1) starts a new config run; count those newer than `start`.
                commits_behind: config_runs
                    .iter()
                    .filter(|r| r.start > 0 && r.start <= start)
                    .count() as u64,
            })
            .collect()
    }

    /// The index of the commit that last changed `path` as seen from the head:
    /// the oldest commit of the head's run. A path never changed within the depth
    /// yields the oldest walked commit (its true origin lies beyond the window).
    pub fn last_change(&self, path: &str) -> usize {
        let end = self
            .runs(path)
            .get(1)
            .map_or(self.commits.len(), |r| r.start);
        end.saturating_sub(1)
    }
}
