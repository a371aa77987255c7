//! A small fleet for black-box agent tests: a fixture repo with every bot's
//! committed config, a loopback bot server serving the same configs, a temp dir
//! for the agent's config and state, and a loopback address for its HTTP server.
//! Shared by tests/agent_run.rs and tests/agent_telemetry.rs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::agent::AgentProcess;
use super::bots::{BotServer, Reply, admin_edit};
use super::origin::FixtureRepo;
use super::{free_addr, temp_dir};

/// What every bot of a new fleet runs and has committed.
pub const SYNCED: &str = r#"{"limit": 10, "mode": "safe", "venues": ["a", "b"]}"#;

/// [`SYNCED`] with another `limit`: a one-field drift.
pub fn with_limit(limit: u32) -> String {
    format!(r#"{{"limit": {limit}, "mode": "safe", "venues": ["a", "b"]}}"#)
}

/// A repo, bots serving what is committed, and a config for them.
pub struct Fleet {
    pub repo: FixtureRepo,
    pub bots: BotServer,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Fleet {
    pub fn new(slugs: &[&str]) -> Fleet {
        let repo = FixtureRepo::new();
        let bots = BotServer::start();
        for slug in slugs {
            repo.write(&format!("bots/{slug}.json"), SYNCED);
            bots.set(&format!("/{slug}"), Reply::Json(SYNCED.into()));
        }
        repo.commit("initial configs");
        Fleet {
            repo,
            bots,
            dir: temp_dir(),
            addr: free_addr(),
        }
    }

    /// Writes the config: `top` at the top level, `repo_extra` inside [repo].
    pub fn config(&self, slugs: &[&str], top: &str, repo_extra: &str) -> PathBuf {
        let bots: String = slugs
            .iter()
            .map(|s| Self::bot_entry(s, &self.bots.url(&format!("/{s}"))))
            .collect();
        self.write_config(top, repo_extra, &bots)
    }

    /// One `[[bots]]` table.
    pub fn bot_entry(slug: &str, runtime: &str) -> String {
        format!("[[bots]]\nslug = {slug:?}\nruntime = {runtime:?}\n\n")
    }

    pub fn write_config(&self, top: &str, repo_extra: &str, bots: &str) -> PathBuf {
        let text = format!(
            "{top}\n[repo]\nurl = {:?}\nbranch = \"main\"\nconfig_path = \"bots/{{slug}}.json\"\ncheckout_dir = \"state/repo\"\n{repo_extra}\n[state]\npath = \"state/db\"\n[server]\nlisten = \"{}\"\n\n{bots}",
            self.repo.path().display().to_string(),
            self.addr
        );
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, text).expect("config written");
        path
    }

    pub fn start(&self, config: &Path, interval: &str) -> AgentProcess {
        self.start_with_env(config, interval, &[])
    }

    /// As [`Fleet::start`], with `env` added to the agent's environment (where
    /// `OTEL_*` variables go).
    pub fn start_with_env(
        &self,
        config: &Path,
        interval: &str,
        env: &[(&str, &str)],
    ) -> AgentProcess {
        AgentProcess::start(config, self.addr, &["--check-interval", interval], env)
    }

    /// A live edit of `slug`'s running config through the bot's admin endpoint.
    pub fn edit(&self, slug: &str, config: &str) {
        admin_edit(self.bots.addr, &format!("/{slug}"), config);
    }

    pub fn state_db(&self) -> PathBuf {
        self.dir.path().join("state/db")
    }
}
