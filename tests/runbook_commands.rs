//! Every shell command of `alerts/runbook.md` runs as the runbook gives it. The
//! test reads each ```sh block, takes each command line (the text before a
//! trailing `# comment`), fills in the runbook's placeholders with a real
//! agent's values (`URL`, `HOST:9464`, `ACK_ID`, the config path, the token in
//! `CDD_TOKEN` for the role the command needs) and runs it through `sh -c`, so
//! its `| jq …` pipeline really runs, against an agent on loopback that has a
//! drifting bot, acks to approve and a pause to resume. Each must exit 0, or the
//! code its comment names (`# exit 2 …`); a jq pipeline must print something.
//! Skipped, because the runbook marks them so: a line holding `…` (what the
//! reader fills in, e.g. `export CDD_TOKEN=…`: the test sets the token itself)
//! and `# on the host` (systemd on the detector's machine; the test checks only
//! that they name the shipped unit).
//!
//! Needs `jq` and `curl` (Debian packages of those names; `.ci/run` installs
//! them): missing, the test skips with a printed reason, or fails under `CI=true`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::agent::{AgentProcess, http_get};
use support::fleet_agent::{Fleet, with_limit};
use support::{binary, tools};

/// The runbook's example bot, drifting during the test, and a control bot.
const BOT: &str = "risk.killswitch";
const OTHER: &str = "mm.eu";

/// Identities: name, role, token. Two on-calls, because an ack needs a second
/// person to approve it.
const IDENTITIES: &[(&str, &str, &str)] = &[
    ("vic", "viewer", "tok-viewer-vic"),
    ("olga", "oncall", "tok-oncall-olga"),
    ("oscar", "oncall", "tok-oncall-oscar"),
    ("ada", "admin", "tok-admin-ada"),
];

/// How many commands the runbook's ```sh blocks hold, and how many of them it
/// marks as not runnable here. A runbook edit that adds, drops or marks a
/// command must update these (and, for a new command, what it needs below).
const COMMANDS_IN_RUNBOOK: usize = 17;
const MARKED_PLACEHOLDER: usize = 1;
const MARKED_ON_THE_HOST: usize = 2;

/// Long enough that no scheduled check runs during the test: a pending ack
/// lapses after one interval, and the drift must stay as the runbook finds it.
const INTERVAL: &str = "300s";

const SOON: Duration = Duration::from_secs(30);

/// One command line of a ```sh block.
#[derive(Debug)]
struct RunbookCommand {
    /// Line number in the runbook, for messages.
    line: usize,
    /// The command, without its trailing comment.
    command: String,
    /// The trailing comment, without `#`, or empty.
    comment: String,
}

impl RunbookCommand {
    fn placeholder(&self) -> bool {
        self.command.contains('…')
    }

    fn on_the_host(&self) -> bool {
        self.comment.contains("on the host")
    }

    /// The exit code the comment names (`exit 2 while it drifts`), else 0.
    fn expected_exit(&self) -> i32 {
        self.comment
            .split_whitespace()
            .skip_while(|w| *w != "exit")
            .nth(1)
            .map(|code| {
                code.parse()
                    .unwrap_or_else(|_| panic!("line {}: bad exit code {code:?}", self.line))
            })
            .unwrap_or(0)
    }

    /// The admin-client subcommand (`bots`, `ack`, …), if it is one.
    fn subcommand(&self) -> Option<&str> {
        let mut words = self.command.split_whitespace();
        (words.next() == Some("config-drift-detector"))
            .then(|| words.next())
            .flatten()
    }
}

/// Splits a shell line at its trailing comment: a `#` that starts a word
/// outside quotes.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev.is_whitespace() => {
                return (line[..i].trim_end(), line[i + 1..].trim());
            }
            _ => {}
        }
        prev = c;
    }
    (line.trim_end(), "")
}

/// Every command line of every ```sh block, in order. Whole-line comments and
/// blank lines are not commands.
fn runbook_commands(markdown: &str) -> Vec<RunbookCommand> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && info.trim() == "sh";
            continue;
        }
        if !in_sh || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (command, comment) = split_comment(trimmed);
        out.push(RunbookCommand {
            line: i + 1,
            command: command.to_owned(),
            comment: comment.to_owned(),
        });
    }
    out
}

#[test]
fn the_extractor_reads_commands_comments_and_exit_codes() {
    let md = "text\n```sh\n# a comment line\nfoo --reason \"a # b\" URL  # exit 2 if so\n\nexport X=…   # fill in\n```\n```toml\nnot = \"a command\"\n```\n```sh\nbar | jq 'select(.a==\"#x\")'\n```\n";
    let found = runbook_commands(md);
    let commands: Vec<&str> = found.iter().map(|c| c.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "foo --reason \"a # b\" URL",
            "export X=…",
            "bar | jq 'select(.a==\"#x\")'"
        ]
    );
    assert_eq!(found[0].expected_exit(), 2);
    assert!(found[1].placeholder());
    assert_eq!(found[2].expected_exit(), 0);
    assert_eq!(found[2].line, 12);
}

/// A config for `fleet` with [`IDENTITIES`] and a rate limit no test run reaches.
fn config(fleet: &Fleet, slugs: &[&str]) -> PathBuf {
    let bots: String = slugs
        .iter()
        .map(|s| Fleet::bot_entry(s, &fleet.bots.url(&format!("/{s}"))))
        .collect();
    let tokens: String = IDENTITIES
        .iter()
        .map(|(name, role, token)| {
            format!(
                "[[auth.tokens]]\nname = {name:?}\nrole = {role:?}\nsha256 = {:?}\n\n",
                hex::encode(Sha256::digest(token.as_bytes()))
            )
        })
        .collect();
    let text = format!(
        "mode = \"advisory\"\n\n[repo]\nurl = {:?}\nbranch = \"main\"\nconfig_path = \"bots/{{slug}}.json\"\ncheckout_dir = \"state/repo\"\n\n[state]\npath = \"state/db\"\n\n[server]\nlisten = \"{}\"\nrate_limit_per_s = 100\nrate_limit_burst = 100\n\n{bots}{tokens}",
        fleet.repo.path().display().to_string(),
        fleet.addr,
    );
    let path = fleet.dir.path().join("config.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

fn token(name: &str) -> &'static str {
    IDENTITIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, t)| *t)
        .expect("a known identity")
}

/// The identity a client subcommand runs as: the lowest role that may, and for
/// `approve` another on-call than the one who asked (the two-person rule).
fn identity_for(subcommand: Option<&str>) -> Option<&'static str> {
    match subcommand? {
        "bots" => Some("vic"),
        "ack" => Some("olga"),
        "approve" => Some("oscar"),
        "clear" | "pause" | "resume" => Some("ada"),
        _ => None,
    }
}

/// Runs `command` through `sh -c` with the built binary first on `PATH`, so the
/// runbook's `config-drift-detector …` is this build, and `token` in `CDD_TOKEN`.
fn sh(command: &str, token: Option<&str>, cwd: &Path) -> Output {
    let bin_dir = Path::new(binary()).parent().expect("the binary's folder");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("CDD_SERVER")
        .env_remove("CDD_TOKEN")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("CDD_TOKEN", t);
    }
    cmd.output().expect("sh runs")
}

fn describe(c: &RunbookCommand, run: &str, out: &Output) -> String {
    format!(
        "runbook line {}: {}\n  ran: {run}\n  exit: {:?}\n  stdout: {}\n  stderr: {}",
        c.line,
        c.command,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The runbook's commands, in its order, against an agent whose `risk.killswitch`
/// drifts: `bots` (table and JSON lines), `ack` then `approve` by another
/// on-call, `clear`, the jq pipelines that read one bot's drifts and reasons,
/// `check` (exit 2: it still drifts), the health endpoints with curl, `resume`
/// of a pause, `validate`.
#[test]
fn every_command_in_the_runbook_runs_against_a_real_agent() {
    if !tools::require_all(&["jq", "curl"]) {
        return;
    }
    let runbook_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/runbook.md");
    let runbook = std::fs::read_to_string(&runbook_path).expect("runbook.md");
    let commands = runbook_commands(&runbook);
    let listing: Vec<String> = commands
        .iter()
        .map(|c| format!("{}: {}", c.line, c.command))
        .collect();
    assert_eq!(
        commands.len(),
        COMMANDS_IN_RUNBOOK,
        "the runbook's ```sh blocks hold another number of commands: {listing:#?}"
    );
    assert_eq!(
        commands.iter().filter(|c| c.placeholder()).count(),
        MARKED_PLACEHOLDER,
        "{listing:#?}"
    );
    assert_eq!(
        commands.iter().filter(|c| c.on_the_host()).count(),
        MARKED_ON_THE_HOST,
        "{listing:#?}"
    );

    // The agent, as the runbook finds it: the bot drifting, the agent paused.
    let fleet = Fleet::new(&[BOT, OTHER]);
    fleet.edit(BOT, &with_limit(3));
    let config = config(&fleet, &[BOT, OTHER]);
    let agent = AgentProcess::start(&config, fleet.addr, &["--check-interval", INTERVAL], &[]);
    agent.wait_series(&format!("bots_in_drift{{bot_id=\"{BOT}\"}}"), 1.0, SOON);
    let url = format!("http://{}", fleet.addr);
    let paused = sh(
        &format!("config-drift-detector pause --reason \"runbook test\" --server {url}"),
        Some(token("ada")),
        fleet.dir.path(),
    );
    assert!(paused.status.success(), "{paused:?}");

    let mut ack_id: Option<String> = None;
    let mut ran = 0;
    for c in &commands {
        if c.placeholder() {
            continue;
        }
        if c.on_the_host() {
            // systemd's commands cannot run here; they must name the shipped unit.
            let unit = c
                .command
                .split_whitespace()
                .find(|w| w.starts_with("config-drift-detector"))
                .unwrap_or_else(|| panic!("line {}: which unit? {}", c.line, c.command));
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy")
                .join(format!("{unit}.service"));
            assert!(
                shipped.is_file(),
                "line {}: {unit} is not the unit deploy/ ships",
                c.line
            );
            continue;
        }
        let mut run = c
            .command
            .replace(
                "/etc/config-drift-detector/config.toml",
                &config.to_string_lossy(),
            )
            .replace("http://HOST:9464", &url);
        run = run
            .split(' ')
            .map(|w| if w == "URL" { url.as_str() } else { w })
            .collect::<Vec<_>>()
            .join(" ");
        if run.contains("ACK_ID") {
            let id = ack_id
                .as_deref()
                .unwrap_or_else(|| panic!("line {}: no ack was requested before", c.line));
            run = run.replace("ACK_ID", id);
        }
        for placeholder in ["URL", "HOST", "ACK_ID", "/etc/"] {
            assert!(
                !run.contains(placeholder),
                "line {}: {placeholder} left in {run}",
                c.line
            );
        }
        let out = sh(
            &run,
            identity_for(c.subcommand()).map(token),
            fleet.dir.path(),
        );
        ran += 1;
        let what = describe(c, &run, &out);
        assert_eq!(out.status.code(), Some(c.expected_exit()), "{what}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if run.contains("| jq") {
            assert!(
                !stdout.trim().is_empty() && stdout.lines().all(|l| l.trim() != "null"),
                "the jq pipeline printed nothing: {what}"
            );
        }
        match c.subcommand() {
            Some("ack") => {
                // "A second person approves it with: config-drift-detector approve ID"
                let id = stdout
                    .lines()
                    .find_map(|l| l.split("config-drift-detector approve ").nth(1))
                    .unwrap_or_else(|| panic!("the ack printed no id to approve: {what}"));
                ack_id = Some(id.trim().to_owned());
            }
            Some("approve") => assert!(stdout.contains("active"), "{what}"),
            _ => {}
        }
    }
    assert_eq!(
        ran,
        COMMANDS_IN_RUNBOOK - MARKED_PLACEHOLDER - MARKED_ON_THE_HOST
    );
    // The runbook's `resume` ended the pause.
    let (status, health) = http_get(fleet.addr, "/healthz/config_drift_detector").expect("health");
    assert_eq!(status, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).expect("health JSON");
    assert_eq!(health["paused"], false, "{health}");
}
