//! `audit verify --config FILE [--server URL]` (§2, §10): walks the audit hash
//! chain from its first entry and names the first entry that does not hold.
//! Exit 0 intact, 2 broken, 1 error.
//!
//! Without `--server` it reads a private copy of the state database, never the
//! database itself, so verifying cannot change what it examines (sled's recovery
//! rewrites a damaged log); while an agent holds it (sled's exclusive lock) that
//! fails, and the error says to ask the agent instead (`--server URL`, the token
//! in `CDD_TOKEN`). A log damaged so that flushed writes are lost is a broken
//! chain (exit 2), named by the byte where the damage starts. The evidence chain
//! is not part of this build yet: only the audit chain is walked.

use std::path::Path;

use crate::api::protocol::Method;
use anyhow::{anyhow, bail};
use clap::Subcommand;

use super::admin::ApiClient;
use super::{exit, load_config};
use crate::latch::audit::Verdict;
use crate::latch::{Damage, StateError, StateStore};

/// A small page cache: verification reads each entry once.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verifies the audit hash chain: exit 0 intact, 2 broken, 1 error.
    #[command(
        after_help = "Exit codes: 0 intact, 2 broken (names the first bad entry), 1 error.\n\
                            Without --server the state database is read from a copy, never changed."
    )]
    Verify {
        /// The agent's config file; its [state].path names the database.
        #[arg(long, value_name = "FILE")]
        config: std::path::PathBuf,
        /// Ask a running agent instead (needed while it holds the state database); the
        /// token comes from CDD_TOKEN.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
}

pub fn run(command: AuditCommand) -> anyhow::Result<u8> {
    match command {
        AuditCommand::Verify { config, server } => verify(&config, server.as_deref()),
    }
}

fn verify(config_path: &Path, server: Option<&str>) -> anyhow::Result<u8> {
    let Some(config) = load_config(config_path) else {
        return Ok(exit::ERROR);
    };
    let verdict = match server {
        Some(url) => remote(url)?,
        None => match local(&config.state.path)? {
            Local::Verdict(v) => v,
            Local::Damaged {
                damage,
                readable,
                head,
            } => {
                let survivors = match readable {
                    0 => "no audit entry can be read".to_owned(),
                    n => format!(
                        "the {n} entries before the damage hold (head {head}), later ones cannot be read"
                    ),
                };
                println!(
                    "audit chain broken: state database {}: {damage}; {survivors}",
                    damage.path.display()
                );
                return Ok(exit::DRIFT);
            }
        },
    };
    match verdict {
        Verdict::Intact {
            entries,
            head,
            pruned_through,
        } => {
            match pruned_through {
                None => println!("audit chain intact: {entries} entries, head {head}"),
                Some(seq) => println!(
                    "audit chain intact: {entries} entries after the retention anchor at entry {seq}, head {head}"
                ),
            }
            Ok(exit::OK)
        }
        Verdict::Broken {
            entry,
            problem,
            intact_before,
        } => {
            println!(
                "audit chain broken at entry {entry}: {problem} ({intact_before} entries before it hold)"
            );
            Ok(exit::DRIFT)
        }
    }
}

/// What the database's own copy says.
enum Local {
    Verdict(Verdict),
    /// Its log is damaged: the entries that survive recovery, and their head.
    Damaged {
        damage: Damage,
        readable: u64,
        head: String,
    },
}

fn local(path: &Path) -> anyhow::Result<Local> {
    if !path.exists() {
        bail!("state database {} does not exist", path.display());
    }
    let store = match StateStore::open_copy(path, CACHE_BYTES) {
        Ok(s) => s,
        Err(StateError::Locked { path }) => bail!(
            "state database {} is held by a running agent; pass --server URL (with the token in CDD_TOKEN) to verify through it",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let verdict = store.verify_audit()?;
    match (store.damage(), verdict) {
        (None, verdict) => Ok(Local::Verdict(verdict)),
        (Some(damage), Verdict::Intact { entries, head, .. }) => Ok(Local::Damaged {
            damage: damage.clone(),
            readable: entries,
            head,
        }),
        // A bad entry before the damage is the first thing that does not hold.
        (Some(_), broken) => Ok(Local::Verdict(broken)),
    }
}

fn remote(url: &str) -> anyhow::Result<Verdict> {
    let client = ApiClient::new(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let text = runtime.block_on(client.call(Method::Get, "/audit/verify", None))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("the agent at {url} answered something that is not JSON ({e})"))?;
    verdict_from(&v["audit"])
        .ok_or_else(|| anyhow!("the agent at {url} answered without an audit verdict"))
}

fn verdict_from(v: &serde_json::Value) -> Option<Verdict> {
    match v["verdict"].as_str()? {
        "intact" => Some(Verdict::Intact {
            entries: v["entries"].as_u64()?,
            head: v["head"].as_str()?.to_owned(),
            pruned_through: v["pruned_through"].as_u64(),
        }),
        "broken" => Some(Verdict::Broken {
            entry: v["entry"].as_u64()?,
            problem: v["problem"].as_str()?.to_owned(),
            intact_before: v["intact_before"].as_u64()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_verdict_reads_back_as_it_was_sent() {
        for verdict in [
            Verdict::Intact {
                entries: 3,
                head: "ab".into(),
                pruned_through: None,
            },
            Verdict::Intact {
                entries: 2,
                head: "cd".into(),
                pruned_through: Some(40),
            },
            Verdict::Broken {
                entry: 2,
                problem: "its checksum does not match its data".into(),
                intact_before: 1,
            },
        ] {
            let sent = serde_json::to_value(&verdict).unwrap();
            assert_eq!(verdict_from(&sent), Some(verdict));
        }
    }
}
