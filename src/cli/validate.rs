//! `validate --config FILE`: every warning on stderr, a one-line summary on stdout.

use std::path::Path;

use super::{exit, load_config};

pub fn run(path: &Path) -> anyhow::Result<u8> {
    let Some(config) = load_config(path) else {
        return Ok(exit::ERROR);
    };
    // The config cannot know whether a local repository is there (it opens
    // nothing); every check would say so, so say it now.
    if let Some(problem) = crate::repo::local_repository_problem(&config.repo.url) {
        eprintln!(
            "warning: {}: [repo].url: {problem}; every bot will be UNKNOWN repo_unreachable until it is",
            path.display()
        );
    }
    println!(
        "{}: ok: {} bot{}, branch {} of {}, mode {}, every {} min",
        path.display(),
        config.bots.len(),
        if config.bots.len() == 1 { "" } else { "s" },
        config.repo.branch,
        config.repo.url_redacted(),
        config.mode.as_str(),
        config.check_interval.as_secs() / 60,
    );
    Ok(exit::OK)
}
