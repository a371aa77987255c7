//! A generated fleet with a known drift set, checked through the binary: zero false
//! positives and zero false negatives (the fleet benchmark runs the same at 10,000).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::bots::{BotServer, Reply};
use support::fleet::{SCHEMA, generate};
use support::origin::FixtureRepo;
use support::{json_lines, run, stderr};

#[test]
fn generated_fleet_has_no_false_positives_or_negatives() {
    let fleet = generate(600, 7, 42);
    let repo = FixtureRepo::new();
    let bots = BotServer::start();
    repo.write("schemas/fleet.schema.json", SCHEMA);
    let mut config = String::from(
        "[repo]\nurl = \"REPO\"\nschema_path = \"schemas/fleet.schema.json\"\ncheckout_dir = \"state/repo\"\n[runtime]\ntimeout_ms = 2000\nlatency_budget_ms = 30000\n\n",
    )
    .replace("REPO", repo.path().to_str().expect("utf8"));
    for bot in &fleet {
        let path = format!("bots/{}.{}", bot.slug, bot.format.ext());
        repo.write(&path, &bot.committed_text);
        let route = format!("/{}", bot.slug);
        bots.set(&route, Reply::Json(bot.running_json.clone()));
        config.push_str(&format!(
            "[[bots]]\nslug = {:?}\nruntime = {:?}\nconfig_path = {path:?}\n\n",
            bot.slug,
            bots.url(&route)
        ));
    }
    repo.commit("fleet");
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config).expect("config");

    let out = run(
        &[
            "check",
            "--config",
            cfg.to_str().expect("utf8"),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), fleet.len());

    let expected: BTreeMap<&str, &BTreeSet<String>> = fleet
        .iter()
        .map(|b| (b.slug.as_str(), &b.expected))
        .collect();
    let mut false_positives = Vec::new();
    let mut false_negatives = Vec::new();
    for r in &reports {
        let slug = r["bot_slug"].as_str().expect("slug");
        assert_ne!(r["status"], "UNKNOWN", "{r}");
        let got: BTreeSet<String> = r["drifts"]
            .as_array()
            .expect("drifts")
            .iter()
            .map(|d| d["field"].as_str().unwrap_or("").to_owned())
            .collect();
        let want = expected[slug];
        false_positives.extend(got.difference(want).map(|f| format!("{slug}: {f}")));
        false_negatives.extend(want.difference(&got).map(|f| format!("{slug}: {f}")));
        assert!(r.get("schema_errors").is_none(), "{r}");
    }
    assert!(
        false_positives.is_empty(),
        "false positives: {false_positives:?}"
    );
    assert!(
        false_negatives.is_empty(),
        "false negatives: {false_negatives:?}"
    );
    assert!(
        expected.values().any(|e| !e.is_empty()),
        "the fleet has drifts"
    );
}
