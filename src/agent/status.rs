//! What the agent publishes about itself for the server and the API to read:
//! mode, check interval, pause, and when the last successful check ended; and
//! the health rule of §12 over them. The agent writes it; readers never decide.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::config::Mode;

/// How long past one interval a check may be late before health turns 503 (§12).
pub const HEALTH_GRACE: Duration = Duration::from_secs(60);

/// What the agent publishes for the server and the API to read.
#[derive(Debug)]
pub struct AgentStatus {
    /// Mode and check interval; a config reload may change both.
    settings: Mutex<(Mode, Duration)>,
    /// End of the last successful check, ms since the epoch; 0 before the first.
    last_success_ms: AtomicI64,
    paused: AtomicBool,
}

impl AgentStatus {
    pub fn new(mode: Mode, interval: Duration) -> AgentStatus {
        AgentStatus {
            settings: Mutex::new((mode, interval)),
            last_success_ms: AtomicI64::new(0),
            paused: AtomicBool::new(false),
        }
    }

    pub fn mode(&self) -> Mode {
        self.settings().0
    }

    pub fn interval(&self) -> Duration {
        self.settings().1
    }

    /// A reload was accepted: health follows its mode and interval from now on.
    pub fn reconfigure(&self, mode: Mode, interval: Duration) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = (mode, interval);
    }

    fn settings(&self) -> (Mode, Duration) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record_success(&self, at_ms: i64) {
        self.last_success_ms.store(at_ms, Ordering::SeqCst);
    }

    pub fn last_success_ms(&self) -> Option<i64> {
        Some(self.last_success_ms.load(Ordering::SeqCst)).filter(|&ms| ms > 0)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Healthy while the last successful check ended less than one interval plus
    /// the grace ago, or while the mode is `off` (no checks are expected).
    pub fn healthy(&self, now_ms: i64) -> bool {
        let (mode, interval) = self.settings();
        if mode == Mode::Off {
            return true;
        }
        let window = (interval + HEALTH_GRACE).as_millis() as i64;
        self.last_success_ms()
            .is_some_and(|last| now_ms.saturating_sub(last) < window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_last_success_and_the_interval() {
        let s = AgentStatus::new(Mode::Shadow, Duration::from_secs(60));
        assert!(!s.healthy(1_000_000), "no check has succeeded yet");
        s.record_success(1_000_000);
        assert!(s.healthy(1_000_000 + 119_999));
        assert!(!s.healthy(1_000_000 + 120_000));
        let off = AgentStatus::new(Mode::Off, Duration::from_secs(60));
        assert!(off.healthy(0), "mode off is healthy without checks");
    }
}
