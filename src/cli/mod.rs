//! The command line (§2): parse arguments, run one command, map its outcome to an
//! exit code. Results go to stdout, warnings (`warning: …`), progress and errors to
//! stderr; an error is printed once, as one sentence.

pub mod admin;
pub mod audit;
pub mod check;
pub mod diff;
pub mod output;
pub mod run;
pub mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes shared by the commands (§2).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const DRIFT: u8 = 2;
    pub const UNKNOWN: u8 = 3;
}

#[derive(Parser, Debug)]
#[command(
    name = "config-drift-detector",
    version,
    about = "Finds drift between live bots' running configs and the signed-off versions in Git.",
    after_help = "Start with `config-drift-detector demo`, then `validate --config FILE` and `run --config FILE`.\n\
                  The admin clients (bots, ack, approve, clear, pause, resume, audit verify --server) read the\n\
                  agent's address from --server or CDD_SERVER, the bearer token from CDD_TOKEN, and a private CA\n\
                  for an HTTPS agent from CDD_CA_FILE."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The agent: scheduler, state, telemetry, HTTP server.
    #[command(
        after_help = "Exit codes: 0 after SIGTERM/SIGINT and a clean shutdown, 1 on any startup error \
                            (bad config, corrupt or locked state database, port in use).\n\
                            SIGHUP re-reads the config file; RUST_LOG filters stderr (default info); \
                            OTEL_EXPORTER_OTLP_ENDPOINT turns on OTLP export."
    )]
    Run {
        /// The config file (TOML); relative paths in it resolve against its folder.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Overrides check_interval_minutes, e.g. `5s` for demos and tests (at least 1s;
        /// logged as a warning).
        #[arg(long, value_name = "DUR")]
        check_interval: Option<String>,
        /// Watch only the bots of shard K of N (jump consistent hash of the slug), so N
        /// agents with one registry cover each bot once.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// stderr logs: `text` for people, `json` for machines (one object per line).
        #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
        log_format: LogFormatArg,
    },
    /// One evaluation now: no state, no telemetry export.
    #[command(
        after_help = "Exit codes: 0 all IN_SYNC, 2 any DRIFT, 3 no DRIFT but some UNKNOWN, \
                            1 usage or config error (also an unregistered --bot)."
    )]
    Check {
        /// The config file (TOML); relative paths in it resolve against its folder.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Check only this bot (repeatable); it must be in the registry.
        #[arg(long = "bot", value_name = "SLUG")]
        bots: Vec<String>,
        /// Check only the bots of shard K of N (jump consistent hash of the slug).
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// `table` (a row per drift) for people, `json` (one report per line) for programs.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Compares two documents (files, `-` for stdin, or REV:PATH with --repo).
    #[command(
        after_help = "A is reported as running, B as committed. Formats by extension: .json .yaml .yml .toml.\n\
                            Exit codes: 0 equal, 2 drift, 1 error."
    )]
    Diff {
        /// The running side: a file, `-` for standard input, or REV:PATH with --repo.
        #[arg(value_name = "A")]
        a: String,
        /// The committed side: a file, `-` for standard input, or REV:PATH with --repo.
        #[arg(value_name = "B")]
        b: String,
        /// A JSON Schema to canonicalise both sides through (defaults, keyed arrays, sets,
        /// ignored and secret fields); REV:PATH with --repo.
        #[arg(long, value_name = "FILE")]
        schema: Option<String>,
        /// Numbers differ only when |A − B| exceeds this (0..=0.001, as in the config).
        #[arg(long, value_name = "X")]
        tolerance: Option<String>,
        /// Read A, B and --schema written REV:PATH as Git blobs of this repository (a
        /// local path or a Git URL), without checking anything out.
        #[arg(long, value_name = "URL")]
        repo: Option<String>,
        /// `table` for people, `json` (one report) for programs.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Parses and checks the config, printing every warning.
    #[command(
        after_help = "Exit codes: 0 ok, 1 error. Every warning and every error is printed, each as one line."
    )]
    Validate {
        /// The config file (TOML); relative paths in it resolve against its folder.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// A self-contained demonstration on loopback (about 10 s; leaves nothing behind).
    Demo,
    /// Every bot's last report, from a running agent (admin API; viewer).
    Bots(admin::BotsArgs),
    /// Requests a two-person ack of a bot's drift (admin API; oncall).
    Ack(admin::AckArgs),
    /// Approves someone else's ack request (admin API; oncall).
    Approve(admin::ApproveArgs),
    /// Ends a bot's drift episode as `cleared` (admin API; admin).
    Clear(admin::ClearArgs),
    /// Pauses paging; checks and evidence go on (admin API; admin).
    Pause(admin::PauseArgs),
    /// Ends a pause (admin API; admin).
    Resume(admin::ResumeArgs),
    /// The audit hash chain.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

pub fn main() -> ExitCode {
    // One TLS provider for every client in the process (reqwest is built without one
    // so that only ring, which needs no cmake, is compiled).
    let _ = rustls::crypto::ring::default_provider().install_default();
    raise_open_file_limit();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::ERROR
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The agent sets up its own logging (`--log-format`, the OTel bridge).
    if !matches!(cli.command, Command::Run { .. }) {
        init_stderr_logging();
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check {
            config,
            bots,
            shard,
            format,
        } => check::run(&config, &bots, shard.as_deref(), format),
        Command::Diff {
            a,
            b,
            schema,
            tolerance,
            repo,
            format,
        } => diff::run(diff::DiffArgs {
            a: &a,
            b: &b,
            schema: schema.as_deref(),
            tolerance: tolerance.as_deref(),
            repo: repo.as_deref(),
            format,
        }),
        Command::Validate { config } => validate::run(&config),
        Command::Run {
            config,
            check_interval,
            shard,
            log_format,
        } => run::run(run::RunArgs {
            config: &config,
            check_interval: check_interval.as_deref(),
            shard: shard.as_deref(),
            log_format: match log_format {
                LogFormatArg::Text => crate::telemetry::LogFormat::Text,
                LogFormatArg::Json => crate::telemetry::LogFormat::Json,
            },
        }),
        Command::Demo => crate::demo::run().map(|()| exit::OK),
        Command::Bots(a) => admin::run(admin::Call::Bots, &a.server),
        Command::Ack(a) => admin::run(
            admin::Call::Ack {
                slug: a.slug,
                reason: a.reason,
            },
            &a.server,
        ),
        Command::Approve(a) => admin::run(admin::Call::Approve { id: a.ack_id }, &a.server),
        Command::Clear(a) => admin::run(
            admin::Call::Clear {
                slug: a.slug,
                reason: a.reason,
            },
            &a.server,
        ),
        Command::Pause(a) => admin::run(
            admin::Call::Pause {
                reason: a.reason,
                duration: a.duration,
            },
            &a.server,
        ),
        Command::Resume(a) => admin::run(admin::Call::Resume, &a.server),
        Command::Audit { command } => audit::run(command),
    }
}

/// Loads and validates a config file, printing warnings and errors on stderr.
/// `None` means it failed (the errors were printed).
pub fn load_config(path: &Path) -> Option<crate::config::Config> {
    let (config, warnings) = crate::config::load_reporting(path);
    // Warnings too when there are errors: the operator fixes the file once.
    for w in warnings {
        eprintln!("warning: {w}");
    }
    match config {
        Ok(config) => Some(config),
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

/// Developer logs on stderr, filtered by `RUST_LOG` (default: warnings only).
fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
}

/// A fleet's bots usually each have their own host:port, and kept-alive
/// connections hold a descriptor each: the default soft limit of 1,024 would make
/// bots past it UNKNOWN. Raise the soft limit to the hard one.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
