//! The committed side against real Git repositories: the pinned branch, outages
//! and their clock, tree lookups, blobs, signatures and the shared lock (§5).

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use config_drift_detector::repo::{CommittedRepo, RepoSetupError, Snapshot, TreeEntry};
use config_drift_detector::report::{SignatureState, UnknownReason};
use support::origin::{Change, Origin, repo_config};

const T0: i64 = 1_715_000_000_000;

fn sync(
    repo: &mut CommittedRepo,
    now_ms: i64,
) -> Result<Snapshot, config_drift_detector::repo::RepoFailure> {
    repo.lock().unwrap().sync(now_ms)
}

#[test]
fn pinned_branch_is_read_while_another_branch_differs() {
    let origin = Origin::new();
    origin.commit(
        "main",
        &[Change::File("bots/a.yaml", b"limit: 1\n")],
        "main config",
    );
    let main_head = origin.commit("main", &[Change::File("bots/b.yaml", b"x: 1\n")], "add b");
    origin.commit(
        "staging",
        &[Change::File("bots/a.yaml", b"limit: 99\n")],
        "staging config",
    );

    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    assert_eq!(snapshot.commit, main_head.to_string());
    let entries = session.entries(&snapshot, &["bots/a.yaml"]).unwrap();
    let TreeEntry::Blob(id) = &entries["bots/a.yaml"] else {
        panic!("not a blob: {entries:?}");
    };
    assert_eq!(session.read_blob(id).unwrap(), b"limit: 1\n");
}

#[test]
fn only_the_pinned_branch_is_fetched() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "m");
    origin.commit("other", &[Change::File("a", b"2")], "o");
    let cfg = origin.config("main");
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    sync(&mut repo, T0).unwrap();
    // Only the pinned branch gets a ref. (libgit2's local transport copies the
    // objects of every branch into the pack whatever was asked; over the network
    // only the pinned branch's objects are negotiated.)
    let clone = git2::Repository::open_bare(&cfg.checkout_dir).unwrap();
    let refs: Vec<String> = clone
        .references()
        .unwrap()
        .map(|r| r.unwrap().name().unwrap().to_owned())
        .collect();
    assert_eq!(refs, vec!["refs/remotes/origin/main".to_owned()]);
}

#[test]
fn new_commits_are_seen_at_the_next_sync() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "one");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let first = sync(&mut repo, T0).unwrap();
    assert_eq!(sync(&mut repo, T0 + 1).unwrap(), first, "nothing changed");
    let second = origin.commit("main", &[Change::File("a", b"2")], "two");
    assert_eq!(sync(&mut repo, T0 + 2).unwrap().commit, second.to_string());
}

#[test]
fn missing_branch_is_branch_not_found() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "m");
    let mut repo = CommittedRepo::open(&origin.config("release")).unwrap();
    let failure = sync(&mut repo, T0).unwrap_err();
    assert_eq!(failure.reason, UnknownReason::BranchNotFound);
    assert!(failure.detail.contains("`release`"), "{}", failure.detail);
    assert!(failure.detail.contains(&origin.url()), "{}", failure.detail);
    assert!(!failure.is_fetch_error());
}

#[test]
fn branch_deleted_upstream_is_branch_not_found_never_its_stale_copy() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "m");
    origin.commit("release", &[Change::File("a", b"2")], "r");
    let cfg = origin.config("release");
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    sync(&mut repo, T0).unwrap();
    origin.delete_branch("release");
    let failure = sync(&mut repo, T0 + 1_000).unwrap_err();
    assert_eq!(failure.reason, UnknownReason::BranchNotFound);
    let clone = git2::Repository::open_bare(&cfg.checkout_dir).unwrap();
    assert!(
        clone.find_reference("refs/remotes/origin/release").is_err(),
        "the stale tracking ref was kept"
    );
}

#[test]
fn blocked_repo_is_unreachable_then_stale_and_recovers() {
    let origin = Origin::new();
    let head = origin.commit("main", &[Change::File("a", b"1")], "m");
    let mut cfg = origin.config("main");
    cfg.max_staleness = Duration::from_secs(1);
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    sync(&mut repo, T0).unwrap();

    let blocked = origin.temp.path().join("moved.git");
    std::fs::rename(&origin.path, &blocked).unwrap();
    let failure = sync(&mut repo, T0 + 500).unwrap_err();
    assert_eq!(
        failure.reason,
        UnknownReason::RepoUnreachable,
        "{}",
        failure.detail
    );
    assert!(failure.is_fetch_error());
    assert!(failure.detail.contains("`main`"), "{}", failure.detail);
    assert!(failure.detail.contains(&origin.url()), "{}", failure.detail);
    // The boundary is "older than": exactly max_staleness after the success is
    // still only unreachable.
    assert_eq!(
        sync(&mut repo, T0 + 1_000).unwrap_err().reason,
        UnknownReason::RepoUnreachable
    );
    let stale = sync(&mut repo, T0 + 1_001).unwrap_err();
    assert_eq!(stale.reason, UnknownReason::RepoStale, "{}", stale.detail);

    // The outage clock is shared through the checkout: a fresh process agrees.
    let mut other = CommittedRepo::open(&cfg).unwrap();
    assert_eq!(
        sync(&mut other, T0 + 1_002).unwrap_err().reason,
        UnknownReason::RepoStale
    );

    std::fs::rename(&blocked, &origin.path).unwrap();
    let back = sync(&mut repo, T0 + 5_000).unwrap();
    assert_eq!(back.commit, head.to_string());
    assert_eq!(repo.freshness().unwrap().last_success_ms, Some(T0 + 5_000));
}

#[test]
fn never_fetched_repo_is_unreachable_then_stale_from_the_first_failure() {
    let temp = tempfile::tempdir().unwrap();
    let mut cfg = repo_config(
        temp.path().join("nowhere.git").to_str().unwrap(),
        "main",
        &temp.path().join("checkout"),
    );
    cfg.max_staleness = Duration::from_secs(1);
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    assert_eq!(
        sync(&mut repo, T0).unwrap_err().reason,
        UnknownReason::RepoUnreachable
    );
    assert_eq!(
        sync(&mut repo, T0 + 900).unwrap_err().reason,
        UnknownReason::RepoUnreachable
    );
    let stale = sync(&mut repo, T0 + 1_001).unwrap_err();
    assert_eq!(stale.reason, UnknownReason::RepoStale);
    assert!(
        stale.detail.contains("never been fetched"),
        "{}",
        stale.detail
    );
}

#[test]
fn token_in_the_url_never_appears_in_a_failure() {
    // A loopback port nobody listens on: connection refused at once.
    let port = support::free_port();
    let temp = tempfile::tempdir().unwrap();
    let url = format!("https://deploy:tok3n-s3cret@127.0.0.1:{port}/configs.git");
    let cfg = repo_config(&url, "main", &temp.path().join("checkout"));
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    let failure = sync(&mut repo, T0).unwrap_err();
    assert_eq!(failure.reason, UnknownReason::RepoUnreachable);
    assert!(
        !failure.detail.contains("tok3n-s3cret"),
        "{}",
        failure.detail
    );
    assert!(
        failure
            .detail
            .contains(&format!("https://***@127.0.0.1:{port}/configs.git")),
        "{}",
        failure.detail
    );
}

#[test]
fn ssh_remote_that_does_not_answer_is_unreachable() {
    let port = support::free_port();
    let temp = tempfile::tempdir().unwrap();
    let url = format!("ssh://git@127.0.0.1:{port}/configs.git");
    let mut repo = CommittedRepo::open(&repo_config(&url, "main", &temp.path().join("c"))).unwrap();
    let failure = sync(&mut repo, T0).unwrap_err();
    assert_eq!(
        failure.reason,
        UnknownReason::RepoUnreachable,
        "{}",
        failure.detail
    );
}

#[test]
fn file_url_is_fetched_like_a_path() {
    let origin = Origin::new();
    let head = origin.commit("main", &[Change::File("a", b"1")], "m");
    let cfg = repo_config(
        &format!("file://{}", origin.url()),
        "main",
        &origin.temp.path().join("checkout"),
    );
    let mut repo = CommittedRepo::open(&cfg).unwrap();
    assert_eq!(sync(&mut repo, T0).unwrap().commit, head.to_string());
}

/// A clone belongs to the URL it was made from: another config's URL for the
/// same `checkout_dir` is refused, naming both, and never re-points it.
#[test]
fn a_clone_of_another_url_is_refused_never_repointed() {
    let first = Origin::new();
    let head = first.commit("main", &[Change::File("a", b"first")], "1");
    let second = Origin::new();
    second.commit("main", &[Change::File("a", b"second")], "2");
    let checkout = first.temp.path().join("checkout");
    let mut repo = CommittedRepo::open(&repo_config(&first.url(), "main", &checkout)).unwrap();
    sync(&mut repo, T0).unwrap();
    drop(repo);
    let err = CommittedRepo::open(&repo_config(&second.url(), "main", &checkout))
        .err()
        .expect("a clone of another URL must not open");
    assert!(
        matches!(err, RepoSetupError::OtherRepository { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&first.url()) && text.contains(&second.url()),
        "{text}"
    );
    let clone = git2::Repository::open_bare(&checkout).unwrap();
    assert_eq!(
        clone.find_remote("origin").unwrap().url().unwrap(),
        first.url()
    );
    let mut repo = CommittedRepo::open(&repo_config(&first.url(), "main", &checkout)).unwrap();
    assert_eq!(sync(&mut repo, T0).unwrap().commit, head.to_string());
}

/// Every fetch checks `origin` first: a clone re-pointed behind the agent's
/// back (an older binary, a hand edit) is not fetched from.
#[test]
fn a_clone_repointed_behind_an_open_repo_is_not_fetched() {
    let first = Origin::new();
    first.commit("main", &[Change::File("a", b"first")], "1");
    let second = Origin::new();
    second.commit("main", &[Change::File("a", b"second")], "2");
    let checkout = first.temp.path().join("checkout");
    let mut repo = CommittedRepo::open(&repo_config(&first.url(), "main", &checkout)).unwrap();
    sync(&mut repo, T0).unwrap();
    git2::Repository::open_bare(&checkout)
        .unwrap()
        .remote_set_url("origin", &second.url())
        .unwrap();
    let failure = sync(&mut repo, T0 + 1).unwrap_err();
    assert_eq!(failure.reason, UnknownReason::RepoUnreachable);
    assert!(
        failure.detail.contains(&first.url()) && failure.detail.contains(&second.url()),
        "{}",
        failure.detail
    );
}

#[test]
fn corrupt_checkout_is_a_setup_error_naming_the_path() {
    let temp = tempfile::tempdir().unwrap();
    let checkout = temp.path().join("checkout");
    std::fs::create_dir(&checkout).unwrap();
    std::fs::write(checkout.join("HEAD"), b"garbage").unwrap();
    let err = CommittedRepo::open(&repo_config("/nowhere", "main", &checkout))
        .err()
        .expect("a corrupt checkout must not open");
    assert!(matches!(err, RepoSetupError::Unusable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(checkout.to_str().unwrap()),
        "{err}"
    );

    let file = temp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = CommittedRepo::open(&repo_config("/nowhere", "main", &file))
        .err()
        .expect("a file is not a checkout");
    assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
}

#[test]
fn symlink_folder_and_submodule_are_not_files() {
    let origin = Origin::new();
    let inner = origin.commit("lib", &[Change::File("x", b"1")], "lib");
    origin.commit(
        "main",
        &[
            Change::File("bots/real.yaml", b"a: 1\n"),
            Change::Symlink("bots/link.yaml", "real.yaml"),
            Change::File("bots/dir.yaml/inner", b"x"),
            Change::Submodule("bots/sub.yaml", inner),
            Change::File("bots/run.sh", b"#!/bin/sh\n"),
        ],
        "kinds",
    );
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let paths = [
        "bots/real.yaml",
        "bots/link.yaml",
        "bots/dir.yaml",
        "bots/sub.yaml",
        "bots/missing.yaml",
        "bots/link.yaml/through",
        "bots/dir.yaml/inner",
    ];
    let entries = session.entries(&snapshot, &paths).unwrap();
    assert_eq!(
        entries["bots/real.yaml"],
        TreeEntry::Blob(Origin::blob_id(b"a: 1\n"))
    );
    assert_eq!(entries["bots/link.yaml"], TreeEntry::NotAFile("symlink"));
    assert_eq!(entries["bots/dir.yaml"], TreeEntry::NotAFile("folder"));
    assert_eq!(entries["bots/sub.yaml"], TreeEntry::NotAFile("submodule"));
    assert_eq!(
        entries["bots/dir.yaml/inner"],
        TreeEntry::Blob(Origin::blob_id(b"x"))
    );
    assert!(!entries.contains_key("bots/missing.yaml"));
    assert!(
        !entries.contains_key("bots/link.yaml/through"),
        "a symlink was followed"
    );
}

#[test]
fn entries_for_a_thousand_paths_come_from_one_walk() {
    let origin = Origin::new();
    let files: Vec<(String, Vec<u8>)> = (0..1_000)
        .map(|i| {
            (
                format!("bots/group{}/bot{i}.yaml", i % 7),
                format!("n: {i}\n").into_bytes(),
            )
        })
        .collect();
    let changes: Vec<Change<'_>> = files.iter().map(|(p, d)| Change::File(p, d)).collect();
    origin.commit("main", &changes, "fleet");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    let mut paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    paths.push("bots/group1/absent.yaml");
    paths.push("elsewhere/absent.yaml");
    let entries = session.entries(&snapshot, &paths).unwrap();
    assert_eq!(entries.len(), 1_000);
    let ids: Vec<String> = files
        .iter()
        .map(|(p, _)| match &entries[p] {
            TreeEntry::Blob(id) => id.clone(),
            other => panic!("{p}: {other:?}"),
        })
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for ((_, data), read) in files.iter().zip(session.read_blobs(&id_refs)) {
        assert_eq!(&read.unwrap(), data);
    }
}

#[test]
fn reading_a_non_blob_or_bad_id_is_an_error_not_a_panic() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "m");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    let mut session = repo.lock().unwrap();
    let snapshot = session.sync(T0).unwrap();
    assert!(session.read_blob("not-hex").is_err());
    let err = session.read_blob(&snapshot.commit).unwrap_err().to_string();
    assert!(err.contains("not a file"), "{err}");
    let absent = "0123456789abcdef0123456789abcdef01234567";
    assert!(
        session
            .read_blob(absent)
            .unwrap_err()
            .to_string()
            .contains(absent)
    );
}

#[test]
fn signed_head_is_unverified_and_unsigned_head_is_unsigned() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "plain");
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    assert_eq!(
        sync(&mut repo, T0).unwrap().committed_signature,
        SignatureState::Unsigned
    );
    origin.commit_signed("main", &[Change::File("a", b"2")], "signed");
    assert_eq!(
        sync(&mut repo, T0 + 1).unwrap().committed_signature,
        SignatureState::Unverified
    );
}

#[test]
fn gpgsig_line_in_a_commit_message_does_not_make_it_signed() {
    let origin = Origin::new();
    origin.commit(
        "main",
        &[Change::File("a", b"1")],
        "summary\n\ngpgsig looks like a header\n",
    );
    let mut repo = CommittedRepo::open(&origin.config("main")).unwrap();
    assert_eq!(
        sync(&mut repo, T0).unwrap().committed_signature,
        SignatureState::Unsigned
    );
}

#[test]
fn second_holder_waits_until_the_first_releases_the_lock() {
    let origin = Origin::new();
    origin.commit("main", &[Change::File("a", b"1")], "m");
    let cfg = origin.config("main");
    // Opened before the lock is taken: opening itself waits for the lock.
    let mut first = CommittedRepo::open(&cfg).unwrap();
    let mut probe = CommittedRepo::open(&cfg).unwrap();
    let mut second = CommittedRepo::open(&cfg).unwrap();
    let held = first.lock().unwrap();
    assert!(
        probe.try_lock().unwrap().is_none(),
        "the lock is free while held"
    );

    let (acquired_tx, acquired_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let waiter = std::thread::spawn(move || {
        let mut session = second.lock().unwrap();
        acquired_tx.send(Instant::now()).unwrap();
        let snapshot = session.sync(T0);
        release_rx.recv().ok();
        snapshot.map(|s| s.commit)
    });
    // The waiter must still be blocked while the first session lives.
    assert!(
        acquired_rx
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "the second holder did not wait"
    );
    let released_at = Instant::now();
    drop(held);
    let acquired_at = acquired_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the second holder never got the lock");
    assert!(acquired_at >= released_at);
    release_tx.send(()).unwrap();
    assert!(waiter.join().unwrap().is_ok());
}
