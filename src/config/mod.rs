//! The validated configuration (§3): what the rest of the program sees after
//! `load`. Raw serde shapes live in `raw.rs`; past `load`, code sees `Duration`,
//! `Decimal`, `BotSlug` and resolved paths, never a raw string.
//!
//! The path through: `raw.rs` (TOML → serde shapes, structural problems) →
//! `build/` (values, one module per table) → [`Config`]. What can be wrong is
//! `error.rs` ([`ConfigError`] names the file, [`ConfigErrorKind`] the problem);
//! what is legal but noteworthy is `warning.rs`.
//!
//! Owns reading the configuration file and its `registry_file`, and every rule of
//! §3. Must not open the repo, contact a bot, or log: problems are returned, all of
//! them at once, and the caller prints them. Header values never appear in an
//! error, a warning or `Debug` output.
//!
//! Defaults and bounds are the `DEFAULT_*` and `*_RANGE` constants below; relative
//! paths (a local `[repo].url`, `checkout_dir`, `allowed_signers`, `gpg_keyring`,
//! `ca_file`, `client_cert`, `client_key`, `[state].path`, `tls_cert`, `tls_key`,
//! `registry_file`) resolve against the config file's folder, and a path key set
//! to `""` is unset.

mod build;
pub mod error;
#[cfg(test)]
mod load_tests;
pub mod raw;
mod slug;
mod warning;

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::canon::Decimal;
use crate::canon::path::FieldPattern;

pub use error::{ConfigError, ConfigErrorKind};
pub use slug::{BotSlug, InvalidSlug};
pub use warning::Warning;

/// `off | shadow | advisory | enforced` (§13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    Off,
    #[default]
    Shadow,
    Advisory,
    Enforced,
}

/// `mode`: default `shadow`.
pub const DEFAULT_MODE: Mode = Mode::Shadow;
/// `check_interval_minutes`: default 15, allowed 1..=60, a warning above 30.
pub const DEFAULT_CHECK_INTERVAL_MINUTES: u64 = 15;
pub const CHECK_INTERVAL_MINUTES_RANGE: RangeInclusive<u64> = 1..=60;
pub const CHECK_INTERVAL_WARN_ABOVE_MINUTES: u64 = 30;
/// `tolerance_for_numeric_drift`: default 0, allowed 0..=0.001 (exact decimal), a
/// warning above 0. An integer or a float; a float is taken as its shortest text.
pub const MAX_TOLERANCE_TEXT: &str = "0.001";
/// `[repo].branch`: default `main`; must be a valid Git branch name.
pub const DEFAULT_BRANCH: &str = "main";
/// `[repo].config_path`: default `bots/{slug}.yaml`; must contain `{slug}`, end in
/// .json/.yaml/.yml/.toml, and stay inside the repo tree. `schema_path` has no
/// default (no schema) and may be one shared file.
pub const DEFAULT_CONFIG_PATH: &str = "bots/{slug}.yaml";
/// `[repo].checkout_dir`: default `state/repo`.
pub const DEFAULT_CHECKOUT_DIR: &str = "state/repo";
/// `[repo].history_depth`: default 500, allowed 1..=1,000,000.
pub const DEFAULT_HISTORY_DEPTH: u64 = 500;
pub const HISTORY_DEPTH_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `[repo].max_staleness_s`: default 900, allowed 1..=900.
pub const DEFAULT_MAX_STALENESS_S: u64 = 900;
pub const MAX_STALENESS_S_RANGE: RangeInclusive<u64> = 1..=900;
/// `[repo].url` schemes; a URL without a scheme is a local path.
pub const REPO_URL_SCHEMES: &[&str] = &["file", "http", "https", "ssh"];
/// `[runtime].timeout_ms`: default 250, allowed 1..=60,000 (a warning when above
/// `latency_budget_ms`, which cuts it short anyway).
pub const DEFAULT_TIMEOUT_MS: u64 = 250;
pub const TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
/// `[runtime].max_in_flight`: default 32, allowed 1..=10,000.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 32;
pub const MAX_IN_FLIGHT_RANGE: RangeInclusive<u64> = 1..=10_000;
/// `[runtime].max_body_bytes`: default 1 MiB, allowed 1 byte..=1 GiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1_048_576;
pub const MAX_BODY_BYTES_RANGE: RangeInclusive<u64> = 1..=1_073_741_824;
/// `[runtime].latency_budget_ms`: default 5,000, allowed 1,000..=60,000.
pub const DEFAULT_LATENCY_BUDGET_MS: u64 = 5_000;
pub const LATENCY_BUDGET_MS_RANGE: RangeInclusive<u64> = 1_000..=60_000;
/// `[state].path`: default `state/db`.
pub const DEFAULT_STATE_PATH: &str = "state/db";
/// `[state].retention_days` and `audit_retention_days`: default 0 (keep all),
/// allowed 0..=36,500.
pub const RETENTION_DAYS_RANGE: RangeInclusive<u64> = 0..=36_500;
/// `[server].listen`: default `127.0.0.1:9464`; an IP socket address, not a host name.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// `[server].rate_limit_per_s` (default 5) and `rate_limit_burst` (default 20):
/// allowed 1..=1,000,000.
pub const DEFAULT_RATE_LIMIT_PER_S: u64 = 5;
pub const DEFAULT_RATE_LIMIT_BURST: u64 = 20;
pub const RATE_LIMIT_RANGE: RangeInclusive<u64> = 1..=1_000_000;

/// The largest `tolerance_for_numeric_drift`, exactly.
pub fn max_tolerance() -> Decimal {
    Decimal::parse(MAX_TOLERANCE_TEXT).unwrap_or(Decimal::ZERO)
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "off" => Some(Mode::Off),
            "shadow" => Some(Mode::Shadow),
            "advisory" => Some(Mode::Advisory),
            "enforced" => Some(Mode::Enforced),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Shadow => "shadow",
            Mode::Advisory => "advisory",
            Mode::Enforced => "enforced",
        }
    }
}

/// Where a bot's running config is read (§4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeSource {
    /// `http://` or `https://`, the full URL.
    Http(String),
    /// `grpc://host:port` (tls false) or `grpcs://` (tls true).
    Grpc { authority: String, tls: bool },
    /// `file:///path`.
    File(PathBuf),
}

impl RuntimeSource {
    /// The source as an operator wrote it, with any credentials inside the URL
    /// replaced by `***` so it can be logged and reported.
    pub fn display_redacted(&self) -> String {
        match self {
            RuntimeSource::Http(url) => redact_url_credentials(url),
            RuntimeSource::Grpc { authority, tls } => {
                format!(
                    "{}://{}",
                    if *tls { "grpcs" } else { "grpc" },
                    redact_url_credentials(authority)
                )
            }
            RuntimeSource::File(p) => format!("file://{}", p.display()),
        }
    }
}

/// `scheme://user:pass@host/…` → `scheme://***@host/…`.
pub fn redact_url_credentials(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A header sent with every fetch. The value has `${ENV}` already expanded and is
/// never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <redacted>", self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bot {
    pub slug: BotSlug,
    pub runtime: RuntimeSource,
    /// Path of the bot's config inside the repo tree (template applied, normalised,
    /// never escaping the tree), `/`-separated, no leading `/`.
    pub config_path: String,
    /// Path of the schema inside the repo tree, if the bot has one configured.
    pub schema_path: Option<String>,
    /// `[runtime].headers` merged with the bot's own (the bot's win).
    pub headers: Vec<Header>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoConfig {
    /// Local path (resolved against the config file's folder), `file://`, `https://`
    /// or `ssh://` URL. May hold a token: log `url_redacted()` only.
    pub url: String,
    pub branch: String,
    /// The template as written, e.g. `bots/{slug}.yaml`.
    pub config_path_template: String,
    pub schema_path_template: Option<String>,
    pub checkout_dir: PathBuf,
    pub history_depth: u32,
    pub max_staleness: Duration,
    pub require_signed_commits: bool,
    pub allowed_signers: Option<PathBuf>,
    pub gpg_keyring: Option<PathBuf>,
}

impl RepoConfig {
    pub fn url_redacted(&self) -> String {
        redact_url_credentials(&self.url)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub max_body_bytes: u64,
    pub latency_budget: Duration,
    pub headers: Vec<Header>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    pub path: PathBuf,
    pub retention_days: u32,
    pub audit_retention_days: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: std::net::SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Oncall,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "oncall" => Some(Role::Oncall),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Oncall => "oncall",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token, 32 bytes.
    pub sha256: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file this was loaded from, as the caller named it; relative paths
    /// resolve against its folder.
    pub file: PathBuf,
    pub mode: Mode,
    pub check_interval: Duration,
    pub tolerance: Decimal,
    pub ignore_fields: Vec<FieldPattern>,
    /// Set when bots come from a registry file (re-read before every check by the agent).
    pub registry_file: Option<PathBuf>,
    pub repo: RepoConfig,
    pub runtime: RuntimeConfig,
    /// In slug byte order.
    pub bots: Vec<Bot>,
    pub state: StateConfig,
    pub server: ServerConfig,
    pub tokens: Vec<TokenConfig>,
}

impl Config {
    /// The registered bot with this slug.
    pub fn bot(&self, slug: &str) -> Option<&Bot> {
        self.bots
            .binary_search_by(|b| b.slug.as_str().as_bytes().cmp(slug.as_bytes()))
            .ok()
            .and_then(|i| self.bots.get(i))
    }
}

/// Reads and validates `path` (and its `registry_file`, if any). Reports every
/// problem in one pass, so an operator fixes the file once.
pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), Vec<ConfigError>> {
    let (config, warnings) = load_reporting(path);
    config.map(|config| (config, warnings))
}

/// As `load`, but the warnings come back also when there are errors, so
/// `validate` can print both.
pub fn load_reporting(path: &Path) -> (Result<Config, Vec<ConfigError>>, Vec<Warning>) {
    load_with_env(path, &|name| std::env::var_os(name))
}

/// Re-reads the bots of `config`: those of its `registry_file`, or the inline ones
/// when it has none. The agent calls this before every check; an error leaves the
/// caller's previous registry in force.
pub fn load_registry(config: &Config) -> Result<Vec<Bot>, Vec<ConfigError>> {
    load_registry_with_env(config, &|name| std::env::var_os(name))
}

fn load_with_env(
    path: &Path,
    env: build::Env<'_>,
) -> (Result<Config, Vec<ConfigError>>, Vec<Warning>) {
    let text = match read(path) {
        Ok(text) => text,
        Err(errors) => return (Err(errors), Vec::new()),
    };
    let (raw, structure) = match raw::parse_config(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let error = ConfigError::new(path, ConfigErrorKind::Syntax(e));
            return (Err(vec![error]), Vec::new());
        }
    };
    let mut errors: Vec<ConfigError> = structure
        .problems
        .into_iter()
        .map(|kind| ConfigError::new(path, kind))
        .collect();
    let mut warnings = Vec::new();
    let mut config = {
        let mut sink = build::Sink {
            file: path,
            errors: &mut errors,
        };
        build::build_config(
            path,
            &config_dir(path),
            raw,
            &structure.dropped,
            env,
            &mut sink,
            &mut warnings,
        )
    };
    if config.registry_file.is_some() {
        match load_registry_with_env(&config, env) {
            Ok(bots) => config.bots = bots,
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        (Ok(config), warnings)
    } else {
        (Err(errors), warnings)
    }
}

fn load_registry_with_env(
    config: &Config,
    env: build::Env<'_>,
) -> Result<Vec<Bot>, Vec<ConfigError>> {
    let Some(file) = &config.registry_file else {
        return Ok(config.bots.clone());
    };
    let text = read(file)?;
    let (raw, structure) = raw::parse_registry(&text)
        .map_err(|e| vec![ConfigError::new(file, ConfigErrorKind::Syntax(e))])?;
    let mut errors: Vec<ConfigError> = structure
        .problems
        .into_iter()
        .map(|kind| ConfigError::new(file, kind))
        .collect();
    let raw_bots = raw.bots.unwrap_or_default();
    let mut sink = build::Sink {
        file,
        errors: &mut errors,
    };
    if raw_bots.is_empty() && !structure.dropped.contains("bots") {
        sink.push(ConfigErrorKind::EmptyRegistry);
    }
    let template = &config.repo.config_path_template;
    let defaults = build::BotDefaults {
        // A wrong template fails `load`, so any `Config` there is has a sound one.
        config_path_template: Some(template.as_str()),
        schema_path_template: config.repo.schema_path_template.as_deref(),
        runtime_headers: &config.runtime.headers,
    };
    let bots = build::build_bots(raw_bots, &structure.dropped, &defaults, env, &mut sink);
    if errors.is_empty() {
        Ok(bots)
    } else {
        Err(errors)
    }
}

fn read(path: &Path) -> Result<String, Vec<ConfigError>> {
    std::fs::read_to_string(path).map_err(|e| {
        let reason = e.to_string();
        vec![ConfigError::new(
            path,
            ConfigErrorKind::Unreadable { reason },
        )]
    })
}

/// The folder relative paths resolve against, made absolute so a later change of
/// working directory cannot move them.
fn config_dir(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match absolute.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url_credentials("https://user:tok@example.com/x"),
            "https://***@example.com/x"
        );
        assert_eq!(
            redact_url_credentials("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert_eq!(
            redact_url_credentials("ssh://git@host/repo"),
            "ssh://***@host/repo"
        );
    }
}
