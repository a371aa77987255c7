//! `load` and `load_registry` against real files in temporary folders.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const ALICE_SHA: &str = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
const BOB_SHA: &str = "81B637D8FCD2C6DA6359E6963113A1170DE795E4B725B84D1E0B4CFD9EC58CE9";

/// The contract's §3 example, with every optional feature switched on.
const FULL: &str = r#"
mode = "advisory"
check_interval_minutes = 10
tolerance_for_numeric_drift = 0.001
ignore_fields = ["runtime.started_at", "per_market[*].updated_at"]
registry_file = ""

[repo]
url = "configs"
branch = "main"
config_path = "bots/{slug}.yaml"
schema_path = "schemas/{slug}.schema.json"
checkout_dir = "state/./repo"
history_depth = 200
max_staleness_s = 600
require_signed_commits = true
allowed_signers = "keys/allowed_signers"
gpg_keyring = ""

[runtime]
timeout_ms = 300
max_in_flight = 8
max_body_bytes = 65536
latency_budget_ms = 4000
headers = { X-Fleet = "prod", Authorization = "Bearer ${FLEET_TOKEN}" }
ca_file = "tls/ca.pem"
client_cert = ""
client_key = ""

[[bots]]
slug = "risk.killswitch"
runtime = "http://127.0.0.1:9101/config"
config_path = "bots/risk/./killswitch.toml"
schema_path = "schemas/risk.schema.json"
headers = { authorization = "Bearer ${KILLSWITCH_TOKEN}" }

[[bots]]
slug = "mm.eu"
runtime = "grpcs://127.0.0.1:50051"

[[bots]]
slug = "arb-1"
runtime = "file:///var/run/arb/config.json"

[state]
path = "state/db"
retention_days = 90
audit_retention_days = 365

[server]
listen = "127.0.0.1:0"
tls_cert = ""
tls_key = ""
rate_limit_per_s = 10
rate_limit_burst = 40

[[auth.tokens]]
name = "alice"
role = "oncall"
sha256 = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"

[[auth.tokens]]
name = "bob"
role = "admin"
sha256 = "81B637D8FCD2C6DA6359E6963113A1170DE795E4B725B84D1E0B4CFD9EC58CE9"
"#;

/// The smallest file `load` accepts.
const MINIMAL: &str = r#"
[repo]
url = "/srv/bot-configs"

[[bots]]
slug = "a"
runtime = "http://127.0.0.1:9101/config"
"#;

fn secrets() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("FLEET_TOKEN", "fleet-s3cret"),
        ("KILLSWITCH_TOKEN", "ks-s3cret"),
    ])
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, text).expect("write");
        path
    }

    fn load(&self, name: &str, text: &str) -> Result<(Config, Vec<Warning>), Vec<ConfigError>> {
        let path = self.write(name, text);
        load_env(&path, &secrets())
    }

    /// Every error of `text` as the lines an operator sees.
    fn errors(&self, text: &str) -> Vec<String> {
        match self.load("cdd.toml", text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }
}

fn load_env(
    path: &Path,
    vars: &HashMap<&'static str, &'static str>,
) -> Result<(Config, Vec<Warning>), Vec<ConfigError>> {
    let (config, warnings) = load_with_env(path, &|name| vars.get(name).map(OsString::from));
    config.map(|config| (config, warnings))
}

/// `MINIMAL` with `extra` lines added at the top level (before any table).
fn minimal_with(extra: &str) -> String {
    format!("{extra}\n{MINIMAL}")
}

/// Asserts exactly one error, that it names the file and holds `needle`.
fn assert_one_error(fx: &Fixture, text: &str, needle: &str) {
    let errors = fx.errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let file = fx.path("cdd.toml");
    assert!(
        errors[0].starts_with(&format!("{}: ", file.display())),
        "{errors:#?}"
    );
    assert!(errors[0].contains(needle), "{needle:?} not in {errors:#?}");
}

#[test]
fn full_example_loads_with_its_values() {
    let fx = Fixture::new();
    fx.write("keys/allowed_signers", "alice ssh-ed25519 AAAA\n");
    fx.write("tls/ca.pem", "-----BEGIN CERTIFICATE-----\n");
    let (config, warnings) = fx.load("cdd.toml", FULL).expect("valid");
    let dir = fx.dir.path();

    assert_eq!(config.file, fx.path("cdd.toml"));
    assert_eq!(config.mode, Mode::Advisory);
    assert_eq!(config.check_interval, Duration::from_secs(600));
    assert_eq!(config.tolerance, Decimal::parse("0.001").unwrap());
    let ignored: Vec<&str> = config.ignore_fields.iter().map(|p| p.as_str()).collect();
    assert_eq!(ignored, ["runtime.started_at", "per_market[*].updated_at"]);
    assert_eq!(config.registry_file, None);

    let repo = &config.repo;
    assert_eq!(PathBuf::from(&repo.url), dir.join("configs"));
    assert_eq!(repo.branch, "main");
    assert_eq!(repo.config_path_template, "bots/{slug}.yaml");
    assert_eq!(
        repo.schema_path_template.as_deref(),
        Some("schemas/{slug}.schema.json")
    );
    assert_eq!(repo.checkout_dir, dir.join("state/repo"));
    assert_eq!(repo.history_depth, 200);
    assert_eq!(repo.max_staleness, Duration::from_secs(600));
    assert!(repo.require_signed_commits);
    assert_eq!(repo.allowed_signers, Some(dir.join("keys/allowed_signers")));
    assert_eq!(repo.gpg_keyring, None);

    let rt = &config.runtime;
    assert_eq!(rt.timeout, Duration::from_millis(300));
    assert_eq!(rt.max_in_flight, 8);
    assert_eq!(rt.max_body_bytes, 65536);
    assert_eq!(rt.latency_budget, Duration::from_millis(4000));
    assert_eq!(rt.ca_file, Some(dir.join("tls/ca.pem")));
    assert_eq!(
        (rt.client_cert.clone(), rt.client_key.clone()),
        (None, None)
    );

    let slugs: Vec<&str> = config.bots.iter().map(|b| b.slug.as_str()).collect();
    assert_eq!(
        slugs,
        ["arb-1", "mm.eu", "risk.killswitch"],
        "slug byte order"
    );

    let ks = config.bot("risk.killswitch").expect("registered");
    assert_eq!(
        ks.runtime,
        RuntimeSource::Http("http://127.0.0.1:9101/config".into())
    );
    assert_eq!(ks.config_path, "bots/risk/killswitch.toml");
    assert_eq!(ks.schema_path.as_deref(), Some("schemas/risk.schema.json"));
    let ks_headers: Vec<(&str, &str)> = ks
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        ks_headers,
        [("authorization", "Bearer ks-s3cret"), ("X-Fleet", "prod")],
        "the bot's header replaces the runtime one whatever its case"
    );

    let mm = config.bot("mm.eu").expect("registered");
    assert_eq!(
        mm.runtime,
        RuntimeSource::Grpc {
            authority: "127.0.0.1:50051".into(),
            tls: true
        }
    );
    assert_eq!(mm.config_path, "bots/mm.eu.yaml");
    assert_eq!(mm.schema_path.as_deref(), Some("schemas/mm.eu.schema.json"));
    let mm_headers: Vec<(&str, &str)> = mm
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        mm_headers,
        [
            ("Authorization", "Bearer fleet-s3cret"),
            ("X-Fleet", "prod")
        ]
    );

    let arb = config.bot("arb-1").expect("registered");
    assert_eq!(
        arb.runtime,
        RuntimeSource::File(PathBuf::from("/var/run/arb/config.json"))
    );
    assert!(config.bot("nope").is_none());

    assert_eq!(config.state.path, dir.join("state/db"));
    assert_eq!(config.state.retention_days, 90);
    assert_eq!(config.state.audit_retention_days, 365);
    assert_eq!(config.server.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(config.server.rate_limit_per_s, 10);
    assert_eq!(config.server.rate_limit_burst, 40);
    assert_eq!(config.server.tls_cert, None);

    assert_eq!(config.tokens.len(), 2);
    assert_eq!(config.tokens[0].name, "alice");
    assert_eq!(config.tokens[0].role, Role::Oncall);
    assert_eq!(hex::encode(config.tokens[0].sha256), ALICE_SHA);
    assert_eq!(config.tokens[1].role, Role::Admin);
    assert_eq!(
        hex::encode(config.tokens[1].sha256),
        BOB_SHA.to_ascii_lowercase()
    );

    // 0.001 is allowed but still worth a warning; the interval of 10 is not.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .to_string()
            .contains("tolerance_for_numeric_drift = 0.001")
    );
    assert!(warnings[0].line().starts_with("warning: "));

    let debug = format!("{config:?}");
    assert!(
        !debug.contains("s3cret"),
        "header values leak through Debug"
    );
}

#[test]
fn omitted_keys_take_their_documented_defaults() {
    let fx = Fixture::new();
    let (config, warnings) = fx.load("cdd.toml", MINIMAL).expect("valid");
    let dir = fx.dir.path();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.mode, Mode::Shadow);
    assert_eq!(config.check_interval, Duration::from_secs(15 * 60));
    assert!(config.tolerance.is_zero());
    assert!(config.ignore_fields.is_empty());
    assert_eq!(config.repo.url, "/srv/bot-configs");
    assert_eq!(config.repo.branch, "main");
    assert_eq!(config.repo.config_path_template, "bots/{slug}.yaml");
    assert_eq!(config.repo.schema_path_template, None);
    assert_eq!(config.repo.checkout_dir, dir.join("state/repo"));
    assert_eq!(config.repo.history_depth, 500);
    assert_eq!(config.repo.max_staleness, Duration::from_secs(900));
    assert!(!config.repo.require_signed_commits);
    assert_eq!(config.runtime.timeout, Duration::from_millis(250));
    assert_eq!(config.runtime.max_in_flight, 32);
    assert_eq!(config.runtime.max_body_bytes, 1_048_576);
    assert_eq!(config.runtime.latency_budget, Duration::from_millis(5000));
    assert!(config.runtime.headers.is_empty());
    assert_eq!(config.state.path, dir.join("state/db"));
    assert_eq!(config.state.retention_days, 0);
    assert_eq!(config.state.audit_retention_days, 0);
    assert_eq!(config.server.listen, "127.0.0.1:9464".parse().unwrap());
    assert_eq!(config.server.rate_limit_per_s, 5);
    assert_eq!(config.server.rate_limit_burst, 20);
    assert!(config.tokens.is_empty());
    assert_eq!(config.bots[0].config_path, "bots/a.yaml");
    assert_eq!(config.bots[0].schema_path, None);
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let fx = Fixture::new();
    fx.write("etc/cdd/keys/gpg.asc", "key");
    let text = r#"
registry_file = "fleet/bots.toml"
[repo]
url = "../repo"
checkout_dir = "work/clone"
gpg_keyring = "keys/gpg.asc"
[state]
path = "./db"
"#;
    fx.write(
        "etc/cdd/fleet/bots.toml",
        "[[bots]]\nslug = \"a\"\nruntime = \"file:///tmp/a.json\"\n",
    );
    let path = fx.write("etc/cdd/cdd.toml", text);
    let (config, _) = load_env(&path, &secrets()).expect("valid");
    let dir = fx.path("etc/cdd");
    assert_eq!(PathBuf::from(&config.repo.url), dir.join("../repo"));
    assert_eq!(config.repo.checkout_dir, dir.join("work/clone"));
    assert_eq!(config.repo.gpg_keyring, Some(dir.join("keys/gpg.asc")));
    assert_eq!(config.state.path, dir.join("db"));
    assert_eq!(config.registry_file, Some(dir.join("fleet/bots.toml")));

    // A URL with a scheme is never taken for a path.
    let text = "[repo]\nurl = \"https://git.example/configs.git\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://127.0.0.1:1/\"\n";
    let path = fx.write("etc/cdd/remote.toml", text);
    let (config, _) = load_env(&path, &secrets()).expect("valid");
    assert_eq!(config.repo.url, "https://git.example/configs.git");
}

#[test]
fn a_file_that_cannot_be_read_is_one_error_naming_it() {
    let fx = Fixture::new();
    let missing = fx.path("nope.toml");
    let errors = load(&missing).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .starts_with(&format!("{}: cannot be read", missing.display()))
    );
}

#[test]
fn syntax_error_names_line_and_column() {
    let fx = Fixture::new();
    let errors = fx.errors("mode = \"shadow\"\n\n[repo\nurl = \"x\"\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("TOML syntax error at line 3, column"),
        "{errors:?}"
    );
}

#[test]
fn unknown_keys_are_errors_naming_key_and_table() {
    let fx = Fixture::new();
    assert_one_error(
        &fx,
        &minimal_with("chek_interval_minutes = 5"),
        "unknown key `chek_interval_minutes`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[runtime]\ntimout_ms = 100\n"),
        "unknown key `timout_ms` in [runtime]",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[[bots]]\nslug = \"b\"\nruntime = \"http://h/\"\nschema = \"x\"\n"),
        "unknown key `schema` in [[bots]] entry `b`",
    );
    assert_one_error(
        &fx,
        &format!(
            "{MINIMAL}\n[[auth.tokens]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{ALICE_SHA}\"\nsecret = \"x\"\n"
        ),
        "unknown key `secret` in [[auth.tokens]] entry `a`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[metrics]\nport = 1\n"),
        "unknown key `metrics`",
    );
}

#[test]
fn wrong_types_name_the_key() {
    let fx = Fixture::new();
    assert_one_error(
        &fx,
        &minimal_with("check_interval_minutes = \"15m\""),
        "`check_interval_minutes` must be an integer, not a string",
    );
    assert_one_error(
        &fx,
        "[repo]\nurl = 5\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n",
        "`url` in [repo] must be a string, not an integer",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[server]\nlisten = 9464\n"),
        "`listen` in [server] must be a string, not an integer",
    );
    assert_one_error(
        &fx,
        &minimal_with("ignore_fields = \"a.b\""),
        "`ignore_fields` must be an array, not a string",
    );
}

#[test]
fn mode_must_be_one_of_the_four() {
    let fx = Fixture::new();
    assert_one_error(
        &fx,
        &minimal_with("mode = \"strict\""),
        "mode = \"strict\" is not one of off, shadow, advisory, enforced",
    );
    let (config, _) = fx
        .load("cdd.toml", &minimal_with("mode = \"enforced\""))
        .expect("valid");
    assert_eq!(config.mode, Mode::Enforced);
}

#[test]
fn check_interval_is_bounded_and_warns_above_30() {
    let fx = Fixture::new();
    assert_one_error(
        &fx,
        &minimal_with("check_interval_minutes = 0"),
        "check_interval_minutes = 0 is outside 1..=60",
    );
    assert_one_error(
        &fx,
        &minimal_with("check_interval_minutes = 61"),
        "check_interval_minutes = 61 is outside 1..=60",
    );
    assert_one_error(
        &fx,
        &minimal_with("check_interval_minutes = -5"),
        "check_interval_minutes = -5 is outside 1..=60",
    );

    let (config, warnings) = fx
        .load("cdd.toml", &minimal_with("check_interval_minutes = 30"))
        .expect("valid");
    assert_eq!(config.check_interval, Duration::from_secs(1800));
    assert!(warnings.is_empty(), "{warnings:?}");

    let (config, warnings) = fx
        .load("cdd.toml", &minimal_with("check_interval_minutes = 45"))
        .expect("valid");
    assert_eq!(config.check_interval, Duration::from_secs(2700));
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .line()
            .starts_with("warning: check_interval_minutes = 45 is above 30"),
        "{warnings:?}"
    );
}

#[test]
fn tolerance_is_exact_bounded_and_warns_above_zero() {
    let fx = Fixture::new();
    for bad in ["0.0011", "0.002", "1", "-0.0001", "-1", "nan", "inf"] {
        let errors = fx.errors(&minimal_with(&format!(
            "tolerance_for_numeric_drift = {bad}"
        )));
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].contains("tolerance_for_numeric_drift"),
            "{bad}: {errors:?}"
        );
    }
    let (config, warnings) = fx
        .load(
            "cdd.toml",
            &minimal_with("tolerance_for_numeric_drift = 0.0005"),
        )
        .expect("valid");
    assert_eq!(config.tolerance, Decimal::parse("0.0005").unwrap());
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .to_string()
            .contains("tolerance_for_numeric_drift = 0.0005"),
        "{warnings:?}"
    );

    for zero in ["0", "0.0"] {
        let (config, warnings) = fx
            .load(
                "cdd.toml",
                &minimal_with(&format!("tolerance_for_numeric_drift = {zero}")),
            )
            .expect("valid");
        assert!(config.tolerance.is_zero());
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}

#[test]
fn other_numeric_bounds_name_their_key() {
    let fx = Fixture::new();
    let cases = [
        (
            "[repo]\nhistory_depth = 0",
            "history_depth = 0 in [repo] is outside 1..=",
        ),
        (
            "[repo]\nmax_staleness_s = 0",
            "max_staleness_s = 0 in [repo] is outside 1..=900",
        ),
        (
            "[repo]\nmax_staleness_s = 901",
            "max_staleness_s = 901 in [repo] is outside 1..=900",
        ),
        (
            "[runtime]\ntimeout_ms = 0",
            "timeout_ms = 0 in [runtime] is outside 1..=",
        ),
        (
            "[runtime]\nmax_in_flight = 0",
            "max_in_flight = 0 in [runtime] is outside 1..=",
        ),
        (
            "[runtime]\nmax_body_bytes = 0",
            "max_body_bytes = 0 in [runtime] is outside 1..=",
        ),
        (
            "[runtime]\nlatency_budget_ms = 999",
            "latency_budget_ms = 999 in [runtime] is outside 1000..=60000",
        ),
        (
            "[runtime]\nlatency_budget_ms = 60001",
            "latency_budget_ms = 60001 in [runtime] is outside 1000..=60000",
        ),
        (
            "[server]\nrate_limit_per_s = 0",
            "rate_limit_per_s = 0 in [server] is outside 1..=",
        ),
        (
            "[server]\nrate_limit_burst = 0",
            "rate_limit_burst = 0 in [server] is outside 1..=",
        ),
        (
            "[state]\nretention_days = -1",
            "retention_days = -1 in [state] is outside 0..=",
        ),
    ];
    for (table, needle) in cases {
        // Sub-tables of [repo] need the url; the others go after MINIMAL.
        let text = match table.strip_prefix("[repo]\n") {
            Some(line) => format!(
                "[repo]\nurl = \"/r\"\n{line}\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n"
            ),
            None => format!("{MINIMAL}\n{table}\n"),
        };
        assert_one_error(&fx, &text, needle);
    }
}

#[test]
fn slugs_must_be_valid_and_unique() {
    let fx = Fixture::new();
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n"),
        "bot `a` is registered twice ([[bots]] entries #1 and #2)",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[[bots]]\nslug = \"risk..ks\"\nruntime = \"http://h/\"\n"),
        "[[bots]] entry #2: `risk..ks` is not a valid slug",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[[bots]]\nruntime = \"http://h/\"\n"),
        "[[bots]] entry #2 has no `slug`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[[bots]]\nslug = \"b\"\n"),
        "bot `b` has no `runtime`",
    );
}

#[test]
fn runtime_urls_of_other_shapes_are_errors_naming_the_bot() {
    let fx = Fixture::new();
    let bad = [
        ("ftp://127.0.0.1/config", "uses the scheme `ftp://`"),
        ("127.0.0.1:9101/config", "is not a URL"),
        ("grpc://127.0.0.1", "must be exactly grpc://host:port"),
        (
            "grpcs://127.0.0.1:50051/config",
            "must be exactly grpcs://host:port",
        ),
        ("grpc://127.0.0.1:0", "must be exactly grpc://host:port"),
        ("file://relative/config.json", "must name an absolute path"),
        ("http:///config", "is not a valid http:// URL"),
    ];
    for (url, needle) in bad {
        let text = format!("[repo]\nurl = \"/r\"\n[[bots]]\nslug = \"b\"\nruntime = \"{url}\"\n");
        assert_one_error(&fx, &text, &format!("bot `b`: runtime `{url}` {needle}"));
    }
    // Credentials inside a URL never reach the message.
    let text = "[repo]\nurl = \"/r\"\n[[bots]]\nslug = \"b\"\nruntime = \"ftp://user:pw@h/\"\n";
    let errors = fx.errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    // After the file's path: a random temporary folder's name may hold "pw".
    let prefix = format!("{}: ", fx.path("cdd.toml").display());
    let message = errors[0]
        .strip_prefix(&prefix)
        .expect("names the file first");
    assert!(!message.contains("pw"), "{errors:?}");

    let good = [
        (
            "https://bot.internal:8443/config",
            RuntimeSource::Http("https://bot.internal:8443/config".into()),
        ),
        (
            "grpc://[::1]:50051",
            RuntimeSource::Grpc {
                authority: "[::1]:50051".into(),
                tls: false,
            },
        ),
        (
            "grpc://bot-7.internal:50051",
            RuntimeSource::Grpc {
                authority: "bot-7.internal:50051".into(),
                tls: false,
            },
        ),
        (
            "file:///etc/bot/running.yaml",
            RuntimeSource::File("/etc/bot/running.yaml".into()),
        ),
    ];
    for (url, expected) in good {
        let text = format!("[repo]\nurl = \"/r\"\n[[bots]]\nslug = \"b\"\nruntime = \"{url}\"\n");
        let (config, _) = fx.load("cdd.toml", &text).expect(url);
        assert_eq!(config.bots[0].runtime, expected);
    }
}

#[test]
fn config_paths_stay_inside_the_repo_and_name_a_known_format() {
    let fx = Fixture::new();
    let template = |t: &str| {
        format!(
            "[repo]\nurl = \"/r\"\nconfig_path = \"{t}\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n"
        )
    };
    assert_one_error(
        &fx,
        &template("bots/config.yaml"),
        "`config_path` in [repo] (`bots/config.yaml`) must contain {slug}",
    );
    assert_one_error(
        &fx,
        &template("../{slug}.yaml"),
        "`config_path` in [repo] (`../{slug}.yaml`) resolves outside the repo tree",
    );
    assert_one_error(
        &fx,
        &template("bots/../../x/{slug}.yaml"),
        "resolves outside the repo tree",
    );
    assert_one_error(
        &fx,
        &template("/srv/{slug}.yaml"),
        "`config_path` in [repo] (`/srv/{slug}.yaml`) must be relative",
    );
    assert_one_error(
        &fx,
        &template("bots/{slug}.ini"),
        "`config_path` in [repo] (`bots/{slug}.ini`) must end in .json, .yaml, .yml or .toml",
    );
    let (config, _) = fx
        .load("cdd.toml", &template("./bots/x/../{slug}.JSON"))
        .expect("valid");
    assert_eq!(config.bots[0].config_path, "bots/a.JSON");

    let own = |p: &str| {
        format!(
            "[repo]\nurl = \"/r\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\nconfig_path = \"{p}\"\n"
        )
    };
    assert_one_error(
        &fx,
        &own("bots/../../etc/passwd.yaml"),
        "bot `a`: `config_path` (`bots/../../etc/passwd.yaml`) resolves outside the repo tree",
    );
    assert_one_error(
        &fx,
        &own("/etc/a.yaml"),
        "bot `a`: `config_path` (`/etc/a.yaml`) must be relative",
    );
    assert_one_error(
        &fx,
        &own("bots/a.txt"),
        "bot `a`: `config_path` (`bots/a.txt`) must end in .json, .yaml, .yml or .toml",
    );

    let schema = "[repo]\nurl = \"/r\"\nschema_path = \"../schemas/{slug}.json\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n";
    assert_one_error(
        &fx,
        schema,
        "`schema_path` in [repo] (`../schemas/{slug}.json`) resolves outside the repo tree",
    );
    let schema = "[repo]\nurl = \"/r\"\nschema_path = \"schemas/shared.json\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n[[bots]]\nslug = \"b\"\nruntime = \"http://h/\"\nschema_path = \"\"\n";
    let (config, _) = fx.load("cdd.toml", schema).expect("valid");
    assert_eq!(
        config.bots[0].schema_path.as_deref(),
        Some("schemas/shared.json")
    );
    assert_eq!(
        config.bots[1].schema_path, None,
        "an empty per-bot schema_path means none"
    );
}

#[test]
fn tokens_are_checked() {
    let fx = Fixture::new();
    let token = |name: &str, role: &str, sha: &str| {
        format!("\n[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{sha}\"\n")
    };
    assert_one_error(
        &fx,
        &format!(
            "{MINIMAL}{}{}",
            token("alice", "oncall", ALICE_SHA),
            token("alice", "admin", BOB_SHA)
        ),
        "token name `alice` is used twice ([[auth.tokens]] entries #1 and #2)",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}{}", token("alice", "root", ALICE_SHA)),
        "token `alice`: role `root` is not one of viewer, oncall, admin",
    );
    for sha in [
        "abc",
        &ALICE_SHA.replace('2', "g"),
        &format!("{ALICE_SHA}00"),
    ] {
        assert_one_error(
            &fx,
            &format!("{MINIMAL}{}", token("alice", "viewer", sha)),
            "token `alice`: `sha256` must be 64 hexadecimal digits",
        );
    }
}

#[test]
fn signed_commits_need_a_trust_source() {
    let fx = Fixture::new();
    let text = "[repo]\nurl = \"/r\"\nrequire_signed_commits = true\nallowed_signers = \"\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n";
    assert_one_error(
        &fx,
        text,
        "`require_signed_commits` in [repo] is true but neither `allowed_signers` nor `gpg_keyring` is set",
    );
    fx.write("keyring.asc", "k");
    let text = "[repo]\nurl = \"/r\"\nrequire_signed_commits = true\ngpg_keyring = \"keyring.asc\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n";
    let (config, _) = fx.load("cdd.toml", text).expect("valid");
    assert_eq!(config.repo.gpg_keyring, Some(fx.path("keyring.asc")));
    // A trust file that is not there is its own error, not a second one.
    let text = "[repo]\nurl = \"/r\"\nrequire_signed_commits = true\nallowed_signers = \"nope\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n";
    assert_one_error(&fx, text, "`allowed_signers` in [repo]");
}

#[test]
fn ignore_fields_must_parse() {
    let fx = Fixture::new();
    assert_one_error(
        &fx,
        &minimal_with("ignore_fields = [\"ok.path\", \"per_market[*\"]"),
        "`ignore_fields` entry `per_market[*` is not a field path",
    );
}

#[test]
fn a_fleet_without_bots_is_refused() {
    let fx = Fixture::new();
    assert_one_error(&fx, "[repo]\nurl = \"/r\"\n", "no bot is registered");
    assert_one_error(
        &fx,
        "bots = []\n[repo]\nurl = \"/r\"\n",
        "no bot is registered",
    );
    assert_one_error(
        &fx,
        "[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n",
        "[repo] is missing",
    );
}

#[test]
fn server_and_tls_settings_are_checked() {
    let fx = Fixture::new();
    fx.write("tls/cert.pem", "c");
    fx.write("tls/key.pem", "k");
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[server]\nlisten = \"localhost:9464\"\n"),
        "`listen` in [server] (`localhost:9464`) is not a socket address",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[server]\ntls_cert = \"tls/cert.pem\"\n"),
        "[server] has `tls_cert` without `tls_key`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[server]\ntls_key = \"tls/key.pem\"\n"),
        "[server] has `tls_key` without `tls_cert`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[runtime]\nclient_cert = \"tls/cert.pem\"\n"),
        "[runtime] has `client_cert` without `client_key`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[runtime]\nclient_key = \"tls/key.pem\"\n"),
        "[runtime] has `client_key` without `client_cert`",
    );
    assert_one_error(
        &fx,
        &format!("{MINIMAL}\n[runtime]\nca_file = \"tls/missing.pem\"\n"),
        "`ca_file` in [runtime]",
    );
    let text = format!(
        "{MINIMAL}\n[server]\nlisten = \"[::1]:0\"\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n"
    );
    let (config, _) = fx.load("cdd.toml", &text).expect("valid");
    assert_eq!(config.server.tls_key, Some(fx.path("tls/key.pem")));
}

#[test]
fn repo_url_and_branch_are_checked() {
    let fx = Fixture::new();
    let repo =
        |lines: &str| format!("[repo]\n{lines}\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n");
    assert_one_error(
        &fx,
        &repo("branch = \"main\""),
        "`url` in [repo] is required",
    );
    assert_one_error(&fx, &repo("url = \"\""), "`url` in [repo] is empty");
    assert_one_error(
        &fx,
        &repo("url = \"ftp://h/r.git\""),
        "`url` in [repo] uses the scheme `ftp://`",
    );
    assert_one_error(
        &fx,
        &repo("url = \"git@github.com:org/configs.git\""),
        "is scp-style; write it as ssh://",
    );
    assert_one_error(
        &fx,
        &repo("url = \"/r\"\nbranch = \"bad..name\""),
        "`branch` in [repo] (`bad..name`) is not a valid branch name",
    );
    let (config, _) = fx
        .load(
            "cdd.toml",
            &repo("url = \"ssh://git@host/configs.git\"\nbranch = \"release/2024\""),
        )
        .expect("valid");
    assert_eq!(config.repo.branch, "release/2024");
    assert_eq!(config.repo.url_redacted(), "ssh://***@host/configs.git");
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let fx = Fixture::new();
    let text = r#"
mode = "loud"
check_interval_minutes = 90
chek = 1
ignore_fields = ["a[", "ok"]

[repo]
url = "/r"
config_path = "bots/{slug}.yaml"
require_signed_commits = true

[runtime]
timout_ms = 5
latency_budget_ms = 10

[[bots]]
slug = "x"
runtime = "ftp://h/"

[[bots]]
slug = "x"
runtime = "http://h/"

[server]
listen = "nowhere"

[[auth.tokens]]
name = "t"
role = "king"
sha256 = "00"
"#;
    let errors = fx.errors(text);
    let all = errors.join("\n");
    for needle in [
        "mode = \"loud\"",
        "check_interval_minutes = 90",
        "unknown key `chek`",
        "`ignore_fields` entry `a[`",
        "`require_signed_commits` in [repo]",
        "unknown key `timout_ms` in [runtime]",
        "latency_budget_ms = 10 in [runtime]",
        "bot `x`: runtime `ftp://h/`",
        "bot `x` is registered twice",
        "`listen` in [server]",
        "token `t`: role `king`",
        "token `t`: `sha256`",
    ] {
        assert!(all.contains(needle), "{needle:?} missing from:\n{all}");
    }
    assert_eq!(errors.len(), 12, "{all}");
}

#[test]
fn registry_file_supplies_the_bots_and_is_re_read() {
    let fx = Fixture::new();
    let registry = fx.write(
        "fleet.toml",
        r#"
[[bots]]
slug = "mm.us"
runtime = "http://127.0.0.1:9102/config"
headers = { X-Bot = "${FLEET_TOKEN}" }

[[bots]]
slug = "mm.eu"
runtime = "http://127.0.0.1:9101/config"
"#,
    );
    let text = "registry_file = \"fleet.toml\"\n[repo]\nurl = \"/r\"\nschema_path = \"schemas/{slug}.json\"\n[runtime]\nheaders = { X-Fleet = \"prod\" }\n";
    let (config, _) = fx.load("cdd.toml", text).expect("valid");
    assert_eq!(config.registry_file, Some(registry.clone()));
    let slugs: Vec<&str> = config.bots.iter().map(|b| b.slug.as_str()).collect();
    assert_eq!(slugs, ["mm.eu", "mm.us"]);
    let us = config.bot("mm.us").expect("registered");
    assert_eq!(us.config_path, "bots/mm.us.yaml");
    assert_eq!(us.schema_path.as_deref(), Some("schemas/mm.us.json"));
    let names: Vec<&str> = us.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["X-Bot", "X-Fleet"]);
    assert_eq!(us.headers[0].value, "fleet-s3cret");

    // The agent re-reads the file before every check.
    fs::write(
        &registry,
        "[[bots]]\nslug = \"solo\"\nruntime = \"http://h/\"\n",
    )
    .unwrap();
    let bots = load_registry_with_env(&config, &|_| None).expect("valid");
    assert_eq!(bots.len(), 1);
    assert_eq!(bots[0].slug.as_str(), "solo");

    // An empty registry is refused, naming the registry file.
    fs::write(&registry, "# nobody\n").unwrap();
    let errors = load_registry(&config).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, registry);
    assert!(
        errors[0].to_string().contains("the registry has no bot"),
        "{errors:?}"
    );

    // Its own problems name it too, all of them.
    fs::write(
        &registry,
        "[[bots]]\nslug = \"a\"\nruntim = \"x\"\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n",
    )
    .unwrap();
    let errors = load_registry(&config).unwrap_err();
    assert!(errors.iter().all(|e| e.file == registry), "{errors:?}");
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        all.iter()
            .any(|e| e.contains("unknown key `runtim` in [[bots]] entry `a`")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|e| e.contains("bot `a` has no `runtime`")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("bot `a` is registered twice")),
        "{all:?}"
    );

    // `load` reports the registry's problems with the main file's.
    let errors = fx
        .load("cdd.toml", &format!("mode = \"x\"\n{text}"))
        .unwrap_err();
    assert!(errors.iter().any(|e| e.file == registry));
    assert!(errors.iter().any(|e| e.file == fx.path("cdd.toml")));

    // Without a registry file, re-reading gives the inline bots.
    let (inline, _) = fx.load("inline.toml", MINIMAL).expect("valid");
    assert_eq!(load_registry(&inline).expect("valid"), inline.bots);
}

#[test]
fn registry_file_and_inline_bots_together_are_refused() {
    let fx = Fixture::new();
    fx.write(
        "fleet.toml",
        "[[bots]]\nslug = \"b\"\nruntime = \"http://h/\"\n",
    );
    assert_one_error(
        &fx,
        &minimal_with("registry_file = \"fleet.toml\""),
        "`registry_file` (`",
    );
    let errors = fx.errors(&minimal_with("registry_file = \"missing.toml\""));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("missing.toml: cannot be read")),
        "{errors:?}"
    );
}

#[test]
fn headers_expand_the_environment_without_leaking_values() {
    let fx = Fixture::new();
    let text = format!(
        "{MINIMAL}\n[runtime]\nheaders = {{ Authorization = \"Bearer ${{FLEET_TOKEN}}\", X-Lit = \"a$b $${{x}}\" }}\n"
    );
    let (config, _) = fx.load("cdd.toml", &text).expect("valid");
    let h = &config.runtime.headers;
    assert_eq!(h[0].name, "Authorization");
    assert_eq!(h[0].value, "Bearer fleet-s3cret");
    assert_eq!(h[1].value, "a$b ${x}");
    assert!(!format!("{config:?}").contains("s3cret"));

    // A variable that is not set names the header and the variable only.
    let text = format!(
        "{MINIMAL}headers = {{ Authorization = \"Bearer literal-part ${{NOT_SET_ANYWHERE}}\" }}\n"
    );
    let errors = fx.errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("header `Authorization` of bot `a` uses ${NOT_SET_ANYWHERE}, which is not set in the environment"), "{errors:?}");
    assert!(!errors[0].contains("literal-part"), "{errors:?}");
    assert!(!format!("{errors:?}").contains("literal-part"));

    let cases = [
        (
            "\"Bad Name\" = \"v\"",
            "header name `Bad Name` in [runtime] is not a valid HTTP header name",
        ),
        (
            "X-A = \"${lower-case}\"",
            "header `X-A` in [runtime] has a malformed ${…} reference",
        ),
        (
            "X-A = \"${UNCLOSED\"",
            "header `X-A` in [runtime] has a malformed",
        ),
        (
            "X-A = \"line\\nbreak-s3cret\"",
            "header `X-A` in [runtime] has a value that is not a valid HTTP header value",
        ),
        ("X-A = \"1\", x-a = \"2\"", "name the same header"),
        (
            "X-A = 5",
            "`headers` in [runtime] must be a table of header names to string values",
        ),
    ];
    for (headers, needle) in cases {
        let errors = fx.errors(&format!(
            "{MINIMAL}\n[runtime]\nheaders = {{ {headers} }}\n"
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains(needle), "{needle:?} not in {errors:?}");
        assert!(!errors[0].contains("s3cret"), "{errors:?}");
    }
}

#[test]
fn load_reads_the_real_environment() {
    let fx = Fixture::new();
    // Cargo sets this for every test run; no test may change the environment.
    let text = format!("{MINIMAL}headers = {{ X-Dir = \"${{CARGO_MANIFEST_DIR}}\" }}\n");
    let path = fx.write("cdd.toml", &text);
    let (config, _) = load(&path).expect("valid");
    assert_eq!(config.bots[0].headers[0].value, env!("CARGO_MANIFEST_DIR"));
}

// --- The kind of each problem, not only its sentence: callers match on these. ---

impl Fixture {
    /// Every error of `text` as the kinds a caller matches on.
    fn kinds(&self, text: &str) -> Vec<ConfigErrorKind> {
        match self.load("cdd.toml", text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(errors) => errors.into_iter().map(|e| e.kind).collect(),
        }
    }
}

#[test]
fn an_unreadable_file_is_the_unreadable_kind_naming_the_file() {
    let fx = Fixture::new();
    let missing = fx.path("nope.toml");
    let errors = load(&missing).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, missing);
    assert!(
        matches!(&errors[0].kind, ConfigErrorKind::Unreadable { reason } if !reason.is_empty()),
        "{errors:?}"
    );
}

#[test]
fn a_syntax_error_carries_its_line_and_column() {
    let fx = Fixture::new();
    let kinds = fx.kinds("mode = \"shadow\"\n\n[repo\nurl = \"x\"\n");
    let [ConfigErrorKind::Syntax(e)] = kinds.as_slice() else {
        panic!("{kinds:?}");
    };
    assert_eq!(e.line, 3);
    assert!(e.column > 1, "{e:?}");
}

#[test]
fn an_unknown_key_names_its_table_and_the_likely_key() {
    let fx = Fixture::new();
    let kinds = fx.kinds(&format!("{MINIMAL}\n[runtime]\ntimout_ms = 100\n"));
    assert_eq!(
        kinds,
        [ConfigErrorKind::UnknownKey {
            key: "timout_ms".into(),
            place: error::Place::Table("runtime"),
            suggestion: Some("timeout_ms"),
        }]
    );
}

#[test]
fn an_out_of_range_value_names_key_table_value_and_range() {
    let fx = Fixture::new();
    let kinds = fx.kinds(&minimal_with("check_interval_minutes = 61"));
    assert_eq!(
        kinds,
        [ConfigErrorKind::OutOfRange {
            key: "check_interval_minutes",
            place: error::Place::Top,
            got: 61,
            range: CHECK_INTERVAL_MINUTES_RANGE,
        }]
    );
    let text = MINIMAL.replace("[[bots]]", "[runtime]\nlatency_budget_ms = 999\n\n[[bots]]");
    assert_eq!(
        fx.kinds(&text),
        [ConfigErrorKind::OutOfRange {
            key: "latency_budget_ms",
            place: error::Place::Table("runtime"),
            got: 999,
            range: LATENCY_BUDGET_MS_RANGE,
        }]
    );
}

#[test]
fn a_duplicate_slug_names_both_entries() {
    let fx = Fixture::new();
    let kinds = fx.kinds(&format!(
        "{MINIMAL}\n[[bots]]\nslug = \"a\"\nruntime = \"http://h/\"\n"
    ));
    assert_eq!(
        kinds,
        [ConfigErrorKind::DuplicateSlug {
            slug: BotSlug::parse("a").unwrap(),
            first: 1,
            second: 2,
        }]
    );
}

#[test]
fn a_bad_runtime_url_is_typed_and_redacted() {
    let fx = Fixture::new();
    let kinds = fx.kinds(&format!(
        "{MINIMAL}\n[[bots]]\nslug = \"b\"\nruntime = \"ftp://u:pw@h/x\"\n"
    ));
    assert_eq!(
        kinds,
        [ConfigErrorKind::InvalidRuntime {
            bot: error::Entry::Bot(BotSlug::parse("b").unwrap()),
            error: error::RuntimeUrlError::UnknownScheme {
                redacted: "ftp://***@h/x".into(),
                scheme: "ftp".into(),
            },
        }]
    );
}

#[test]
fn an_unset_variable_in_a_header_names_header_and_variable() {
    let fx = Fixture::new();
    let text = MINIMAL.replace(
        "[[bots]]",
        "[runtime]\nheaders = { Authorization = \"Bearer ${NOT_SET}\" }\n\n[[bots]]",
    );
    assert_eq!(
        fx.kinds(&text),
        [ConfigErrorKind::HeaderEnv {
            owner: error::HeaderOwner::Runtime,
            name: "Authorization".into(),
            error: error::ExpandError::Unset("NOT_SET".into()),
        }]
    );
}

#[test]
fn an_empty_registry_is_its_own_kind_naming_the_registry() {
    let fx = Fixture::new();
    let registry = fx.write("bots.toml", "# nobody\n");
    let text = "registry_file = \"bots.toml\"\n[repo]\nurl = \"/srv/bot-configs\"\n";
    let errors = fx.load("cdd.toml", text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, registry);
    assert_eq!(errors[0].kind, ConfigErrorKind::EmptyRegistry);
}

#[test]
fn warnings_are_typed_with_their_values() {
    let fx = Fixture::new();
    let (_, warnings) = fx
        .load("cdd.toml", &minimal_with("check_interval_minutes = 45"))
        .expect("valid");
    assert_eq!(
        warnings,
        [Warning::LongCheckInterval {
            minutes: 45,
            above: CHECK_INTERVAL_WARN_ABOVE_MINUTES,
        }]
    );
    let text = MINIMAL.replace(
        "[[bots]]",
        "[runtime]\ntimeout_ms = 2000\nlatency_budget_ms = 1000\n\n[[bots]]",
    );
    let (_, warnings) = fx.load("cdd.toml", &text).expect("valid");
    assert_eq!(
        warnings,
        [Warning::TimeoutAboveBudget {
            timeout_ms: 2000,
            latency_budget_ms: 1000,
        }]
    );
}
