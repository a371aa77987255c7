//! The command line (§2): parse arguments, run one command, map its outcome to an
//! exit code. Results go to stdout, warnings (`warning: …`), progress and errors to
//! stderr; an error is printed once, as one sentence.

use std::path::PathBuf;
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
    about = "Finds drift between live bots' running configs and the signed-off versions in Git."
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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The agent: scheduler, state, telemetry, HTTP server.
    Run {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_name = "DUR")]
        check_interval: Option<String>,
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
    },
    /// One evaluation now: no state, no telemetry export.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "bot", value_name = "SLUG")]
        bots: Vec<String>,
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Compares two documents (files, `-` for stdin, or REV:PATH with --repo).
    Diff {
        a: String,
        b: String,
        #[arg(long)]
        schema: Option<String>,
        #[arg(long)]
        tolerance: Option<String>,
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Parses and checks the config, printing every warning.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// A self-contained demonstration on loopback.
    Demo,
}

pub fn main() -> ExitCode {
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
        other => anyhow::bail!("`{}` is not built yet", command_name(&other)),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Run { .. } => "run",
        Command::Check { .. } => "check",
        Command::Diff { .. } => "diff",
        Command::Validate { .. } => "validate",
        Command::Demo => "demo",
    }
}
