//! `[[bots]]` entries, inline or from a `registry_file` (§3): a valid and unique
//! slug, a runtime URL of a known shape, committed paths that stay inside the
//! repo tree and name a known format (a bot's own, or `[repo]`'s templates with
//! the slug filled in), and headers merged over `[runtime]`'s.
//!
//! A bot with a problem is reported and left out; the others are still built so
//! every problem of the file is reported at once.

use std::collections::{BTreeMap, BTreeSet};

use super::headers::{headers, merge_headers};
use super::repo::repo_path;
use super::runtime::runtime_source;
use super::{Env, Sink};
use crate::canon::Format;
use crate::config::error::{ConfigErrorKind, Entry, HeaderOwner, PathProblem};
use crate::config::raw::RawBot;
use crate::config::{Bot, BotSlug, Header};

/// What a bot inherits from the main file.
pub(in crate::config) struct BotDefaults<'a> {
    /// `None` when `[repo].config_path` itself is wrong (already reported).
    pub config_path_template: Option<&'a str>,
    pub schema_path_template: Option<&'a str>,
    pub runtime_headers: &'a [Header],
}

/// Builds the bots of one file (the main one or a registry), in slug byte order.
/// `dropped` holds the keys the structural pass removed from this same file.
pub(in crate::config) fn build_bots(
    raw_bots: Vec<RawBot>,
    dropped: &BTreeSet<String>,
    defaults: &BotDefaults<'_>,
    env: Env<'_>,
    sink: &mut Sink<'_>,
) -> Vec<Bot> {
    let mut bots: Vec<Bot> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in raw_bots.into_iter().enumerate() {
        let number = index + 1;
        if dropped.contains(&format!("bots[{index}]")) {
            continue;
        }
        let was_dropped = |key: &str| dropped.contains(&format!("bots[{index}].{key}"));

        let slug = match raw.slug.as_deref() {
            Some(text) => match BotSlug::parse(text) {
                Ok(slug) => Some(slug),
                Err(error) => {
                    sink.push(ConfigErrorKind::InvalidSlug { number, error });
                    None
                }
            },
            None => {
                if !was_dropped("slug") {
                    sink.push(ConfigErrorKind::MissingEntryKey {
                        entry: Entry::BotNumber(number),
                        key: "slug",
                    });
                }
                None
            }
        };
        let entry = match &slug {
            Some(slug) => Entry::Bot(slug.clone()),
            None => Entry::BotNumber(number),
        };
        if let Some(slug) = &slug
            && let Some(first) = seen.insert(slug.as_str().to_owned(), number)
        {
            sink.push(ConfigErrorKind::DuplicateSlug {
                slug: slug.clone(),
                first,
                second: number,
            });
        }

        let runtime = match raw.runtime.as_deref() {
            Some(text) => runtime_source(text)
                .map_err(|error| {
                    sink.push(ConfigErrorKind::InvalidRuntime {
                        bot: entry.clone(),
                        error,
                    });
                })
                .ok(),
            None => {
                if !was_dropped("runtime") {
                    sink.push(ConfigErrorKind::MissingEntryKey {
                        entry: entry.clone(),
                        key: "runtime",
                    });
                }
                None
            }
        };

        let slug_text = slug.as_ref().map_or("x", BotSlug::as_str);
        let mut path_error = |key: &'static str, path: &str, problem: PathProblem| {
            sink.push(ConfigErrorKind::BotPath {
                bot: entry.clone(),
                key,
                path: path.to_owned(),
                problem,
            });
        };
        let config_path = match raw.config_path.as_deref() {
            Some(own) => match repo_path(own) {
                Ok(p) if Format::from_path(&p).is_some() => Some(p),
                Ok(_) => {
                    path_error("config_path", own, PathProblem::UnknownFormat);
                    None
                }
                Err(problem) => {
                    path_error("config_path", own, problem);
                    None
                }
            },
            // The template was checked once; a slug holds no `/` and no `..`, so it
            // cannot make a sound template escape.
            None => defaults
                .config_path_template
                .and_then(|t| repo_path(&t.replace("{slug}", slug_text)).ok()),
        };
        let schema_path = match raw.schema_path.as_deref() {
            Some("") => None,
            Some(own) => match repo_path(own) {
                Ok(p) => Some(p),
                Err(problem) => {
                    path_error("schema_path", own, problem);
                    None
                }
            },
            None => defaults
                .schema_path_template
                .and_then(|t| repo_path(&t.replace("{slug}", slug_text)).ok()),
        };

        let own_headers = headers(raw.headers, &HeaderOwner::Bot(entry), env, sink);
        let headers = merge_headers(defaults.runtime_headers, own_headers);

        if let (Some(slug), Some(runtime), Some(config_path)) = (slug, runtime, config_path) {
            bots.push(Bot {
                slug,
                runtime,
                config_path,
                schema_path,
                headers,
            });
        }
    }
    bots.sort_by(|a, b| a.slug.cmp(&b.slug));
    bots
}
