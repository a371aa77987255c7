//! The state database through its public API: round trips, restarts, damage,
//! exclusive use and SIGKILL mid-write (§9).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use config_drift_detector::latch::{
    BotState, Observed, StateError, StateStore, Transition, advance, mark_removed,
};
use config_drift_detector::report::{ConfigDriftReport, Drift, DriftKind};
use serde_json::value::RawValue;

const CACHE_BYTES: u64 = 8 * 1024 * 1024;

fn drifting_report(slug: &str, now: i64, running: &str) -> ConfigDriftReport {
    let mut r = ConfigDriftReport::new(Some(slug.to_owned()), now);
    r.drifts.push(Drift {
        field: "limits.max_usd".into(),
        kind: DriftKind::Changed,
        running: Some(RawValue::from_string(running.to_owned()).unwrap()),
        committed: Some(RawValue::from_string("100".into()).unwrap()),
        delta: None,
        since_ts_ms: now,
        latched: false,
    });
    r.settle();
    r
}

/// A bot that started drifting at `started` and was seen again at `now`.
fn drifting_state(slug: &str, started: i64, now: i64) -> BotState {
    let (s, _) = advance(
        BotState::default(),
        &mut drifting_report(slug, started, "120"),
        &Observed::new(),
        started,
    );
    let (s, t) = advance(
        s,
        &mut drifting_report(slug, now, "130"),
        &Observed::new(),
        now,
    );
    assert!(t.is_empty());
    s
}

#[test]
fn stored_states_read_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("db"), CACHE_BYTES).unwrap();
    assert!(store.load_all().unwrap().is_empty());
    let a = drifting_state("a", 1000, 2000);
    let mut b = BotState {
        last_seen_ms: 5,
        ..BotState::default()
    };
    mark_removed(&mut b, 6);
    store
        .write_check(&[("a".into(), a.clone()), ("b".into(), b.clone())], &[])
        .unwrap();
    let all = store.load_all().unwrap();
    assert_eq!(all, BTreeMap::from([("a".into(), a), ("b".into(), b)]));

    store.write_check(&[], &["b".into()]).unwrap();
    assert_eq!(store.load_all().unwrap().keys().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn since_ts_episode_and_secret_key_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (key, state) = {
        let store = StateStore::open(&path, CACHE_BYTES).unwrap();
        let key = store.secret_key().unwrap();
        assert_eq!(store.secret_key().unwrap(), key, "one key per installation");
        let state = drifting_state("risk.killswitch", 1000, 2000);
        store
            .write_check(&[("risk.killswitch".into(), state.clone())], &[])
            .unwrap();
        (key, state)
    };
    let store = StateStore::open(&path, CACHE_BYTES).unwrap();
    assert_eq!(store.secret_key().unwrap(), key);
    let reloaded = store.load_all().unwrap().remove("risk.killswitch").unwrap();
    assert_eq!(reloaded, state);

    // The next check after the restart continues the same episode and since.
    let mut r = drifting_report("risk.killswitch", 3000, "130");
    let (_, t) = advance(reloaded, &mut r, &Observed::new(), 3000);
    assert!(t.is_empty(), "no second Started after a restart: {t:?}");
    assert_eq!(r.drifts[0].since_ts_ms, 1000);
    assert_eq!(r.episode_id.as_deref(), Some("risk.killswitch-1000"));
}

#[test]
fn second_open_while_held_names_the_database_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let _held = StateStore::open(&path, CACHE_BYTES).unwrap();
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert!(matches!(err, StateError::Locked { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "state database {} is in use by another process",
            path.display()
        )
    );
}

/// sled itself on a database a store of this process has just closed: its
/// background writers release the log's lock a moment after the drop.
fn open_raw(path: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(path).open() {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Rewrites one stored value behind the store's back, through sled itself.
fn tamper(path: &Path, tree: &str, key: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let db = open_raw(path);
    let tree = db.open_tree(tree).unwrap();
    let mut value = tree.get(key).unwrap().unwrap().to_vec();
    edit(&mut value);
    tree.insert(key, value).unwrap();
    db.flush().unwrap();
}

#[test]
fn flipped_byte_in_a_bot_record_is_reported_naming_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = StateStore::open(&path, CACHE_BYTES).unwrap();
        store
            .write_check(
                &[("mm.eu".into(), drifting_state("mm.eu", 1000, 2000))],
                &[],
            )
            .unwrap();
    }
    tamper(&path, "bots", "mm.eu", |v| {
        // "130" → "131" inside the latched running value: still valid JSON.
        let at = v.windows(5).position(|w| w == b"\"130\"").unwrap() + 3;
        v[at] ^= 0x01;
    });
    let store = StateStore::open(&path, CACHE_BYTES).unwrap();
    let err = store.load_all().unwrap_err();
    assert!(matches!(err, StateError::CorruptRecord { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "state database {}: the record of bot `mm.eu` is corrupt: its checksum does not match its data",
            path.display()
        )
    );
}

#[test]
fn flipped_byte_in_the_secret_key_is_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    StateStore::open(&path, CACHE_BYTES)
        .unwrap()
        .secret_key()
        .unwrap();
    tamper(&path, "meta", "secret_key", |v| {
        let at = v.len() - 4;
        v[at] ^= 0x01;
    });
    let store = StateStore::open(&path, CACHE_BYTES).unwrap();
    let err = store.secret_key().unwrap_err();
    assert!(
        err.to_string()
            .contains("the `secret_key` record is corrupt"),
        "{err}"
    );
}

#[test]
fn record_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    StateStore::open(&path, CACHE_BYTES)
        .unwrap()
        .write_check(&[("a".into(), BotState::default())], &[])
        .unwrap();
    tamper(&path, "bots", "a", |v| {
        *v = br#"{"v":2,"sha256":"x","data":{}}"#.to_vec();
    });
    let err = StateStore::open(&path, CACHE_BYTES)
        .unwrap()
        .load_all()
        .unwrap_err();
    assert!(
        matches!(err, StateError::FutureRecord { found: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bot `a` has version 2"), "{err}");
}

#[test]
fn database_from_a_newer_schema_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(StateStore::open(&path, CACHE_BYTES).unwrap());
    tamper(&path, "meta", "schema_version", |v| {
        let body = b"7";
        let sum = sha256_hex(body);
        *v = format!(r#"{{"v":1,"sha256":"{sum}","data":7}}"#).into_bytes();
    });
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert!(
        matches!(err, StateError::FutureSchema { found: 7, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("state database {}", path.display()))
    );
}

#[test]
fn database_that_lost_its_meta_record_is_corrupt_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    StateStore::open(&path, CACHE_BYTES)
        .unwrap()
        .write_check(&[("a".into(), BotState::default())], &[])
        .unwrap();
    {
        let db = open_raw(&path);
        db.open_tree("meta")
            .unwrap()
            .remove("schema_version")
            .unwrap();
        db.flush().unwrap();
    }
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("schema_version"), "{err}");
}

#[test]
fn garbage_in_the_database_files_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(StateStore::open(&path, CACHE_BYTES).unwrap());
    for entry in std::fs::read_dir(&path).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::write(entry.path(), b"this is not a sled database at all").unwrap();
        }
    }
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("state database {}", path.display())),
        "{err}"
    );
}

#[test]
fn a_path_that_is_a_file_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::write(&path, b"x").unwrap();
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert!(matches!(err, StateError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot be opened"), "{err}");
}

#[test]
fn damaged_log_that_sled_would_roll_back_is_refused_not_silently_older() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = StateStore::open(&path, CACHE_BYTES).unwrap();
        for g in 0..50 {
            let state = BotState {
                last_seen_ms: g,
                ..BotState::default()
            };
            store.write_check(&[("a".into(), state)], &[]).unwrap();
        }
    }
    // sled recovers by truncating its log at the damage: without the generation
    // file this opened fine, holding the state of an early check.
    let log = path.join("db");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() / 2;
    bytes[at..at + 16].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&log, bytes).unwrap();
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "state database {} is corrupt: it holds write ",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn damaged_generation_file_is_reported_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(StateStore::open(&path, CACHE_BYTES).unwrap());
    let file = path.join("cdd-generation");
    std::fs::write(&file, b"{\"v\":1,\"sha256\":\"00\",\"data\":9}").unwrap();
    let err = StateStore::open(&path, CACHE_BYTES).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "state database {}: the file {} is unreadable: its checksum does not match its data",
            path.display(),
            file.display()
        )
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---- SIGKILL mid-write -------------------------------------------------------

const CHILD_ENV: &str = "CDD_LATCH_KILL_CHILD_DB";
const BOTS: usize = 40;
const GENERATIONS: i64 = 400;

fn slug(i: usize) -> String {
    format!("bot-{i:03}")
}

/// What generation `g` stores: every bot seen at `g`, a drift since generation 1
/// with running value `g`; bots whose index is a multiple of `g % 7 + 2` deleted.
fn generation(g: i64) -> (Vec<(String, BotState)>, Vec<String>) {
    let step = (g % 7 + 2) as usize;
    let mut updates = Vec::new();
    let mut deletes = Vec::new();
    for i in 0..BOTS {
        if i % step == 0 {
            deletes.push(slug(i));
            continue;
        }
        let mut state = drifting_state(&slug(i), 1, g.max(2));
        state.last_seen_ms = g;
        let episode = state.episode.as_mut().unwrap();
        episode
            .fields
            .values_mut()
            .for_each(|f| f.running = Some(g.to_string()));
        updates.push((slug(i), state));
    }
    (updates, deletes)
}

/// Not a test of its own: the body of the child process
/// `sigkill_mid_write_leaves_a_consistent_database` spawns (with `--ignored`), so
/// a normal run lists it as ignored rather than as a test that passed.
#[test]
#[ignore = "the child process of sigkill_mid_write_leaves_a_consistent_database"]
fn kill_child_writer() {
    let path = std::env::var_os(CHILD_ENV)
        .unwrap_or_else(|| panic!("run only by its parent test, with {CHILD_ENV} set"));
    let store = StateStore::open(Path::new(&path), CACHE_BYTES).unwrap();
    let key = store.secret_key().unwrap();
    let start = store
        .load_all()
        .unwrap()
        .values()
        .map(|s| s.last_seen_ms)
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "key {}", hex::encode(key.to_bytes())).unwrap();
    for g in start + 1..=start + GENERATIONS {
        let (updates, deletes) = generation(g);
        store.write_check(&updates, &deletes).unwrap();
        // Printed only after write_check returned: the parent may rely on it.
        writeln!(out, "written {g}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_mid_write_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let exe = std::env::current_exe().unwrap();
    let mut key: Option<String> = None;
    let mut floor = 0;
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let kill_after: i64 = rand::random_range(3..60);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        let mut last_written = 0;
        while seen < kill_after {
            assert!(
                Instant::now() < deadline,
                "round {round}: the child made no progress"
            );
            let Some(line) = lines.next() else {
                panic!("round {round}: the child ended early: {:?}", child.wait());
            };
            let line = line.unwrap();
            // libtest may print "test kill_child_writer ... " before the first line.
            if let Some((_, k)) = line.split_once("key ") {
                let first = key.get_or_insert_with(|| k.to_owned());
                assert_eq!(first, k, "round {round}: the secret key changed");
            } else if let Some(g) = line.strip_prefix("written ") {
                last_written = g.parse().unwrap();
                seen += 1;
            }
        }
        // SIGKILL on Unix: no destructor, no flush, mid-batch most likely.
        child.kill().unwrap();
        child.wait().unwrap();

        let store = StateStore::open(&path, CACHE_BYTES)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let all = store.load_all().unwrap();
        let g = all.values().map(|s| s.last_seen_ms).max().unwrap();
        assert!(
            g >= last_written,
            "round {round}: generation {last_written} was reported written, the database holds {g}"
        );
        assert!(g > floor, "round {round}: no progress");
        let (updates, deletes) = generation(g);
        let expected: BTreeMap<String, BotState> = updates.into_iter().collect();
        assert_eq!(
            all, expected,
            "round {round}: a torn batch at generation {g}"
        );
        assert!(deletes.iter().all(|d| !all.contains_key(d)));
        assert_eq!(
            hex::encode(store.secret_key().unwrap().to_bytes()),
            *key.as_ref().unwrap()
        );
        floor = g;
    }
}

#[test]
fn resolution_is_recorded_before_it_is_emitted() {
    // The caller's order (advance → write_check → emit) in miniature: after a
    // restart following a recorded RESOLVED, no second RESOLVED appears.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = StateStore::open(&path, CACHE_BYTES).unwrap();
        let s = drifting_state("a", 1000, 2000);
        let mut r = ConfigDriftReport::new(Some("a".into()), 3000);
        let (s, t) = advance(s, &mut r, &Observed::new(), 3000);
        assert!(matches!(t.as_slice(), [Transition::Resolved { .. }]));
        store.write_check(&[("a".into(), s)], &[]).unwrap();
    }
    let store = StateStore::open(&path, CACHE_BYTES).unwrap();
    let s = store.load_all().unwrap().remove("a").unwrap();
    let mut r = ConfigDriftReport::new(Some("a".into()), 4000);
    let (_, t) = advance(s, &mut r, &Observed::new(), 4000);
    assert!(t.is_empty(), "{t:?}");
}
