//! The agent behind `run` (§2, §8, §9, §13): one long-lived owner of the checker,
//! the latch state and the telemetry, driven by `schedule`.
//!
//! `Agent::check` is one whole check: re-read the registry, evaluate, latch, store
//! (flushed), then emit — in that order, so telemetry never tells of a state the
//! next start would not remember. Must not serve HTTP, build the API or read
//! signals (`app` wires those): it publishes what they read (`AgentStatus`, its
//! config, reports and check views) through channels it owns, and `schedule`
//! decides when checks run. Admin actions (acks, clear, pause, audit: `admin`)
//! also run inside the schedule's loop.

pub mod admin;
pub mod cycle;
pub mod schedule;
pub mod status;

pub use admin::{
    Actor, AdminError, AdminOutcome, AdminRequest, Cleared, DeniedMinute, ReportSnapshot,
};
pub use cycle::{CheckResult, CheckView};
pub use status::AgentStatus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::canon::secret::SecretKey;
use crate::check::{CheckSetupError, Checker};
use crate::config::{Bot, Config, Mode};
use crate::latch::{BotState, Pause, StateError, StateStore};
use crate::shard::Shard;
use crate::telemetry::events::{
    ConfigReloadRefused, ConfigReloaded, ConfigWarning, RegistryChanged, RegistryRefused,
    ServerNotReloaded, StatePathNotReloaded,
};
use crate::telemetry::{AgentInfo, Telemetry};

use tokio::sync::watch;

/// Why an agent could not be built from its opened parts.
#[derive(Debug, thiserror::Error)]
pub enum AgentSetupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Checker(#[from] CheckSetupError),
}

/// What started a check. Acks (§9) end only at scheduled checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// At start or after a reload: re-emits every bot's status.
    Startup,
    Scheduled,
    Manual,
}

/// Settings given on the command line, kept across config reloads.
#[derive(Clone, Debug)]
pub struct Overrides {
    pub check_interval: Option<Duration>,
    pub shard: Shard,
}

/// The agent: config, registry, checker, state and telemetry.
pub struct Agent {
    config_path: PathBuf,
    config: Arc<Config>,
    overrides: Overrides,
    /// This agent's bots (its shard of the registry), in slug order.
    bots: Vec<Bot>,
    checker: Checker,
    store: Arc<StateStore>,
    /// Every bot's state as last stored, by slug (registered or recently removed).
    states: BTreeMap<String, BotState>,
    secret_key: SecretKey,
    telemetry: Arc<Telemetry>,
    status: Arc<AgentStatus>,
    /// Whether the latest re-read of the config file (SIGHUP) and of the registry
    /// file were accepted: `drift_config_last_reload_successful` shows both.
    reloads: Reloads,
    /// A SIGHUP was refused only for its registry file: the registry is re-read
    /// at every check anyway, so the whole reload is retried then, and a fixed
    /// registry needs no second SIGHUP.
    reload_pending: bool,
    /// The last finished check, for whoever watches (`subscribe`).
    views: watch::Sender<Option<Arc<CheckView>>>,
    /// Every bot's last report, for the admin API (also before the first check).
    reports: watch::Sender<ReportSnapshot>,
    /// The config in force, for whoever reads it outside the loop (the admin
    /// API's tokens); a reload publishes the new one.
    configs: watch::Sender<Arc<Config>>,
    /// The detector's pause (§9), as stored.
    pause: Option<Pause>,
    /// A check has settled since start.
    checked: bool,
    /// When audit retention next runs (ms; 0: at start).
    next_audit_prune_ms: i64,
}

impl Agent {
    /// Assembles an agent from parts already opened by the caller (which turns
    /// their failures into startup errors).
    pub fn new(
        config_path: &Path,
        config: Config,
        overrides: Overrides,
        store: StateStore,
        telemetry: Arc<Telemetry>,
        status: Arc<AgentStatus>,
    ) -> Result<Agent, AgentSetupError> {
        let states = store.load_all()?;
        let secret_key = store.secret_key()?;
        let config = Arc::new(config);
        let checker = Checker::new(Arc::clone(&config), secret_key.clone())?;
        let bots = shard_bots(&config.bots, overrides.shard);
        let reports = stored_reports(&bots, &states);
        let configs = watch::Sender::new(Arc::clone(&config));
        let mut agent = Agent {
            config_path: config_path.to_path_buf(),
            config,
            overrides,
            bots,
            checker,
            store: Arc::new(store),
            states,
            secret_key,
            telemetry,
            status,
            views: watch::Sender::new(None),
            reloads: Reloads {
                config: true,
                registry: true,
            },
            reload_pending: false,
            reports: watch::Sender::new(reports),
            configs,
            pause: None,
            checked: false,
            next_audit_prune_ms: 0,
        };
        agent.restore_pause()?;
        Ok(agent)
    }

    /// Follows every bot's last report (JSON by slug).
    pub fn reports(&self) -> watch::Receiver<ReportSnapshot> {
        self.reports.subscribe()
    }

    /// Follows the config in force: the receiver always holds the latest.
    pub fn config_updates(&self) -> watch::Receiver<Arc<Config>> {
        self.configs.subscribe()
    }

    /// The state database, for the admin API's read-only views (the audit log).
    pub fn store(&self) -> Arc<StateStore> {
        Arc::clone(&self.store)
    }

    /// Follows finished checks: the receiver always holds the latest.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<CheckView>>> {
        self.views.subscribe()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// The interval in force: `--check-interval`, else the config's.
    pub fn interval(&self) -> Duration {
        effective_interval(&self.config, &self.overrides)
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    pub fn status(&self) -> &Arc<AgentStatus> {
        &self.status
    }

    /// SIGHUP (§9): re-reads the whole config file. One that fails validation
    /// leaves the running config in force and says why; settings that need a
    /// restart (the state path, the listen address, TLS) are kept and named.
    /// Returns whether the new config was taken.
    pub fn reload(&mut self) -> bool {
        let (config, warnings) = match crate::config::load(&self.config_path) {
            Ok(loaded) => loaded,
            Err(errors) => {
                for e in &errors {
                    ConfigReloadRefused { error: e }.emit();
                }
                self.reload_pending = errors.iter().all(|e| e.file != self.config_path);
                self.record_reload(Reread::Config, false);
                return false;
            }
        };
        self.reload_pending = false;
        for w in &warnings {
            ConfigWarning { warning: w }.emit();
        }
        let mut config = config;
        if config.state.path != self.config.state.path {
            StatePathNotReloaded {
                running: &self.config.state.path,
                configured: &config.state.path,
            }
            .emit();
            config.state = self.config.state.clone();
        }
        if config.server != self.config.server {
            ServerNotReloaded.emit();
            config.server = self.config.server.clone();
        }
        let config = Arc::new(config);
        let checker = match Checker::new(Arc::clone(&config), self.secret_key.clone()) {
            Ok(c) => c,
            Err(e) => {
                ConfigReloadRefused { error: &e }.emit();
                self.record_reload(Reread::Config, false);
                return false;
            }
        };
        self.bots = shard_bots(&config.bots, self.overrides.shard);
        self.configs.send_replace(Arc::clone(&config));
        self.config = config;
        self.checker = checker;
        let interval = self.interval();
        self.status.reconfigure(self.config.mode, interval);
        self.telemetry
            .metrics()
            .set_agent_info(agent_info(&self.config, &self.overrides));
        if self.config.mode == Mode::Off {
            self.telemetry.metrics().forget_bots();
        }
        self.record_reload(Reread::Config, true);
        ConfigReloaded {
            mode: self.config.mode.as_str(),
            bots: self.bots.len(),
            interval,
        }
        .emit();
        true
    }

    /// Before every check (§9): the registry file is read again. A registry
    /// that fails validation (zero bots included) keeps the previous one.
    fn reread_registry(&mut self) {
        if self.reload_pending {
            self.reload();
            return;
        }
        if self.config.registry_file.is_none() {
            return;
        }
        match crate::config::load_registry(&self.config) {
            Ok(bots) => {
                let mine = shard_bots(&bots, self.overrides.shard);
                if mine != self.bots {
                    RegistryChanged {
                        before: self.bots.len(),
                        after: mine.len(),
                    }
                    .emit();
                    self.bots = mine;
                }
                self.record_reload(Reread::Registry, true);
            }
            Err(errors) => {
                for e in &errors {
                    RegistryRefused { error: e }.emit();
                }
                self.record_reload(Reread::Registry, false);
            }
        }
    }
}

impl Agent {
    fn record_reload(&mut self, which: Reread, accepted: bool) {
        match which {
            Reread::Config => {
                self.reloads.config = accepted;
                // A new config file names its registry afresh.
                if accepted {
                    self.reloads.registry = true;
                }
            }
            Reread::Registry => self.reloads.registry = accepted,
        }
        let all = self.reloads.config && self.reloads.registry;
        self.telemetry.metrics().config_reloaded(accepted, all);
    }
}

#[derive(Clone, Copy, Debug)]
enum Reread {
    Config,
    Registry,
}

#[derive(Clone, Copy, Debug)]
struct Reloads {
    config: bool,
    registry: bool,
}

/// `drift_detector_info` and the interval gauge for a config.
pub fn agent_info(config: &Config, overrides: &Overrides) -> AgentInfo {
    AgentInfo {
        mode: config.mode,
        branch: config.repo.branch.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        shard: overrides.shard,
        check_interval: effective_interval(config, overrides),
    }
}

/// The stored last reports of `bots`, for the API until the first check.
fn stored_reports(bots: &[Bot], states: &BTreeMap<String, BotState>) -> ReportSnapshot {
    Arc::new(
        bots.iter()
            .filter_map(|b| {
                let json = states.get(b.slug.as_str())?.last_report_json.clone()?;
                Some((b.slug.to_string(), json))
            })
            .collect(),
    )
}

fn effective_interval(config: &Config, overrides: &Overrides) -> Duration {
    overrides.check_interval.unwrap_or(config.check_interval)
}

fn shard_bots(bots: &[Bot], shard: Shard) -> Vec<Bot> {
    bots.iter()
        .filter(|b| shard.owns(b.slug.as_str()))
        .cloned()
        .collect()
}
