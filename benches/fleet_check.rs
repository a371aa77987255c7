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

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
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
    git(&repo, &["init", "-q", "-b", "main"]);

    let generated = fleet::generate(count, 20, 2026);
    let server = bots::BotServer::start();
    std::fs::write(repo.join("schemas/fleet.schema.json"), fleet::SCHEMA).expect("schema");
    let mut config = format!(
        "[repo]\nurl = {:?}\nschema_path = \"schemas/fleet.schema.json\"\ncheckout_dir = \"state/repo\"\n[runtime]\nmax_in_flight = 32\n\n",
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
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "fleet"]);
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
}
