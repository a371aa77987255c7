//! Pure-core throughput: parse + canonicalise (through the fleet schema) + diff of
//! bot pairs of ~60 fields, on one core. Writes the same pairs for the deepdiff
//! baseline (`benches/deepdiff_baseline.py`) and runs it when Python has deepdiff.
//!
//! `cargo bench --bench canon_diff` (`NO_BASELINE=1` skips the slow deepdiff run).

#[path = "../tests/support/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use config_drift_detector::canon::canonical::{CanonOptions, canonicalise};
use config_drift_detector::canon::schema::Schema;
use config_drift_detector::canon::secret::SecretKey;
use config_drift_detector::canon::{Decimal, Format, ParseLimits, parse_document};
use config_drift_detector::diff::{DiffOptions, diff};
use config_drift_detector::report::Side;

/// Live heap bytes while `COUNTING` is on, so the memory a cached `Canonical`
/// holds is measured exactly rather than read off RSS (which freed-but-kept pages
/// blur). Off during the timings, where it would cost an atomic per allocation.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            FREED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
            FREED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// This thread's CPU time: on a machine shared with other jobs, wall time mostly
/// measures the scheduler.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let pairs = 5_000;
    let bots = fleet::generate(pairs, 7, 7);
    let limits = ParseLimits::default();
    let schema_doc =
        parse_document(fleet::SCHEMA.as_bytes(), Format::Json, &limits).expect("schema parses");
    let schema = Schema::compile(&schema_doc).expect("schema compiles");
    let key = SecretKey::random();
    let opts = CanonOptions {
        ignore_fields: &[],
        secret_key: &key,
    };
    let tolerance = DiffOptions {
        tolerance: Decimal::ZERO,
    };
    let leaves = {
        let doc = parse_document(bots[1].committed_json.as_bytes(), Format::Json, &limits)
            .expect("parses");
        canonicalise(doc, None, Side::Committed, &opts).leaf_count()
    };

    // First, while freed pages cannot yet hide growth from VmRSS.
    memory(&bots, &schema, &opts, &limits);

    let mut best = f64::MAX;
    let mut drifts = 0usize;
    for _round in 0..5 {
        let started = cpu_seconds();
        drifts = 0;
        for bot in &bots {
            let running =
                parse_document(bot.running_json.as_bytes(), Format::Json, &limits).expect("parses");
            let committed = parse_document(bot.committed_json.as_bytes(), Format::Json, &limits)
                .expect("parses");
            let r = canonicalise(running, Some(&schema), Side::Running, &opts);
            let c = canonicalise(committed, Some(&schema), Side::Committed, &opts);
            drifts += diff(&r, &c, &tolerance).drifts.len();
        }
        best = best.min(cpu_seconds() - started);
    }
    let expected: usize = bots.iter().map(|b| b.expected.len()).sum();
    breakdown(&bots, &schema, &opts, &tolerance, &limits);
    assert_eq!(drifts, expected, "the benchmark's answers are right");
    println!(
        "canon+diff: {pairs} pairs of ~{leaves} leaves in {:.3} s = {:.0} pairs/s (one core, CPU time, best of 5)",
        best,
        pairs as f64 / best
    );

    if std::env::var_os("NO_BASELINE").is_some() {
        println!("deepdiff baseline skipped: NO_BASELINE is set");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("canon_diff_pairs.jsonl");
    let mut f = std::fs::File::create(&path).expect("pairs file");
    for bot in &bots {
        writeln!(
            f,
            "{{\"running\": {}, \"committed\": {}}}",
            bot.running_json, bot.committed_json
        )
        .expect("write");
    }
    drop(f);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/deepdiff_baseline.py");
    match std::process::Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
    {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => println!(
            "deepdiff baseline skipped: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("deepdiff baseline skipped: python3: {e}"),
    }
}

/// Where the time goes, per stage, over the same pairs (CPU time, best of 3 each).
fn breakdown(
    bots: &[fleet::GeneratedBot],
    schema: &Schema,
    opts: &CanonOptions<'_>,
    tolerance: &DiffOptions,
    limits: &ParseLimits,
) {
    let time = |f: &dyn Fn()| {
        (0..3)
            .map(|_| {
                let t = cpu_seconds();
                f();
                cpu_seconds() - t
            })
            .fold(f64::MAX, f64::min)
    };
    let docs: Vec<_> = bots
        .iter()
        .map(|b| parse_document(b.running_json.as_bytes(), Format::Json, limits).expect("parses"))
        .collect();
    let committed: Vec<_> = bots
        .iter()
        .map(|b| {
            let d =
                parse_document(b.committed_json.as_bytes(), Format::Json, limits).expect("parses");
            canonicalise(d, Some(schema), Side::Committed, opts)
        })
        .collect();
    let n = bots.len() as f64;
    let parse = time(&|| {
        for b in bots {
            std::hint::black_box(
                parse_document(b.running_json.as_bytes(), Format::Json, limits).ok(),
            );
        }
    });
    let no_schema = time(&|| {
        for d in &docs {
            std::hint::black_box(canonicalise(d.clone(), None, Side::Running, opts));
        }
    });
    let with_schema = time(&|| {
        for d in &docs {
            std::hint::black_box(canonicalise(d.clone(), Some(schema), Side::Running, opts));
        }
    });
    let running: Vec<_> = docs
        .iter()
        .map(|d| canonicalise(d.clone(), Some(schema), Side::Running, opts))
        .collect();
    let compare = time(&|| {
        for (r, c) in running.iter().zip(&committed) {
            std::hint::black_box(diff(r, c, tolerance));
        }
    });
    let us = |t: f64| t / n * 1e6;
    println!(
        "per document: parse {:.1} µs, canonicalise without schema {:.1} µs, with schema (validation included) {:.1} µs; diff per pair {:.1} µs",
        us(parse),
        us(no_schema),
        us(with_schema),
        us(compare)
    );
}

/// Memory a cached committed side holds: 10,000 `Canonical`s built and kept, as
/// live heap bytes and as VmRSS growth (Linux only).
fn memory(
    bots: &[fleet::GeneratedBot],
    schema: &Schema,
    opts: &CanonOptions<'_>,
    limits: &ParseLimits,
) {
    let rss_kib = || -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let texts: Vec<&str> = bots
        .iter()
        .cycle()
        .take(10_000)
        .map(|b| b.committed_json.as_str())
        .collect();
    let before = rss_kib().unwrap_or(0);
    COUNTING.store(true, Ordering::Relaxed);
    let kept: Vec<_> = texts
        .iter()
        .map(|t| {
            let d = parse_document(t.as_bytes(), Format::Json, limits).expect("parses");
            canonicalise(d, Some(schema), Side::Committed, opts)
        })
        .collect();
    COUNTING.store(false, Ordering::Relaxed);
    // Only what the kept values still hold: the texts' parse trees were freed.
    let live = ALLOCATED
        .load(Ordering::Relaxed)
        .saturating_sub(FREED.load(Ordering::Relaxed));
    let after = rss_kib().unwrap_or(before);
    println!(
        "memory per cached Canonical: {:.1} KiB live heap ({} kept; VmRSS +{:.1} MiB)",
        live as f64 / 1024.0 / kept.len() as f64,
        kept.len(),
        after.saturating_sub(before) as f64 / 1024.0
    );
    std::hint::black_box(&kept);
}
