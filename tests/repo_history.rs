//! The branch history behind `content_signature` (§5) and `matches_commit` (§7),
//! and `diff --repo REV:PATH` reads, against real commits.

mod support;

use std::time::Instant;

use config_drift_detector::repo::{
    CommittedRepo, FileVersion, RepoReadError, RevReader, read_rev_path,
};
use config_drift_detector::report::SignatureState;
use git2::Oid;
use support::origin::{Change, Origin, repo_config};

const T0: i64 = 1_715_000_000_000;
const CONFIG: &str = "bots/a.yaml";
const SCHEMA: &str = "schemas/shared.json";

fn blob(data: &[u8]) -> Option<String> {
    Some(Origin::blob_id(data))
}

fn short(versions: &[FileVersion]) -> Vec<(String, Option<String>, Option<String>, u64)> {
    versions
        .iter()
        .map(|v| {
            (
                v.commit.clone(),
                v.config_blob.clone(),
                v.schema_blob.clone(),
                v.commits_behind,
            )
        })
        .collect()
}

#[test]
fn file_versions_are_runs_of_config_and_schema_with_commits_behind() {
    let origin = Origin::new();
    let _c1 = origin.commit(
        "main",
        &[Change::File(CONFIG, b"n: 1\n"), Change::File(SCHEMA, b"{}")],
        "v1",
    );
    let c2 = origin.commit("main", &[Change::File("bots/b.yaml", b"x")], "unrelated 1");
    let _c3 = origin.commit("main", &[Change::File(CONFIG, b"n: 2\n")], "v2");
    let c4 = origin.commit("main", &[Change::File("bots/b.yaml", b"y")], "unrelated 2");
    let _c5 = origin.commit(
        "main",
        &[Change::File(SCHEMA, b"{\"type\":\"object\"}")],
        "schema 2",
    );
    let c6 = origin.commit("main", &[Change::File("bots/c.yaml", b"z")], "unrelated 3");
    let _c7 = origin.commit_by(
        "main",
        &[Change::File(CONFIG, b"n: 3\n")],
        "v3\n\nbody",
        "Bob",
    );
    let c8 = origin.commit("main", &[Change::File("bots/b.yaml", b"w")], "unrelated 4");

    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let versions = session
        .file_versions(&snapshot, CONFIG, Some(SCHEMA))
        .unwrap();
    let s1 = blob(b"{}");
    let s2 = blob(b"{\"type\":\"object\"}");
    assert_eq!(
        short(&versions),
        vec![
            (c8.to_string(), blob(b"n: 3\n"), s2.clone(), 0),
            (c6.to_string(), blob(b"n: 2\n"), s2, 1),
            (c4.to_string(), blob(b"n: 2\n"), s1.clone(), 1),
            (c2.to_string(), blob(b"n: 1\n"), s1, 2),
        ]
    );
    let head = &versions[0];
    assert_eq!(head.author, "Alice");
    assert_eq!(head.summary, "unrelated 4");
    let commit = origin.git.find_commit(c8).unwrap();
    assert_eq!(head.committed_at_ms, commit.time().seconds() * 1000);

    // Without a schema only config changes make versions.
    let versions = session.file_versions(&snapshot, CONFIG, None).unwrap();
    assert_eq!(
        short(&versions),
        vec![
            (c8.to_string(), blob(b"n: 3\n"), None, 0),
            (c6.to_string(), blob(b"n: 2\n"), None, 1),
            (c2.to_string(), blob(b"n: 1\n"), None, 2),
        ]
    );
}

#[test]
fn reverted_version_is_listed_once_at_its_newest_commit() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "v1");
    let c2 = origin.commit("main", &[Change::File(CONFIG, b"n: 2\n")], "v2");
    let c3 = origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "revert to v1");
    let c4 = origin.commit("main", &[Change::File(CONFIG, b"n: 3\n")], "v3");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let versions = session.file_versions(&snapshot, CONFIG, None).unwrap();
    assert_eq!(
        short(&versions),
        vec![
            (c4.to_string(), blob(b"n: 3\n"), None, 0),
            (c3.to_string(), blob(b"n: 1\n"), None, 1),
            (c2.to_string(), blob(b"n: 2\n"), None, 2),
        ]
    );
}

#[test]
fn history_stops_at_history_depth_and_follows_first_parents_only() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "v1");
    origin.commit("main", &[Change::File(CONFIG, b"n: 2\n")], "v2");
    let c3 = origin.commit("main", &[Change::File("other", b"x")], "unrelated");
    let c4 = origin.commit("main", &[Change::File("other", b"y")], "unrelated");
    let mut cfg = origin.config("main");
    cfg.history_depth = 2;
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let versions = session.file_versions(&snapshot, CONFIG, None).unwrap();
    assert_eq!(
        short(&versions),
        vec![(c4.to_string(), blob(b"n: 2\n"), None, 0)]
    );
    // Never changed within the window: the oldest walked commit stands in.
    let changes = session.last_changes(&snapshot, &[CONFIG]).unwrap();
    assert_eq!(changes[CONFIG].commit, c3.to_string());
    assert_eq!(changes[CONFIG].commits_ago, 1);
}

#[test]
fn merged_side_branch_is_not_walked() {
    let origin = Origin::new();
    let base = origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "v1");
    origin
        .git
        .reference("refs/heads/feature", base, true, "branch")
        .unwrap();
    let side = origin.commit("feature", &[Change::File(CONFIG, b"n: side\n")], "side");
    let main_tip = origin.commit("main", &[Change::File("other", b"x")], "main work");
    // A merge whose first parent is main and whose tree takes the side's config.
    let side_tree = origin.git.find_commit(side).unwrap().tree().unwrap();
    let mut update = git2::build::TreeUpdateBuilder::new();
    update.upsert(
        CONFIG,
        side_tree
            .get_path(std::path::Path::new(CONFIG))
            .unwrap()
            .id(),
        git2::FileMode::Blob,
    );
    let main_tree = origin.git.find_commit(main_tip).unwrap().tree().unwrap();
    let merged = update.create_updated(&origin.git, &main_tree).unwrap();
    let sig = git2::Signature::now("Merger", "m@example.invalid").unwrap();
    let merge = origin
        .git
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            "merge feature",
            &origin.git.find_tree(merged).unwrap(),
            &[
                &origin.git.find_commit(main_tip).unwrap(),
                &origin.git.find_commit(side).unwrap(),
            ],
        )
        .unwrap();
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let versions = session.file_versions(&snapshot, CONFIG, None).unwrap();
    let commits: Vec<&str> = versions.iter().map(|v| v.commit.as_str()).collect();
    assert_eq!(commits, vec![merge.to_string(), main_tip.to_string()]);
    assert!(!commits.contains(&side.to_string().as_str()));
}

#[test]
fn content_signature_is_that_of_the_commit_that_last_changed_the_file() {
    let origin = Origin::new();
    origin.commit_signed(
        "main",
        &[Change::File(CONFIG, b"n: 1\n"), Change::File(SCHEMA, b"{}")],
        "signed config",
    );
    origin.commit("main", &[Change::File("bots/b.yaml", b"b")], "unsigned b");
    origin.commit("main", &[Change::File("unrelated", b"u")], "unsigned head");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    assert_eq!(snapshot.committed_signature, SignatureState::Unsigned);
    let states = session
        .content_signatures(&snapshot, &[CONFIG, "bots/b.yaml"])
        .unwrap();
    assert_eq!(states[CONFIG], SignatureState::Unverified);
    assert_eq!(states["bots/b.yaml"], SignatureState::Unsigned);

    // A later unsigned schema change makes the bot's content unsigned.
    assert_eq!(
        session
            .bot_content_signature(&snapshot, CONFIG, Some(SCHEMA))
            .unwrap(),
        SignatureState::Unverified
    );
    drop(session);
    origin.commit(
        "main",
        &[Change::File(SCHEMA, b"{\"a\":1}")],
        "unsigned schema",
    );
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0 + 1).unwrap();
    assert_eq!(
        session
            .bot_content_signature(&snapshot, CONFIG, Some(SCHEMA))
            .unwrap(),
        SignatureState::Unsigned
    );
    assert_eq!(
        session
            .bot_content_signature(&snapshot, CONFIG, None)
            .unwrap(),
        SignatureState::Unverified
    );
}

#[test]
fn unreadable_history_is_an_error_not_a_panic() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "v1");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let mut snapshot = session.sync(T0).unwrap();
    snapshot.commit = "0123456789abcdef0123456789abcdef01234567".into();
    let err = session.file_versions(&snapshot, CONFIG, None).unwrap_err();
    assert!(err.to_string().contains("`main`"), "{err}");
}

fn origin_with_revisions() -> (Origin, Oid, Oid) {
    let origin = Origin::new();
    let first = origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "v1");
    let second = origin.commit(
        "main",
        &[
            Change::File(CONFIG, b"n: 2\n"),
            Change::Symlink("bots/link.yaml", "a.yaml"),
        ],
        "v2",
    );
    origin.commit(
        "staging",
        &[Change::File(CONFIG, b"n: staging\n")],
        "staging",
    );
    origin.git.set_head("refs/heads/main").unwrap();
    {
        let target = origin.git.find_object(first, None).unwrap();
        let sig = git2::Signature::now("Tagger", "t@example.invalid").unwrap();
        origin
            .git
            .tag("v1.0", &target, &sig, "release", false)
            .unwrap();
    }
    (origin, first, second)
}

#[test]
fn rev_path_reads_branches_tags_shas_and_ancestors_of_a_local_repo() {
    let (origin, first, second) = origin_with_revisions();
    let url = origin.url();
    assert_eq!(
        read_rev_path(&url, "main", CONFIG).unwrap(),
        (b"n: 2\n".to_vec(), second.to_string())
    );
    assert_eq!(
        read_rev_path(&url, "staging", CONFIG).unwrap().0,
        b"n: staging\n"
    );
    assert_eq!(
        read_rev_path(&url, "HEAD~1", CONFIG).unwrap(),
        (b"n: 1\n".to_vec(), first.to_string())
    );
    assert_eq!(read_rev_path(&url, "v1.0", CONFIG).unwrap().0, b"n: 1\n");
    assert_eq!(
        read_rev_path(&url, &first.to_string()[..10], CONFIG)
            .unwrap()
            .0,
        b"n: 1\n"
    );
}

#[test]
fn rev_path_refuses_symlinks_folders_and_missing_things() {
    let (origin, _, _) = origin_with_revisions();
    let reader = RevReader::open(&origin.url()).unwrap();
    let err = reader.read("main", "bots/link.yaml").unwrap_err();
    assert!(
        matches!(
            err,
            RepoReadError::NotAFile {
                kind: "symlink",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("is a symlink, not a file"),
        "{err}"
    );
    assert!(
        reader
            .read("main", "bots")
            .unwrap_err()
            .to_string()
            .contains("folder")
    );
    let err = reader.read("main", "bots/none.yaml").unwrap_err();
    assert!(matches!(err, RepoReadError::PathNotFound { .. }), "{err:?}");
    let err = reader.read("no-such-branch", CONFIG).unwrap_err();
    assert!(matches!(err, RepoReadError::RevNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-branch"), "{err}");
    assert!(reader.read("main", "../etc/passwd").is_err());
    let err = RevReader::open(origin.temp.path().join("nothing").to_str().unwrap())
        .err()
        .unwrap();
    assert!(matches!(err, RepoReadError::Open { .. }), "{err:?}");
}

#[test]
fn rev_path_fetches_a_remote_into_a_temporary_clone() {
    let (origin, first, _) = origin_with_revisions();
    let url = format!("file://{}", origin.url());
    let reader = RevReader::open(&url).unwrap();
    assert_eq!(
        reader.read("main~1", CONFIG).unwrap(),
        (b"n: 1\n".to_vec(), first.to_string())
    );
    assert_eq!(reader.read("staging", CONFIG).unwrap().0, b"n: staging\n");
    assert_eq!(reader.read("HEAD", CONFIG).unwrap().0, b"n: 2\n");
    assert_eq!(reader.read("v1.0", CONFIG).unwrap().0, b"n: 1\n");
    let missing = RevReader::open(&format!("file://{}/none.git", origin.temp.path().display()))
        .err()
        .unwrap();
    assert!(
        matches!(missing, RepoReadError::Fetch { .. }),
        "{missing:?}"
    );
}

/// Not a benchmark with limits: prints what a 10,000-bot fleet costs.
#[test]
fn measure_ten_thousand_bots() {
    let origin = Origin::new();
    let files: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| {
            (
                format!("bots/bot{i:05}.yaml"),
                format!("id: {i}\nlimit: {}\n", i * 3).into_bytes(),
            )
        })
        .collect();
    let changes: Vec<Change<'_>> = files.iter().map(|(p, d)| Change::File(p, d)).collect();
    origin.commit("main", &changes, "fleet");
    for round in 0..50 {
        let path = &files[(round * 197) % files.len()].0;
        let data = format!("round: {round}\n");
        origin.commit("main", &[Change::File(path, data.as_bytes())], "tweak");
    }
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let started = Instant::now();
    let snapshot = session.sync(T0).unwrap();
    let fetched = started.elapsed();

    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let started = Instant::now();
    let entries = session.entries(&snapshot, &paths).unwrap();
    let ids: Vec<&str> = paths
        .iter()
        .map(|p| match &entries[*p] {
            config_drift_detector::repo::TreeEntry::Blob(id) => id.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    let blobs = session.read_blobs(&ids);
    let read = started.elapsed();
    assert_eq!(blobs.iter().filter(|b| b.is_ok()).count(), 10_000);

    let started = Instant::now();
    let states = session.content_signatures(&snapshot, &paths).unwrap();
    let history = started.elapsed();
    assert_eq!(states.len(), 10_000);
    let started = Instant::now();
    session.content_signatures(&snapshot, &paths).unwrap();
    let versions = session.file_versions(&snapshot, &files[0].0, None).unwrap();
    let cached = started.elapsed();
    assert_eq!(versions.len(), 2);

    drop(session);
    let started = Instant::now();
    repo.lock().unwrap().sync(T0 + 1).unwrap();
    let unchanged = started.elapsed();
    println!(
        "10,000 bots, 51 commits: first fetch {fetched:?}; entries + read 10,000 blobs {read:?}; \
         content signatures over history {history:?}; same again + file_versions (cached) {cached:?}; \
         re-sync with nothing new {unchanged:?}"
    );
}

#[test]
fn config_path_relative_checkout_is_created() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File(CONFIG, b"n: 1\n")], "v1");
    let nested = origin.temp.path().join("state/deep/repo");
    let mut repo = CommittedRepo::open(&repo_config(&origin.url(), "main", &nested)).unwrap();
    repo.lock().unwrap().sync(T0).unwrap();
    assert!(nested.join("HEAD").is_file());
}

#[test]
fn history_of_a_large_folder_tracks_each_file() {
    let origin = Origin::new();
    let files: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| {
            (
                format!("bots/bot{i:02}.yaml"),
                format!("id: {i}\n").into_bytes(),
            )
        })
        .collect();
    let changes: Vec<Change<'_>> = files.iter().map(|(p, d)| Change::File(p, d)).collect();
    let c1 = origin.commit("main", &changes, "fleet");
    let c2 = origin.commit(
        "main",
        &[Change::File("bots/bot05.yaml", b"changed")],
        "bot05",
    );
    let c3 = origin.commit(
        "main",
        &[
            Change::File("bots/bot50.yaml", b"changed"),
            Change::Remove("bots/bot60.yaml"),
        ],
        "bot50, drop bot60",
    );
    let c4 = origin.commit(
        "main",
        &[Change::File("README", b"hi")],
        "outside the folder",
    );
    origin.commit("main", &[Change::Remove("bots/bot70.yaml")], "drop bot70");
    let c5 = origin.commit(
        "main",
        &[Change::File("bots/bot70.yaml/x", b"x")],
        "bot70 is a folder",
    );
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let changes = session.last_changes(&snapshot, &paths).unwrap();
    let commit_of = |p: &str| changes[p].commit.clone();
    assert_eq!(commit_of("bots/bot05.yaml"), c2.to_string());
    assert_eq!(commit_of("bots/bot50.yaml"), c3.to_string());
    assert_eq!(commit_of("bots/bot60.yaml"), c3.to_string());
    assert_eq!(commit_of("bots/bot70.yaml"), c5.to_string());
    assert_eq!(commit_of("bots/bot01.yaml"), c1.to_string());
    let versions = session
        .file_versions(&snapshot, "bots/bot70.yaml", None)
        .unwrap();
    assert_eq!(
        short(&versions),
        vec![
            // Absent, then a folder: neither is a file, one version.
            (c5.to_string(), None, None, 0),
            (c4.to_string(), blob(b"id: 70\n"), None, 2),
        ]
    );
}

#[test]
fn shallow_checkout_is_refused_naming_its_path() {
    let origin = Origin::new();
    for n in 0..5 {
        origin.commit(
            "main",
            &[Change::File(CONFIG, format!("n: {n}\n").as_bytes())],
            "v",
        );
    }
    let cfg = origin.config("main");
    // A shallow clone as `git clone --depth 1` leaves it: a bare clone whose
    // `shallow` file lists the commits whose parents are missing.
    let clone = git2::build::RepoBuilder::new()
        .bare(true)
        .branch("main")
        .clone(&format!("file://{}", origin.url()), &cfg.checkout_dir)
        .unwrap();
    let head = clone.head().unwrap().peel_to_commit().unwrap().id();
    std::fs::write(cfg.checkout_dir.join("shallow"), format!("{head}\n")).unwrap();
    assert!(clone.is_shallow());
    drop(clone);
    let err = CommittedRepo::open(&cfg)
        .err()
        .expect("a shallow clone must not be used");
    let text = err.to_string();
    assert!(text.contains("shallow"), "{text}");
    assert!(text.contains(cfg.checkout_dir.to_str().unwrap()), "{text}");
}

#[test]
fn token_in_a_diff_repo_url_never_appears_in_an_error() {
    let port = support::free_port();
    let url = format!("https://ci:hunter2-token@127.0.0.1:{port}/configs.git");
    let err = RevReader::open(&url).err().unwrap().to_string();
    assert!(!err.contains("hunter2-token"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}
