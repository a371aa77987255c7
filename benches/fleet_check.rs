//! A full `check` of a generated 10,000-bot fleet: a real Git repo (mixed JSON,
//! YAML and TOML, one shared schema), running configs served over loopback
//! keep-alive HTTP, a known drift set. Prints wall time, peak RSS of the `check`
//! process, and its false positives/negatives (which must be 0).
//!
//! `cargo bench --bench fleet_check` (BOTS=N to change the fleet size)

#[path = "../tests/support/bots.rs"]
#[allow(dead_code)]
mod bots;
#[path = "../tests/support/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Commits every file under `dir` as one commit on a new `main` (git2: no `git`
/// command needed).
fn commit_all(dir: &Path, message: &str) {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = git2::Repository::init_opts(dir, &opts).expect("git init");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let who = git2::Signature::now("bench", "bench@example.invalid").expect("signature");
    repo.commit(Some("HEAD"), &who, &who, message, &tree, &[])
        .expect("commit");
}

fn peak_rss_of_children_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    }
}

fn main() {
    let count: usize = std::env::var("BOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let work = tempfile::tempdir().expect("tmp");
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join("bots")).expect("mkdir");
    std::fs::create_dir_all(repo.join("schemas")).expect("mkdir");

    let generated = fleet::generate(count, 20, 2026);
    let server = bots::BotServer::start();
    std::fs::write(repo.join("schemas/fleet.schema.json"), fleet::SCHEMA).expect("schema");
    let mut config = format!(
        "[state]\npath = \"state/db\"\n[server]\nlisten = \"{}\"\n[repo]\nurl = {:?}\nschema_path = \"schemas/fleet.schema.json\"\ncheckout_dir = \"state/repo\"\n[runtime]\nmax_in_flight = 32\n\n",
        agent_addr(),
        repo.to_str().expect("utf8")
    );
    for bot in &generated {
        let path = format!("bots/{}.{}", bot.slug, bot.format.ext());
        std::fs::write(repo.join(&path), &bot.committed_text).expect("write");
        let route = format!("/{}", bot.slug);
        server.set(&route, bots::Reply::Json(bot.running_json.clone()));
        config.push_str(&format!(
            "[[bots]]\nslug = {:?}\nruntime = {:?}\nconfig_path = {path:?}\n\n",
            bot.slug,
            server.url(&route)
        ));
    }
    commit_all(&repo, "fleet");
    let cfg = work.path().join("config.toml");
    std::fs::write(&cfg, config).expect("config");
    let expected: BTreeMap<&str, &BTreeSet<String>> = generated
        .iter()
        .map(|b| (b.slug.as_str(), &b.expected))
        .collect();
    let drifting = expected.values().filter(|e| !e.is_empty()).count();
    println!("fleet: {count} bots (JSON/YAML/TOML, shared schema), {drifting} with known drifts");

    for run in [
        "first check (clones the repo)",
        "second check (fetch, nothing new)",
    ] {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_config-drift-detector"))
            .args([
                "check",
                "--config",
                cfg.to_str().expect("utf8"),
                "--format",
                "json",
            ])
            .current_dir(work.path())
            .env("RUST_LOG", "config_drift_detector=debug")
            .output()
            .expect("check runs");
        let wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (mut fp, mut fneg, mut unknown) = (0usize, 0usize, 0usize);
        let mut reports = 0usize;
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: serde_json::Value = serde_json::from_str(line).expect("JSON");
            reports += 1;
            if r["status"] == "UNKNOWN" {
                unknown += 1;
                let why = format!("{} ({})", r["unknown_reason"], r["detail"]);
                *reasons.entry(why).or_insert(0usize) += 1;
                continue;
            }
            let slug = r["bot_slug"].as_str().unwrap_or("");
            let got: BTreeSet<String> = r["drifts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["field"].as_str().unwrap_or("").to_owned())
                .collect();
            let want = expected.get(slug).copied().cloned().unwrap_or_default();
            fp += got.difference(&want).count();
            fneg += want.difference(&got).count();
        }
        println!(
            "{run}: wall {:.3} s, peak RSS {} MiB, {reports} reports, {unknown} unknown, false positives {fp}, false negatives {fneg}  [{}]",
            wall.as_secs_f64(),
            peak_rss_of_children_kib() / 1024,
            stderr.lines().last().unwrap_or("").trim()
        );
        for line in stderr.lines().filter(|l| l.contains("DEBUG")) {
            println!("  {}", line.split("DEBUG").nth(1).unwrap_or(line).trim());
        }
        for (why, n) in &reasons {
            println!("  UNKNOWN x{n}: {why}");
        }
        assert_eq!(reports, count);
        assert_eq!(
            (fp, fneg, unknown),
            (0, 0, 0),
            "the fleet check must be exact"
        );
    }
    agent_checks(&cfg, work.path(), count, drifting);
}

/// The agent (`run`) on the same fleet: its checks keep committed configs cached
/// and write every bot's state to sled, so its steady state differs from `check`.
fn agent_checks(cfg: &Path, dir: &Path, count: usize, drifting: usize) {
    let text = std::fs::read_to_string(cfg).expect("config");
    let addr: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .expect("listen address");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_config-drift-detector"))
        .args(["run", "--config", cfg.to_str().expect("utf8")])
        .args(["--check-interval", "3s"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run starts");
    let mut previous = (0.0, 0.0);
    let mut durations = Vec::new();
    while durations.len() < 5 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "the agent did not finish 5 checks in 300 s"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(50));
        let Some(page) = get(addr, "/metrics") else {
            continue;
        };
        let count_now = value(&page, "drift_check_duration_seconds_count").unwrap_or(0.0);
        let sum_now = value(&page, "drift_check_duration_seconds_sum").unwrap_or(0.0);
        if count_now > previous.0 {
            let in_drift = page
                .lines()
                .filter(|l| l.starts_with("bots_in_drift{") && l.ends_with(" 1"))
                .count();
            assert_eq!(in_drift, drifting, "the agent's drift count must be exact");
            durations.push((sum_now - previous.1) / (count_now - previous.0));
            previous = (count_now, sum_now);
        }
    }
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let stopping = Instant::now();
    let status = child.wait().expect("run exits");
    let state_bytes = dir_size(&dir.join("state/db"));
    println!(
        "agent `run`, {count} bots: check durations {} s (first = cold caches), peak RSS {hwm}, state database {} MiB, SIGTERM to exit {:.2} s ({status})",
        durations
            .iter()
            .map(|d| format!("{d:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        state_bytes / (1024 * 1024),
        stopping.elapsed().as_secs_f64()
    );
}

fn agent_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
