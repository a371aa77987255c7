//! What can be wrong with a configuration or registry file (§3), as values a
//! caller can match: [`ConfigError`] names the file, [`ConfigErrorKind`] says what
//! is wrong there (one variant per problem class) and keeps the key, bot, token or
//! value at fault.
//!
//! `Display` is the one sentence an operator reads from `validate`, `check` and a
//! refused SIGHUP; those sentences are part of the contract, so a text changes
//! only with CONTRACT.md. Must never hold a header value: header problems keep
//! the header's name and the environment variable's name, URLs are kept with
//! their credentials already redacted.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::slug::{BotSlug, InvalidSlug};
use crate::canon::Decimal;
use crate::canon::path::PatternError;

/// One problem in a configuration file: `<file>: <sentence>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {kind}")]
pub struct ConfigError {
    /// The file at fault: the configuration file or its `registry_file`.
    pub file: PathBuf,
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            file: file.into(),
            kind,
        }
    }
}

/// What is wrong, without the file. Grouped as the checks run: reading and
/// structure (`raw.rs`), then values, section by section (`build/`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    // --- Reading and structure ---
    /// The file could not be read; `reason` is the operating system's text.
    #[error("cannot be read: {reason}")]
    Unreadable { reason: String },
    #[error("{0}")]
    Syntax(SyntaxError),
    /// A shape the structural pass does not know; `detail` is serde's text.
    #[error("the file could not be read: {detail}")]
    Unrecognised { detail: String },
    #[error("unknown key `{key}`{place}{}", DidYouMean(*suggestion))]
    UnknownKey {
        key: String,
        place: Place,
        /// The closest known key, when one is close enough to be a typo.
        suggestion: Option<&'static str>,
    },
    #[error("`{key}` must be a table ([{key}]), not {}", a(got))]
    NotATable {
        key: &'static str,
        got: &'static str,
    },
    #[error("`{array}` must be an array of tables ([[{array}]]), not {}", a(got))]
    NotAnArrayOfTables {
        array: &'static str,
        got: &'static str,
    },
    #[error("[[{array}]] entry #{number} must be a table, not {}", a(got))]
    EntryNotATable {
        array: &'static str,
        /// 1-based, as an operator counts entries.
        number: usize,
        got: &'static str,
    },
    /// Never serde's text: it could quote a header value.
    #[error("`headers`{place} must be a table of header names to string values")]
    HeadersNotATable { place: Place },
    #[error("`{key}`{place} must be {expected}, not {}", a(got))]
    WrongType {
        key: String,
        place: Place,
        /// In an operator's words: "an integer", "a string", "a table".
        expected: String,
        got: &'static str,
    },
    /// A wrong type inside an array or table; `detail` is serde's text.
    #[error("`{key}`{place} has a value of the wrong type: {detail}")]
    WrongTypeIn {
        key: String,
        place: Place,
        detail: String,
    },

    // --- Top-level values ---
    #[error("mode = \"{got}\" is not one of off, shadow, advisory, enforced")]
    UnknownMode { got: String },
    /// An integer key outside its allowed range.
    #[error("{key} = {got}{place} is outside {}..={}", range.start(), range.end())]
    OutOfRange {
        key: &'static str,
        place: Place,
        got: i64,
        range: RangeInclusive<u64>,
    },
    #[error("tolerance_for_numeric_drift must be a finite number")]
    ToleranceNotFinite,
    #[error("tolerance_for_numeric_drift = {got} is outside 0..={max}")]
    ToleranceOutOfRange { got: Decimal, max: Decimal },
    #[error("`ignore_fields` entry {0}")]
    IgnoreField(PatternError),

    // --- [repo] ---
    #[error("[repo] is missing (its `url` is required)")]
    RepoMissing,
    #[error("`url` in [repo] {0}")]
    RepoUrl(RepoUrlError),
    #[error("`branch` in [repo] (`{branch}`) is not a valid branch name")]
    InvalidBranch { branch: String },
    /// `config_path` or `schema_path` in `[repo]`, checked once for every bot.
    #[error("`{key}` in [repo] (`{template}`) {problem}")]
    RepoPathTemplate {
        key: &'static str,
        template: String,
        problem: PathProblem,
    },
    #[error(
        "`require_signed_commits` in [repo] is true but neither `allowed_signers` nor `gpg_keyring` is set"
    )]
    NoSignatureTrust,

    // --- Files any section names ---
    /// A file the agent will read (keys, certificates) is not there.
    #[error("`{key}`{place} (`{}`) is not a readable file", path.display())]
    MissingFile {
        key: &'static str,
        place: Place,
        path: PathBuf,
    },
    /// One of a pair that must be set together (`client_cert`/`client_key`,
    /// `tls_cert`/`tls_key`).
    #[error("[{table}] has `{set}` without `{unset}`; set both or neither")]
    UnpairedFile {
        table: &'static str,
        set: &'static str,
        unset: &'static str,
    },

    // --- Headers ([runtime] and bots) ---
    #[error("header name `{name}` {owner} is not a valid HTTP header name")]
    InvalidHeaderName { owner: HeaderOwner, name: String },
    /// Two names that differ only in case.
    #[error("headers `{first}` and `{second}` {owner} name the same header")]
    DuplicateHeader {
        owner: HeaderOwner,
        first: String,
        second: String,
    },
    #[error("header `{name}` {owner} {error}")]
    HeaderEnv {
        owner: HeaderOwner,
        name: String,
        error: ExpandError,
    },
    #[error(
        "header `{name}` {owner} has a value that is not a valid HTTP header value (visible ASCII, spaces and tabs only)"
    )]
    InvalidHeaderValue { owner: HeaderOwner, name: String },

    // --- [state] and [server] ---
    #[error("`path` in [state] is empty")]
    EmptyStatePath,
    #[error("`listen` in [server] (`{got}`) is not a socket address such as 127.0.0.1:9464")]
    InvalidListen { got: String },

    // --- Bots and the registry ---
    #[error("`registry_file` (`{}`) and inline [[bots]] are both set; keep one", registry.display())]
    RegistryAndInlineBots { registry: PathBuf },
    #[error("no bot is registered: add [[bots]] entries or set `registry_file`")]
    NoBots,
    #[error("the registry has no bot: add at least one [[bots]] entry")]
    EmptyRegistry,
    #[error("[[bots]] entry #{number}: {error}")]
    InvalidSlug { number: usize, error: InvalidSlug },
    #[error("bot `{slug}` is registered twice ([[bots]] entries #{first} and #{second})")]
    DuplicateSlug {
        slug: BotSlug,
        first: usize,
        second: usize,
    },
    #[error("{bot}: {error}")]
    InvalidRuntime { bot: Entry, error: RuntimeUrlError },
    /// A bot's own `config_path` or `schema_path`.
    #[error("{bot}: `{key}` (`{path}`) {problem}")]
    BotPath {
        bot: Entry,
        key: &'static str,
        path: String,
        problem: PathProblem,
    },
    /// A required key of a `[[bots]]` or `[[auth.tokens]]` entry is absent.
    #[error("{entry} has no `{key}`")]
    MissingEntryKey { entry: Entry, key: &'static str },

    // --- [[auth.tokens]] ---
    #[error("token name `{name}` is used twice ([[auth.tokens]] entries #{first} and #{second})")]
    DuplicateTokenName {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("[[auth.tokens]] entry #{number} has an empty `name`")]
    EmptyTokenName { number: usize },
    #[error("{token}: role `{got}` is not one of viewer, oncall, admin")]
    UnknownRole { token: Entry, got: String },
    #[error("{token}: `sha256` must be 64 hexadecimal digits (the SHA-256 of the token)")]
    InvalidSha256 { token: Entry },
}

/// A TOML syntax error, located for the operator (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TOML syntax error at line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    /// The TOML parser's text, on one line.
    pub message: String,
}

/// Where a key sits: `Display` is `""`, ` in [runtime]`, ` in [[bots]] entry `a``
/// or ` in [[bots]] entry #2`, ready to follow the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Top,
    Table(&'static str),
    Entry {
        array: &'static str,
        /// 0-based, as in the dropped-key set; shown 1-based.
        index: usize,
        /// The entry's name key (`slug`, `name`), when it has one.
        name: Option<String>,
    },
}

impl Place {
    /// The key's path in the dropped-key set: `repo.url`, `bots[2].slug`.
    pub(super) fn path(&self, key: &str) -> String {
        match self {
            Place::Top => key.to_owned(),
            Place::Table(t) => format!("{t}.{key}"),
            Place::Entry { array, index, .. } => format!("{array}[{index}].{key}"),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Top => Ok(()),
            Place::Table(t) => write!(f, " in [{t}]"),
            Place::Entry {
                array,
                name: Some(name),
                ..
            } => write!(f, " in [[{array}]] entry `{name}`"),
            Place::Entry {
                array,
                index,
                name: None,
            } => write!(f, " in [[{array}]] entry #{}", index + 1),
        }
    }
}

/// A `[[bots]]` or `[[auth.tokens]]` entry, by its name when it has a sound one,
/// else by its 1-based number in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Bot(BotSlug),
    BotNumber(usize),
    Token(String),
    TokenNumber(usize),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Bot(slug) => write!(f, "bot `{slug}`"),
            Entry::BotNumber(n) => write!(f, "[[bots]] entry #{n}"),
            Entry::Token(name) => write!(f, "token `{name}`"),
            Entry::TokenNumber(n) => write!(f, "[[auth.tokens]] entry #{n}"),
        }
    }
}

/// Whose header table: `[runtime]`'s (every bot's) or one bot's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOwner {
    Runtime,
    Bot(Entry),
}

impl fmt::Display for HeaderOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderOwner::Runtime => f.write_str("in [runtime]"),
            HeaderOwner::Bot(bot) => write!(f, "of {bot}"),
        }
    }
}

/// Why `[repo].url` is refused. URLs are shown with credentials redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoUrlError {
    #[error("is required")]
    Missing,
    #[error("is empty")]
    Empty,
    #[error("uses the scheme `{scheme}://`; use a local path, file://, https:// or ssh://")]
    UnknownScheme { scheme: String },
    #[error("(`{scheme}://`) names no repository")]
    NoRepository { scheme: String },
    /// `git@host:org/repo`: looks like a relative path, is SSH.
    #[error("(`{redacted}`) is scp-style; write it as ssh://{ssh_redacted}")]
    ScpStyle {
        redacted: String,
        /// The same URL in `ssh://` form, less the scheme.
        ssh_redacted: String,
    },
}

/// Why a path cannot name a committed file inside the repo's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// Only a template (`[repo].config_path`) must hold `{slug}`.
    #[error("must contain {{slug}}")]
    NoSlug,
    #[error("must end in .json, .yaml, .yml or .toml")]
    UnknownFormat,
    #[error("must be relative to the repo's root (no leading `/`)")]
    Absolute,
    #[error("resolves outside the repo tree")]
    Escapes,
    #[error("names no file")]
    Empty,
}

/// Why a bot's `runtime =` is refused (§4). `redacted` is the URL with any
/// credentials replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeUrlError {
    #[error(
        "runtime `{redacted}` is not a URL; use http://, https://, grpc://host:port, grpcs://host:port or file:///abs/path"
    )]
    NotAUrl { redacted: String },
    #[error("runtime `{redacted}` is not a valid {scheme}:// URL")]
    InvalidHttp { redacted: String, scheme: String },
    #[error("runtime `{redacted}` must be exactly {scheme}://host:port")]
    NotHostPort { redacted: String, scheme: String },
    #[error("runtime `{redacted}` must name an absolute path, as file:///abs/path")]
    FileNotAbsolute { redacted: String },
    #[error(
        "runtime `{redacted}` uses the scheme `{scheme}://`; use http://, https://, grpc://host:port, grpcs://host:port or file:///abs/path"
    )]
    UnknownScheme { redacted: String, scheme: String },
}

/// Why `${…}` expansion failed. Holds the variable's name, never any value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("uses ${{{0}}}, which is not set in the environment")]
    Unset(String),
    #[error("uses ${{{0}}}, which is not valid UTF-8")]
    NotUtf8(String),
    #[error(
        "has a malformed ${{…}} reference (write ${{NAME}}, with NAME letters, digits and `_`; `$${{` is a literal `${{`)"
    )]
    Malformed,
}

/// ` (did you mean `x`?)`, or nothing.
struct DidYouMean(Option<&'static str>);

impl fmt::Display for DidYouMean {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, " (did you mean `{key}`?)"),
            None => Ok(()),
        }
    }
}

/// A TOML type name with its article: "an integer", "a string".
fn a(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences are the contract's: these are the texts `validate` printed
    /// before the errors were typed, character for character.
    #[test]
    fn each_kind_renders_the_contract_sentence() {
        let bot = || Entry::Bot(BotSlug::parse("mm.eu").unwrap());
        let cases: Vec<(ConfigErrorKind, &str)> = vec![
            (
                ConfigErrorKind::UnknownKey {
                    key: "timout_ms".into(),
                    place: Place::Table("runtime"),
                    suggestion: Some("timeout_ms"),
                },
                "unknown key `timout_ms` in [runtime] (did you mean `timeout_ms`?)",
            ),
            (
                ConfigErrorKind::UnknownKey {
                    key: "x".into(),
                    place: Place::Entry {
                        array: "bots",
                        index: 1,
                        name: None,
                    },
                    suggestion: None,
                },
                "unknown key `x` in [[bots]] entry #2",
            ),
            (
                ConfigErrorKind::WrongType {
                    key: "max_in_flight".into(),
                    place: Place::Table("runtime"),
                    expected: "an integer".into(),
                    got: "string",
                },
                "`max_in_flight` in [runtime] must be an integer, not a string",
            ),
            (
                ConfigErrorKind::OutOfRange {
                    key: "history_depth",
                    place: Place::Table("repo"),
                    got: 0,
                    range: 1..=1_000_000,
                },
                "history_depth = 0 in [repo] is outside 1..=1000000",
            ),
            (
                ConfigErrorKind::RepoUrl(RepoUrlError::ScpStyle {
                    redacted: "***@host:org/repo".into(),
                    ssh_redacted: "***@host/org/repo".into(),
                }),
                "`url` in [repo] (`***@host:org/repo`) is scp-style; write it as ssh://***@host/org/repo",
            ),
            (
                ConfigErrorKind::RepoPathTemplate {
                    key: "config_path",
                    template: "bots/x.yaml".into(),
                    problem: PathProblem::NoSlug,
                },
                "`config_path` in [repo] (`bots/x.yaml`) must contain {slug}",
            ),
            (
                ConfigErrorKind::UnpairedFile {
                    table: "server",
                    set: "tls_key",
                    unset: "tls_cert",
                },
                "[server] has `tls_key` without `tls_cert`; set both or neither",
            ),
            (
                ConfigErrorKind::HeaderEnv {
                    owner: HeaderOwner::Bot(bot()),
                    name: "Authorization".into(),
                    error: ExpandError::Malformed,
                },
                "header `Authorization` of bot `mm.eu` has a malformed ${…} reference (write ${NAME}, with NAME letters, digits and `_`; `$${` is a literal `${`)",
            ),
            (
                ConfigErrorKind::HeaderEnv {
                    owner: HeaderOwner::Runtime,
                    name: "X".into(),
                    error: ExpandError::Unset("TOKEN".into()),
                },
                "header `X` in [runtime] uses ${TOKEN}, which is not set in the environment",
            ),
            (
                ConfigErrorKind::InvalidSlug {
                    number: 2,
                    error: InvalidSlug("a..b".into()),
                },
                "[[bots]] entry #2: `a..b` is not a valid slug (letters, digits, `.`, `_` and `-`, starting with a letter or digit, never `..`)",
            ),
            (
                ConfigErrorKind::BotPath {
                    bot: Entry::BotNumber(3),
                    key: "schema_path",
                    path: "/abs.json".into(),
                    problem: PathProblem::Absolute,
                },
                "[[bots]] entry #3: `schema_path` (`/abs.json`) must be relative to the repo's root (no leading `/`)",
            ),
            (
                ConfigErrorKind::InvalidRuntime {
                    bot: bot(),
                    error: RuntimeUrlError::NotHostPort {
                        redacted: "grpc://h".into(),
                        scheme: "grpc".into(),
                    },
                },
                "bot `mm.eu`: runtime `grpc://h` must be exactly grpc://host:port",
            ),
            (
                ConfigErrorKind::MissingEntryKey {
                    entry: Entry::TokenNumber(1),
                    key: "name",
                },
                "[[auth.tokens]] entry #1 has no `name`",
            ),
            (
                ConfigErrorKind::UnknownRole {
                    token: Entry::Token("alice".into()),
                    got: "root".into(),
                },
                "token `alice`: role `root` is not one of viewer, oncall, admin",
            ),
        ];
        for (kind, sentence) in cases {
            assert_eq!(kind.to_string(), sentence, "{kind:?}");
        }
    }

    #[test]
    fn an_error_is_its_file_then_its_sentence() {
        let e = ConfigError::new("/etc/cdd.toml", ConfigErrorKind::NoBots);
        assert_eq!(
            e.to_string(),
            "/etc/cdd.toml: no bot is registered: add [[bots]] entries or set `registry_file`"
        );
        let e = ConfigError::new(
            "cdd.toml",
            ConfigErrorKind::Syntax(SyntaxError {
                line: 3,
                column: 1,
                message: "invalid table header".into(),
            }),
        );
        assert_eq!(
            e.to_string(),
            "cdd.toml: TOML syntax error at line 3, column 1: invalid table header"
        );
    }
}
