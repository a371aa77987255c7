//! Raw serde shapes → the validated [`Config`] (§3): defaults, bounds, paths inside
//! and outside the repo, runtime URLs, headers with `${ENV}` expansion, tokens.
//!
//! Collects every problem instead of stopping at the first. Reads the environment
//! only through the lookup it is given and the filesystem only to check that the
//! files it is told to read exist. Must never put a header value into a message.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{
    RawAuth, RawBot, RawConfig, RawHeaders, RawNumber, RawRepo, RawRuntime, RawServer, RawState,
};
use super::*;
use crate::canon::{Decimal, Format};

/// Looks an environment variable up (`std::env::var_os` outside tests).
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Where problems of one file go.
pub(super) struct Sink<'a> {
    pub file: &'a Path,
    pub errors: &'a mut Vec<ConfigError>,
}

impl Sink<'_> {
    pub(super) fn push(&mut self, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            message: message.into(),
        });
    }
}

/// What a bot inherits from the main file.
pub(super) struct BotDefaults<'a> {
    /// `None` when `[repo].config_path` itself is wrong (already reported).
    pub config_path_template: Option<&'a str>,
    pub schema_path_template: Option<&'a str>,
    pub runtime_headers: &'a [Header],
}

/// Builds everything but the bots of a `registry_file` (the caller reads that file).
pub(super) fn build_config(
    file: &Path,
    dir: &Path,
    raw: RawConfig,
    dropped: &BTreeSet<String>,
    env: Env<'_>,
    sink: &mut Sink<'_>,
    warnings: &mut Vec<Warning>,
) -> Config {
    let mode = match raw.mode.as_deref() {
        None => DEFAULT_MODE,
        Some(text) => Mode::parse(text).unwrap_or_else(|| {
            sink.push(format!(
                "mode = \"{text}\" is not one of off, shadow, advisory, enforced"
            ));
            DEFAULT_MODE
        }),
    };

    let minutes = int_in(
        sink,
        "check_interval_minutes",
        "",
        raw.check_interval_minutes,
        DEFAULT_CHECK_INTERVAL_MINUTES,
        CHECK_INTERVAL_MINUTES_RANGE,
    );
    if minutes > CHECK_INTERVAL_WARN_ABOVE_MINUTES {
        warnings.push(Warning(format!(
            "check_interval_minutes = {minutes} is above {CHECK_INTERVAL_WARN_ABOVE_MINUTES}: a drift may go unseen for up to {minutes} minutes"
        )));
    }

    let tolerance = tolerance(raw.tolerance_for_numeric_drift, sink, warnings);

    let mut ignore_fields = Vec::new();
    for text in raw.ignore_fields.unwrap_or_default() {
        match FieldPattern::parse(&text) {
            Ok(p) => ignore_fields.push(p),
            Err(e) => sink.push(format!("`ignore_fields` entry {e}")),
        }
    }

    let registry_file = raw
        .registry_file
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| resolve(dir, s));

    let repo = repo(raw.repo, dir, dropped, sink);
    let runtime = runtime(raw.runtime, dir, env, sink, warnings);
    let state = state(raw.state, dir, sink);
    let server = server(raw.server, dir, sink);
    let tokens = tokens(raw.auth, dropped, sink);

    let inline_bots = raw.bots.unwrap_or_default();
    let template_ok = check_config_path_template(&repo.config_path_template, sink);
    let defaults = BotDefaults {
        config_path_template: template_ok.then_some(repo.config_path_template.as_str()),
        schema_path_template: repo.schema_path_template.as_deref(),
        runtime_headers: &runtime.headers,
    };
    let bots = match &registry_file {
        Some(registry) => {
            if !inline_bots.is_empty() {
                sink.push(format!(
                    "`registry_file` (`{}`) and inline [[bots]] are both set; keep one",
                    registry.display()
                ));
            }
            Vec::new()
        }
        None => {
            if inline_bots.is_empty() && !dropped.contains("bots") {
                sink.push("no bot is registered: add [[bots]] entries or set `registry_file`");
            }
            build_bots(inline_bots, dropped, &defaults, env, sink)
        }
    };

    Config {
        file: file.to_path_buf(),
        mode,
        check_interval: Duration::from_secs(minutes * 60),
        tolerance,
        ignore_fields,
        registry_file,
        repo,
        runtime,
        bots,
        state,
        server,
        tokens,
    }
}

fn tolerance(raw: Option<RawNumber>, sink: &mut Sink<'_>, warnings: &mut Vec<Warning>) -> Decimal {
    let value = match raw {
        None => return Decimal::ZERO,
        Some(RawNumber::Integer(i)) => Some(Decimal::from_i64(i)),
        // Through the shortest text that round-trips, so `0.001` is exactly 0.001
        // and not the binary64 value nearest to it.
        Some(RawNumber::Float(f)) => Decimal::from_f64(f),
    };
    let Some(value) = value else {
        sink.push("tolerance_for_numeric_drift must be a finite number");
        return Decimal::ZERO;
    };
    let max = max_tolerance();
    if value.is_negative() || value > max {
        sink.push(format!(
            "tolerance_for_numeric_drift = {value} is outside 0..={max}"
        ));
        return Decimal::ZERO;
    }
    if !value.is_zero() {
        warnings.push(Warning(format!(
            "tolerance_for_numeric_drift = {value}: numeric differences up to {value} are not reported as drift"
        )));
    }
    value
}

fn repo(
    raw: Option<RawRepo>,
    dir: &Path,
    dropped: &BTreeSet<String>,
    sink: &mut Sink<'_>,
) -> RepoConfig {
    let table_missing = raw.is_none();
    if table_missing && !dropped.contains("repo") {
        sink.push("[repo] is missing (its `url` is required)");
    }
    let raw = raw.unwrap_or_default();
    let url = match raw.url.as_deref() {
        Some(url) => repo_url(url, dir).unwrap_or_else(|message| {
            sink.push(message);
            String::new()
        }),
        None => {
            if !table_missing && !dropped.contains("repo.url") {
                sink.push("`url` in [repo] is required");
            }
            String::new()
        }
    };

    let branch = raw.branch.unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
    if branch.is_empty() || !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        sink.push(format!(
            "`branch` in [repo] (`{branch}`) is not a valid branch name"
        ));
    }

    let config_path_template = raw
        .config_path
        .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_owned());
    let schema_path_template = raw.schema_path.filter(|s| !s.is_empty());
    if let Some(template) = &schema_path_template
        && let Err(e) = repo_path(&template.replace("{slug}", "x"))
    {
        sink.push(format!(
            "`schema_path` in [repo] (`{template}`) {}",
            e.sentence()
        ));
    }

    let checkout_dir = resolve(
        dir,
        raw.checkout_dir.as_deref().unwrap_or(DEFAULT_CHECKOUT_DIR),
    );
    let history_depth = int_in(
        sink,
        "history_depth",
        " in [repo]",
        raw.history_depth,
        DEFAULT_HISTORY_DEPTH,
        HISTORY_DEPTH_RANGE,
    );
    let max_staleness_s = int_in(
        sink,
        "max_staleness_s",
        " in [repo]",
        raw.max_staleness_s,
        DEFAULT_MAX_STALENESS_S,
        MAX_STALENESS_S_RANGE,
    );
    let require_signed_commits = raw.require_signed_commits.unwrap_or(false);
    let allowed_signers =
        existing_file(dir, raw.allowed_signers, "allowed_signers", "[repo]", sink);
    let gpg_keyring = existing_file(dir, raw.gpg_keyring, "gpg_keyring", "[repo]", sink);
    if require_signed_commits
        && raw_path_unset(&allowed_signers, dropped, "repo.allowed_signers")
        && raw_path_unset(&gpg_keyring, dropped, "repo.gpg_keyring")
    {
        sink.push(
            "`require_signed_commits` in [repo] is true but neither `allowed_signers` nor `gpg_keyring` is set",
        );
    }

    RepoConfig {
        url,
        branch,
        config_path_template,
        schema_path_template,
        checkout_dir,
        history_depth: u32::try_from(history_depth).unwrap_or(u32::MAX),
        max_staleness: Duration::from_secs(max_staleness_s),
        require_signed_commits,
        allowed_signers,
        gpg_keyring,
    }
}

/// Whether a path key is absent; one that was set (even to a missing file, already
/// reported) or dropped for its type counts as set, so nothing is reported twice.
fn raw_path_unset(value: &Option<PathBuf>, dropped: &BTreeSet<String>, key: &str) -> bool {
    value.is_none() && !dropped.contains(key)
}

/// `[repo].url`: a URL with a scheme is kept as written; anything else is a local
/// path, resolved against the config file's folder.
fn repo_url(url: &str, dir: &Path) -> Result<String, String> {
    if url.is_empty() {
        return Err("`url` in [repo] is empty".to_owned());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !REPO_URL_SCHEMES.contains(&scheme) {
            return Err(format!(
                "`url` in [repo] uses the scheme `{scheme}://`; use a local path, file://, https:// or ssh://"
            ));
        }
        if rest.is_empty() {
            return Err(format!(
                "`url` in [repo] (`{scheme}://`) names no repository"
            ));
        }
        return Ok(url.to_owned());
    }
    // `git@host:org/repo` looks like a relative path but is scp-style SSH; resolving
    // it as a folder would fail far from here, so ask for the explicit form.
    if let Some(colon) = url.find(':')
        && !url[..colon].contains('/')
        && url[..colon].contains('@')
    {
        return Err(format!(
            "`url` in [repo] (`{}`) is scp-style; write it as ssh://{}",
            redact_url_credentials(url),
            redact_url_credentials(&url.replacen(':', "/", 1))
        ));
    }
    Ok(resolve(dir, url).to_string_lossy().into_owned())
}

fn runtime(
    raw: Option<RawRuntime>,
    dir: &Path,
    env: Env<'_>,
    sink: &mut Sink<'_>,
    warnings: &mut Vec<Warning>,
) -> RuntimeConfig {
    let raw = raw.unwrap_or_default();
    let timeout_ms = int_in(
        sink,
        "timeout_ms",
        " in [runtime]",
        raw.timeout_ms,
        DEFAULT_TIMEOUT_MS,
        TIMEOUT_MS_RANGE,
    );
    let max_in_flight = int_in(
        sink,
        "max_in_flight",
        " in [runtime]",
        raw.max_in_flight,
        DEFAULT_MAX_IN_FLIGHT,
        MAX_IN_FLIGHT_RANGE,
    );
    let max_body_bytes = int_in(
        sink,
        "max_body_bytes",
        " in [runtime]",
        raw.max_body_bytes,
        DEFAULT_MAX_BODY_BYTES,
        MAX_BODY_BYTES_RANGE,
    );
    let latency_budget_ms = int_in(
        sink,
        "latency_budget_ms",
        " in [runtime]",
        raw.latency_budget_ms,
        DEFAULT_LATENCY_BUDGET_MS,
        LATENCY_BUDGET_MS_RANGE,
    );
    if timeout_ms > latency_budget_ms {
        warnings.push(Warning(format!(
            "timeout_ms = {timeout_ms} in [runtime] is above latency_budget_ms = {latency_budget_ms}: a slow bot is cut off by the check's budget first"
        )));
    }
    let headers = headers(raw.headers, "in [runtime]", env, sink);
    let ca_file = existing_file(dir, raw.ca_file, "ca_file", "[runtime]", sink);
    let client_cert = existing_file(dir, raw.client_cert, "client_cert", "[runtime]", sink);
    let client_key = existing_file(dir, raw.client_key, "client_key", "[runtime]", sink);
    pair(
        &client_cert,
        &client_key,
        "client_cert",
        "client_key",
        "[runtime]",
        sink,
    );

    RuntimeConfig {
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
        max_body_bytes,
        latency_budget: Duration::from_millis(latency_budget_ms),
        headers,
        ca_file,
        client_cert,
        client_key,
    }
}

fn state(raw: Option<RawState>, dir: &Path, sink: &mut Sink<'_>) -> StateConfig {
    let raw = raw.unwrap_or_default();
    let path = match raw.path.as_deref() {
        Some("") => {
            sink.push("`path` in [state] is empty");
            resolve(dir, DEFAULT_STATE_PATH)
        }
        other => resolve(dir, other.unwrap_or(DEFAULT_STATE_PATH)),
    };
    let retention_days = int_in(
        sink,
        "retention_days",
        " in [state]",
        raw.retention_days,
        0,
        RETENTION_DAYS_RANGE,
    );
    let audit_retention_days = int_in(
        sink,
        "audit_retention_days",
        " in [state]",
        raw.audit_retention_days,
        0,
        RETENTION_DAYS_RANGE,
    );
    StateConfig {
        path,
        retention_days: u32::try_from(retention_days).unwrap_or(u32::MAX),
        audit_retention_days: u32::try_from(audit_retention_days).unwrap_or(u32::MAX),
    }
}

fn server(raw: Option<RawServer>, dir: &Path, sink: &mut Sink<'_>) -> ServerConfig {
    let raw = raw.unwrap_or_default();
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        sink.push(format!(
            "`listen` in [server] (`{listen_text}`) is not a socket address such as 127.0.0.1:9464"
        ));
        SocketAddr::from(([127, 0, 0, 1], 9464))
    });
    let tls_cert = existing_file(dir, raw.tls_cert, "tls_cert", "[server]", sink);
    let tls_key = existing_file(dir, raw.tls_key, "tls_key", "[server]", sink);
    pair(&tls_cert, &tls_key, "tls_cert", "tls_key", "[server]", sink);
    let rate_limit_per_s = int_in(
        sink,
        "rate_limit_per_s",
        " in [server]",
        raw.rate_limit_per_s,
        DEFAULT_RATE_LIMIT_PER_S,
        RATE_LIMIT_RANGE,
    );
    let rate_limit_burst = int_in(
        sink,
        "rate_limit_burst",
        " in [server]",
        raw.rate_limit_burst,
        DEFAULT_RATE_LIMIT_BURST,
        RATE_LIMIT_RANGE,
    );
    ServerConfig {
        listen,
        tls_cert,
        tls_key,
        rate_limit_per_s: u32::try_from(rate_limit_per_s).unwrap_or(u32::MAX),
        rate_limit_burst: u32::try_from(rate_limit_burst).unwrap_or(u32::MAX),
    }
}

fn tokens(
    raw: Option<RawAuth>,
    dropped: &BTreeSet<String>,
    sink: &mut Sink<'_>,
) -> Vec<TokenConfig> {
    let raw_tokens = raw.and_then(|a| a.tokens).unwrap_or_default();
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in raw_tokens.into_iter().enumerate() {
        let number = index + 1;
        let was_dropped = |key: &str| {
            dropped.contains(&format!("auth.tokens[{index}]"))
                || dropped.contains(&format!("auth.tokens[{index}].{key}"))
        };
        if dropped.contains(&format!("auth.tokens[{index}]")) {
            continue;
        }
        let label = match raw.name.as_deref() {
            Some(name) if !name.is_empty() => format!("token `{name}`"),
            _ => format!("[[auth.tokens]] entry #{number}"),
        };
        let name = match raw.name {
            Some(name) if !name.is_empty() => {
                if let Some(first) = seen.insert(name.clone(), number) {
                    sink.push(format!(
                        "token name `{name}` is used twice ([[auth.tokens]] entries #{first} and #{number})"
                    ));
                }
                Some(name)
            }
            Some(_) => {
                sink.push(format!(
                    "[[auth.tokens]] entry #{number} has an empty `name`"
                ));
                None
            }
            None => {
                if !was_dropped("name") {
                    sink.push(format!("[[auth.tokens]] entry #{number} has no `name`"));
                }
                None
            }
        };
        let role = match raw.role.as_deref() {
            Some(text) => Role::parse(text).or_else(|| {
                sink.push(format!(
                    "{label}: role `{text}` is not one of viewer, oncall, admin"
                ));
                None
            }),
            None => {
                if !was_dropped("role") {
                    sink.push(format!("{label} has no `role`"));
                }
                None
            }
        };
        let sha256 = match raw.sha256.as_deref() {
            Some(text) => parse_sha256(text).or_else(|| {
                sink.push(format!(
                    "{label}: `sha256` must be 64 hexadecimal digits (the SHA-256 of the token)"
                ));
                None
            }),
            None => {
                if !was_dropped("sha256") {
                    sink.push(format!("{label} has no `sha256`"));
                }
                None
            }
        };
        if let (Some(name), Some(role), Some(sha256)) = (name, role, sha256) {
            out.push(TokenConfig { name, role, sha256 });
        }
    }
    out
}

fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Builds the bots of one file (the main one or a registry), in slug byte order.
/// `dropped` holds the keys the structural pass removed from this same file.
pub(super) fn build_bots(
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
                Err(e) => {
                    sink.push(format!("[[bots]] entry #{number}: {e}"));
                    None
                }
            },
            None => {
                if !was_dropped("slug") {
                    sink.push(format!("[[bots]] entry #{number} has no `slug`"));
                }
                None
            }
        };
        let label = match &slug {
            Some(slug) => format!("bot `{slug}`"),
            None => format!("[[bots]] entry #{number}"),
        };
        if let Some(slug) = &slug
            && let Some(first) = seen.insert(slug.as_str().to_owned(), number)
        {
            sink.push(format!(
                "bot `{slug}` is registered twice ([[bots]] entries #{first} and #{number})"
            ));
        }

        let runtime = match raw.runtime.as_deref() {
            Some(text) => runtime_source(text)
                .map_err(|e| sink.push(format!("{label}: {e}")))
                .ok(),
            None => {
                if !was_dropped("runtime") {
                    sink.push(format!("{label} has no `runtime`"));
                }
                None
            }
        };

        let slug_text = slug.as_ref().map_or("x", BotSlug::as_str);
        let config_path = match raw.config_path.as_deref() {
            Some(own) => match repo_path(own) {
                Ok(p) if Format::from_path(&p).is_some() => Some(p),
                Ok(_) => {
                    sink.push(format!(
                        "{label}: `config_path` (`{own}`) must end in .json, .yaml, .yml or .toml"
                    ));
                    None
                }
                Err(e) => {
                    sink.push(format!("{label}: `config_path` (`{own}`) {}", e.sentence()));
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
                Err(e) => {
                    sink.push(format!("{label}: `schema_path` (`{own}`) {}", e.sentence()));
                    None
                }
            },
            None => defaults
                .schema_path_template
                .and_then(|t| repo_path(&t.replace("{slug}", slug_text)).ok()),
        };

        let own_headers = headers(raw.headers, &format!("of {label}"), env, sink);
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

/// Checks `[repo].config_path` once, so a wrong template is one error and not one
/// per bot. Returns whether bots may use it.
fn check_config_path_template(template: &str, sink: &mut Sink<'_>) -> bool {
    let problem = if !template.contains("{slug}") {
        Some("must contain {slug}".to_owned())
    } else if Format::from_path(template).is_none() {
        Some("must end in .json, .yaml, .yml or .toml".to_owned())
    } else {
        repo_path(&template.replace("{slug}", "x"))
            .err()
            .map(|e| e.sentence().to_owned())
    };
    match problem {
        Some(problem) => {
            sink.push(format!("`config_path` in [repo] (`{template}`) {problem}"));
            false
        }
        None => true,
    }
}

/// Why a path cannot name a file inside the repo's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RepoPathError {
    Absolute,
    Escapes,
    Empty,
}

impl RepoPathError {
    fn sentence(self) -> &'static str {
        match self {
            RepoPathError::Absolute => "must be relative to the repo's root (no leading `/`)",
            RepoPathError::Escapes => "resolves outside the repo tree",
            RepoPathError::Empty => "names no file",
        }
    }
}

/// Normalises a path inside the repo's tree: `.` and empty segments dropped, `..`
/// applied; the result is `/`-separated with no leading `/`.
pub(super) fn repo_path(path: &str) -> Result<String, RepoPathError> {
    if path.starts_with('/') {
        return Err(RepoPathError::Absolute);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(RepoPathError::Escapes)?;
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(RepoPathError::Empty);
    }
    Ok(parts.join("/"))
}

/// A bot's `runtime =` URL (§4). Messages redact credentials inside the URL.
pub(super) fn runtime_source(text: &str) -> Result<RuntimeSource, String> {
    let shown = redact_url_credentials(text);
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!(
            "runtime `{shown}` is not a URL; use http://, https://, grpc://host:port, grpcs://host:port or file:///abs/path"
        ));
    };
    match scheme {
        "http" | "https" => {
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if host.is_empty() || text.chars().any(char::is_whitespace) {
                return Err(format!("runtime `{shown}` is not a valid {scheme}:// URL"));
            }
            Ok(RuntimeSource::Http(text.to_owned()))
        }
        "grpc" | "grpcs" => {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if !is_host_port(authority) {
                return Err(format!(
                    "runtime `{shown}` must be exactly {scheme}://host:port"
                ));
            }
            Ok(RuntimeSource::Grpc {
                authority: authority.to_owned(),
                tls: scheme == "grpcs",
            })
        }
        "file" => {
            if !rest.starts_with('/') || rest.len() == 1 {
                return Err(format!(
                    "runtime `{shown}` must name an absolute path, as file:///abs/path"
                ));
            }
            Ok(RuntimeSource::File(PathBuf::from(rest)))
        }
        _ => Err(format!(
            "runtime `{shown}` uses the scheme `{scheme}://`; use http://, https://, grpc://host:port, grpcs://host:port or file:///abs/path"
        )),
    }
}

fn is_host_port(authority: &str) -> bool {
    let Some((host, port)) = authority.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    port_ok && host_ok
}

/// Builds one header table: names checked, `${ENV}` expanded, values checked.
/// `owner` completes "header `X` …", e.g. "in [runtime]" or "of bot `x`".
fn headers(raw: Option<RawHeaders>, owner: &str, env: Env<'_>, sink: &mut Sink<'_>) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for (name, value) in raw.unwrap_or_default() {
        if !is_header_name(&name) {
            sink.push(format!(
                "header name `{name}` {owner} is not a valid HTTP header name"
            ));
            continue;
        }
        if let Some(other) = out.iter().find(|h| h.name.eq_ignore_ascii_case(&name)) {
            sink.push(format!(
                "headers `{}` and `{name}` {owner} name the same header",
                other.name
            ));
            continue;
        }
        let value = match expand_env(&value.0, env) {
            Ok(v) => v,
            Err(e) => {
                sink.push(format!("header `{name}` {owner} {}", e.sentence()));
                continue;
            }
        };
        if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
            sink.push(format!(
                "header `{name}` {owner} has a value that is not a valid HTTP header value (visible ASCII, spaces and tabs only)"
            ));
            continue;
        }
        out.push(Header { name, value });
    }
    out
}

/// The bot's headers replace same-named (case-insensitive) runtime headers; the
/// result is in lower-cased name order so it does not depend on the file's order.
fn merge_headers(runtime: &[Header], own: Vec<Header>) -> Vec<Header> {
    let mut merged: Vec<Header> = runtime
        .iter()
        .filter(|r| !own.iter().any(|o| o.name.eq_ignore_ascii_case(&r.name)))
        .cloned()
        .collect();
    merged.extend(own);
    merged.sort_by_key(|h| h.name.to_ascii_lowercase());
    merged
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Why `${…}` expansion failed. Holds the variable's name, never any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExpandError {
    Unset(String),
    NotUtf8(String),
    Malformed,
}

impl ExpandError {
    fn sentence(&self) -> String {
        match self {
            ExpandError::Unset(var) => {
                format!("uses ${{{var}}}, which is not set in the environment")
            }
            ExpandError::NotUtf8(var) => format!("uses ${{{var}}}, which is not valid UTF-8"),
            ExpandError::Malformed => "has a malformed ${…} reference (write ${NAME}, with NAME letters, digits and `_`; `$${` is a literal `${`)".to_owned(),
        }
    }
}

/// Replaces every `${NAME}` with the variable's value; `$${` stands for a literal
/// `${`, and any other `$` is kept as written.
pub(super) fn expand_env(text: &str, env: Env<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or(ExpandError::Malformed)?;
            let var = &after[..end];
            let valid = var
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ExpandError::Malformed);
            }
            let value = env(var).ok_or_else(|| ExpandError::Unset(var.to_owned()))?;
            let value = value
                .into_string()
                .map_err(|_| ExpandError::NotUtf8(var.to_owned()))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// An optional file the agent will read: `""` is unset, a relative path resolves
/// against the config's folder, and the file must exist (a missing one is
/// reported, and still returned so nothing downstream calls it unset).
fn existing_file(
    dir: &Path,
    raw: Option<String>,
    key: &str,
    table: &str,
    sink: &mut Sink<'_>,
) -> Option<PathBuf> {
    let text = raw.filter(|s| !s.is_empty())?;
    let path = resolve(dir, &text);
    if !path.is_file() {
        sink.push(format!(
            "`{key}` in {table} (`{}`) is not a readable file",
            path.display()
        ));
    }
    Some(path)
}

fn pair(
    first: &Option<PathBuf>,
    second: &Option<PathBuf>,
    first_key: &str,
    second_key: &str,
    table: &str,
    sink: &mut Sink<'_>,
) {
    match (first, second) {
        (Some(_), None) => sink.push(format!(
            "{table} has `{first_key}` without `{second_key}`; set both or neither"
        )),
        (None, Some(_)) => sink.push(format!(
            "{table} has `{second_key}` without `{first_key}`; set both or neither"
        )),
        _ => {}
    }
}

/// `dir/text` with `.` components dropped; `..` is kept, since a symlinked folder
/// makes lexical `..` wrong.
pub(super) fn resolve(dir: &Path, text: &str) -> PathBuf {
    dir.join(text).components().collect()
}

/// An integer key with a default and an inclusive range; out of range is reported
/// and the default used so checking can go on.
fn int_in(
    sink: &mut Sink<'_>,
    key: &str,
    place: &str,
    value: Option<i64>,
    default: u64,
    range: RangeInclusive<u64>,
) -> u64 {
    let Some(value) = value else {
        return default;
    };
    match u64::try_from(value) {
        Ok(v) if range.contains(&v) => v,
        _ => {
            sink.push(format!(
                "{key} = {value}{place} is outside {}..={}",
                range.start(),
                range.end()
            ));
            default
        }
    }
}
