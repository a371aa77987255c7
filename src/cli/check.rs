//! `check --config FILE [--bot SLUG]... [--shard K/N]`: one evaluation now, no state,
//! no telemetry. Exit 0 all IN_SYNC, 2 any DRIFT, 3 no DRIFT but some UNKNOWN.

use std::path::Path;
use std::sync::Arc;

use crate::canon::secret::SecretKey;
use crate::check::{CheckOutcome, Checker};
use crate::shard::Shard;

use super::{ReportFormat, exit, load_config, output};
use crate::time::now_ms;

pub fn run(
    path: &Path,
    slugs: &[String],
    shard: Option<&str>,
    format: ReportFormat,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let Some(config) = load_config(path) else {
        return Ok(exit::ERROR);
    };
    let shard = match shard.map(Shard::parse).transpose() {
        Ok(s) => s.unwrap_or(Shard::ALL),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::ERROR);
        }
    };
    for slug in slugs {
        if config.bot(slug).is_none() {
            eprintln!(
                "error: --bot `{slug}` is not registered in {}",
                path.display()
            );
            return Ok(exit::ERROR);
        }
    }
    let bots: Vec<_> = config
        .bots
        .iter()
        .filter(|b| slugs.is_empty() || slugs.iter().any(|s| s == b.slug.as_str()))
        .filter(|b| shard.owns(b.slug.as_str()))
        .cloned()
        .collect();

    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        bots = bots.len(),
        "Loaded the config."
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (outcome, checker) = runtime.block_on(async {
        if let Some(error) = crate::runtime::tls::system_roots_problem() {
            crate::telemetry::events::SystemRootsMissing { error: &error }.emit();
        }
        let mut checker = Checker::new(Arc::new(config), SecretKey::random())?;
        let outcome = checker.run(&bots, now_ms()).await;
        for warning in &outcome.warnings {
            eprintln!("warning: {warning}");
        }
        anyhow::Ok((outcome, checker))
    })?;
    eprintln!("{}", summary(&outcome));
    output::print_reports(&outcome.reports, format)?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "Printed the reports."
    );
    let code = exit_code(&outcome);
    // A fleet's reports and parse caches are many small allocations and the
    // process is about to end: skip freeing them one by one.
    std::mem::forget((outcome, checker));
    Ok(code)
}

pub fn exit_code(outcome: &CheckOutcome) -> u8 {
    let tally = outcome.tally();
    if tally.drift > 0 {
        exit::DRIFT
    } else if tally.unknown > 0 {
        exit::UNKNOWN
    } else {
        exit::OK
    }
}

fn summary(o: &CheckOutcome) -> String {
    let commit = o.commit.as_deref().map_or("no commit".to_owned(), |c| {
        format!("commit {}", &c[..c.len().min(12)])
    });
    let tally = o.tally();
    format!(
        "checked {} bot{} against {commit} in {} ms: {} drifting, {} unknown, {} in sync",
        o.reports.len(),
        if o.reports.len() == 1 { "" } else { "s" },
        o.duration.as_millis(),
        tally.drift,
        tally.unknown,
        tally.in_sync,
    )
}
