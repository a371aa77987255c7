//! `matches_commit` (§7): which past revision of a drifting bot's file the
//! running config equals, or comes closest to, within the check's share of the
//! latency budget.
//!
//! Owns the search over the first-parent versions the repo lists and the rule
//! that picks one ([`pick`]: pure, so its ties and stops are unit tests). It
//! must not change a report's status or read past the deadline; a version it
//! cannot canonicalise is no candidate, never an error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::canon::ParseLimits;
use crate::canon::canonical::{CanonOptions, Canonical};
use crate::canon::secret::SecretKey;
use crate::config::{Bot, Config};
use crate::diff::{DiffOptions, diff};
use crate::repo::{FileVersion, RepoSession, Snapshot};
use crate::report::{MatchSkipped, MatchesCommit};

use super::committed::{BlobPair, CommittedSide, CompiledSchema, committed_side, compile_schema};

/// The bot file's past versions, canonicalised at most once per blob pair per
/// check and reusing what the check itself already canonicalised.
pub(super) struct History<'a> {
    pub config: &'a Config,
    pub key: &'a SecretKey,
    pub committed: &'a HashMap<BlobPair, Arc<CommittedSide>>,
    pub schemas: &'a HashMap<String, CompiledSchema>,
    pub seen: HashMap<BlobPair, Arc<CommittedSide>>,
}

/// How one past version compares with the running config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Score {
    /// This many fields differ (0: an exact match).
    Differing(usize),
    /// It has no config file there, or it does not canonicalise: no candidate.
    Unusable,
    /// The budget ran out before it was compared.
    OutOfBudget,
}

impl History<'_> {
    pub(super) fn find_match(
        &mut self,
        repo: &mut RepoSession<'_>,
        snapshot: &Snapshot,
        bot: &Bot,
        running: &Canonical,
        deadline: Instant,
    ) -> MatchesCommit {
        if Instant::now() >= deadline {
            return skipped(MatchSkipped::Budget);
        }
        let Ok(versions) =
            repo.file_versions(snapshot, &bot.config_path, bot.schema_path.as_deref())
        else {
            return skipped(MatchSkipped::HistoryUnreadable);
        };
        let tolerance = DiffOptions {
            tolerance: self.config.tolerance.clone(),
        };
        pick(&versions, |version| {
            if Instant::now() >= deadline {
                return Score::OutOfBudget;
            }
            let Some(config_blob) = &version.config_blob else {
                return Score::Unusable;
            };
            let pair = BlobPair {
                config: config_blob.clone(),
                schema: bot.schema_path.as_ref().and(version.schema_blob.clone()),
            };
            let side = self.version(repo, bot, pair);
            match side.as_ref() {
                CommittedSide::Ready { canonical, .. } => {
                    Score::Differing(diff(running, canonical, &tolerance).drifts.len())
                }
                CommittedSide::Invalid(_) => Score::Unusable,
            }
        })
    }

    fn version(&mut self, repo: &RepoSession<'_>, bot: &Bot, pair: BlobPair) -> Arc<CommittedSide> {
        if let Some(side) = self.committed.get(&pair).or_else(|| self.seen.get(&pair)) {
            return Arc::clone(side);
        }
        let limits = ParseLimits {
            max_bytes: self.config.runtime.max_body_bytes,
        };
        let opts = CanonOptions {
            ignore_fields: &self.config.ignore_fields,
            secret_key: self.key,
        };
        let schema = match (&bot.schema_path, &pair.schema) {
            (Some(path), Some(id)) => Some(match self.schemas.get(id) {
                Some(compiled) => Arc::clone(compiled),
                None => Arc::new(compile_schema(
                    path,
                    repo.read_blob(id).ok().as_deref(),
                    &limits,
                )),
            }),
            _ => None,
        };
        let bytes = repo.read_blob(&pair.config).ok();
        let side = Arc::new(committed_side(
            &bot.config_path,
            bytes.as_deref(),
            schema.as_deref(),
            &limits,
            &opts,
        ));
        self.seen.insert(pair, Arc::clone(&side));
        side
    }
}

fn skipped(why: MatchSkipped) -> MatchesCommit {
    MatchesCommit::Skipped { skipped: why }
}

/// Scores `versions` (newest first) until one matches exactly and picks: the
/// exact one, else the fewest differing fields, ties to the newest. The budget
/// running out skips the whole match (`{"skipped": "budget"}`), even with a
/// candidate in hand.
pub(super) fn pick(
    versions: &[FileVersion],
    mut score: impl FnMut(&FileVersion) -> Score,
) -> MatchesCommit {
    let mut best: Option<(usize, &FileVersion)> = None;
    for version in versions {
        let differing = match score(version) {
            Score::OutOfBudget => return skipped(MatchSkipped::Budget),
            Score::Unusable => continue,
            Score::Differing(n) => n,
        };
        if best.is_none_or(|(d, _)| differing < d) {
            best = Some((differing, version));
        }
        if differing == 0 {
            break;
        }
    }
    match best {
        Some((differing, v)) => MatchesCommit::Found {
            commit: v.commit.clone(),
            committed_at_ms: v.committed_at_ms,
            author: v.author.clone(),
            summary: v.summary.clone(),
            commits_behind: v.commits_behind,
            exact: differing == 0,
            differing_fields: (differing > 0).then_some(differing as u64),
        },
        None => skipped(MatchSkipped::HistoryUnreadable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions newest first, `commits_behind` counting up as the real listing does.
    fn versions(n: usize) -> Vec<FileVersion> {
        (0..n)
            .map(|i| FileVersion {
                commit: format!("c{i}"),
                committed_at_ms: 1_000 - i as i64,
                author: format!("author {i}"),
                summary: format!("change {i}"),
                config_blob: Some(format!("blob{i}")),
                schema_blob: None,
                commits_behind: i as u64,
            })
            .collect()
    }

    /// Picks with canned scores, one per version; returns what was scored too.
    fn pick_with(scores: &[Score]) -> (MatchesCommit, Vec<String>) {
        let vs = versions(scores.len());
        let mut scored = Vec::new();
        let found = pick(&vs, |v| {
            scored.push(v.commit.clone());
            scores[scored.len() - 1]
        });
        (found, scored)
    }

    fn found(commit: &str, i: u64, exact: bool, differing: Option<u64>) -> MatchesCommit {
        MatchesCommit::Found {
            commit: commit.into(),
            committed_at_ms: 1_000 - i as i64,
            author: format!("author {i}"),
            summary: format!("change {i}"),
            commits_behind: i,
            exact,
            differing_fields: differing,
        }
    }

    #[test]
    fn exact_match_wins_and_stops_the_search() {
        use Score::Differing;
        let (m, scored) = pick_with(&[Differing(2), Differing(0), Differing(0)]);
        assert_eq!(m, found("c1", 1, true, None));
        assert_eq!(scored, ["c0", "c1"], "older versions are never read");
    }

    #[test]
    fn without_an_exact_match_the_closest_wins_ties_to_the_newest() {
        use Score::Differing;
        let (m, scored) = pick_with(&[Differing(3), Differing(1), Differing(1), Differing(2)]);
        assert_eq!(m, found("c1", 1, false, Some(1)));
        assert_eq!(scored.len(), 4, "every version is compared");
    }

    #[test]
    fn unusable_versions_are_passed_over() {
        let (m, _) = pick_with(&[Score::Unusable, Score::Differing(4), Score::Unusable]);
        assert_eq!(m, found("c1", 1, false, Some(4)));
    }

    #[test]
    fn running_out_of_budget_skips_the_match_even_with_a_candidate() {
        let (m, scored) =
            pick_with(&[Score::Differing(1), Score::OutOfBudget, Score::Differing(0)]);
        assert_eq!(
            m,
            MatchesCommit::Skipped {
                skipped: MatchSkipped::Budget
            }
        );
        assert_eq!(scored.len(), 2);
    }

    #[test]
    fn no_usable_version_is_history_unreadable() {
        let unreadable = MatchesCommit::Skipped {
            skipped: MatchSkipped::HistoryUnreadable,
        };
        assert_eq!(pick_with(&[Score::Unusable, Score::Unusable]).0, unreadable);
        assert_eq!(pick_with(&[]).0, unreadable);
    }
}
