//! `diff A B [--schema FILE] [--tolerance X] [--repo URL]`: compares two documents,
//! A reported as "running", B as "committed". Exit 0 equal, 2 drift, 1 error.

use std::io::Read;

use anyhow::{Context, bail};

use crate::canon::canonical::{CanonOptions, canonicalise};
use crate::canon::schema::Schema;
use crate::canon::secret::SecretKey;
use crate::canon::{Decimal, Format, ParseLimits, Value, parse_document};
use crate::check::fill_from_diff;
use crate::diff::{DiffOptions, diff};
use crate::repo::RevReader;
use crate::report::{ConfigDriftReport, Side, Status};

use super::{ReportFormat, exit, output};
use crate::time::now_ms;

/// Documents read by `diff` may be as large as this (the default `max_body_bytes`
/// bounds alias expansion only; files are read whole).
const DIFF_LIMITS: ParseLimits = ParseLimits {
    max_bytes: 64 * 1024 * 1024,
};

pub struct DiffArgs<'a> {
    pub a: &'a str,
    pub b: &'a str,
    pub schema: Option<&'a str>,
    pub tolerance: Option<&'a str>,
    pub repo: Option<&'a str>,
    pub format: ReportFormat,
}

pub fn run(args: DiffArgs<'_>) -> anyhow::Result<u8> {
    let tolerance = match args.tolerance {
        None => Decimal::ZERO,
        Some(t) => {
            let d = Decimal::parse(t)
                .map_err(|_| anyhow::anyhow!("--tolerance `{t}` is not a number"))?;
            // The config's bound (§3): a larger tolerance would hide real drifts.
            let max = crate::config::max_tolerance();
            if d.is_negative() || d > max {
                bail!("--tolerance {t} is outside 0..={max}");
            }
            d
        }
    };
    if args.a == "-" && args.b == "-" {
        bail!("only one of A and B can be `-` (standard input)");
    }
    let repo = match args.repo {
        Some(url) => Some(RevReader::open(url).with_context(|| {
            format!(
                "--repo {} could not be opened",
                crate::config::redact_url_credentials(url)
            )
        })?),
        None => None,
    };
    let running = load(args.a, repo.as_ref(), "A")?;
    let committed = load(args.b, repo.as_ref(), "B")?;
    let schema = match args.schema {
        None => None,
        Some(s) => {
            let doc = load(s, repo.as_ref(), "--schema")?;
            Some(
                Schema::compile(&doc.value)
                    .with_context(|| format!("--schema {s} does not compile"))?,
            )
        }
    };
    let key = SecretKey::random();
    let opts = CanonOptions {
        ignore_fields: &[],
        secret_key: &key,
    };
    let running_c = canonicalise(running.value, schema.as_ref(), Side::Running, &opts);
    let committed_c = canonicalise(committed.value, schema.as_ref(), Side::Committed, &opts);
    let outcome = diff(&running_c, &committed_c, &DiffOptions { tolerance });

    let now = now_ms();
    let mut report = ConfigDriftReport::new(None, now);
    if let Some((rev, commit)) = committed.revision {
        report.committed_ref = Some(rev);
        report.committed_commit = Some(commit);
    }
    fill_from_diff(&mut report, outcome, args.schema.map(str::to_owned), now);
    report.running_source = Some(args.a.to_owned());
    report.committed_source = Some(args.b.to_owned());
    output::print_reports(std::slice::from_ref(&report), args.format)?;
    Ok(if report.status == Status::Drift {
        exit::DRIFT
    } else {
        exit::OK
    })
}

struct Loaded {
    value: Value,
    /// `(REV, commit sha)` when read from Git.
    revision: Option<(String, String)>,
}

/// Reads a file, standard input (`-`) or, with `--repo`, a `REV:PATH` blob.
fn load(arg: &str, repo: Option<&RevReader>, role: &str) -> anyhow::Result<Loaded> {
    if arg == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        let value = parse_sniffed(&bytes)
            .with_context(|| format!("{role} (standard input) is not a valid document"))?;
        return Ok(Loaded {
            value,
            revision: None,
        });
    }
    if let Some(repo) = repo
        && let Some((rev, path)) = arg.split_once(':')
    {
        let (bytes, commit) = repo
            .read(rev, path)
            .with_context(|| format!("{role} `{arg}` could not be read from the repo"))?;
        let format = format_of(path, role)?;
        let value = parse_document(&bytes, format, &DIFF_LIMITS)
            .with_context(|| format!("{role} `{arg}` is not a valid document"))?;
        return Ok(Loaded {
            value,
            revision: Some((rev.to_owned(), commit)),
        });
    }
    let format = format_of(arg, role)?;
    let bytes = std::fs::read(arg).with_context(|| format!("{role} `{arg}` could not be read"))?;
    let value = parse_document(&bytes, format, &DIFF_LIMITS)
        .with_context(|| format!("{role} `{arg}` is not a valid document"))?;
    Ok(Loaded {
        value,
        revision: None,
    })
}

fn format_of(path: &str, role: &str) -> anyhow::Result<Format> {
    Format::from_path(path).ok_or_else(|| {
        anyhow::anyhow!("{role} `{path}` has no .json, .yaml, .yml or .toml extension")
    })
}

/// Standard input has no extension: `{` starts JSON; otherwise TOML if it parses as
/// TOML, else YAML.
fn parse_sniffed(bytes: &[u8]) -> Result<Value, crate::canon::ParseError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return parse_document(bytes, Format::Json, &DIFF_LIMITS);
    }
    parse_document(bytes, Format::Toml, &DIFF_LIMITS)
        .or_else(|_| parse_document(bytes, Format::Yaml, &DIFF_LIMITS))
}
