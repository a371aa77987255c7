//! A pause of the detector (§9, the runbook's manual override): who paused it,
//! why, since when and until when. Checks, state and evidence go on while
//! paused; only `drift_detector_paused` (which the bundled alert rules read)
//! changes. Pure: stored by `store.rs`, timed by the agent.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub reason: String,
    pub by: String,
    pub since_ms: i64,
    /// `--for`'s end; `None` lasts until a resume.
    #[serde(default)]
    pub until_ms: Option<i64>,
}

impl Pause {
    /// The `--for` duration has run out.
    pub fn is_over(&self, now_ms: i64) -> bool {
        self.until_ms.is_some_and(|until| now_ms >= until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_pause_ends_at_its_end_and_an_open_one_never() {
        let timed = Pause {
            reason: "maintenance".into(),
            by: "root".into(),
            since_ms: 0,
            until_ms: Some(1000),
        };
        assert!(!timed.is_over(999));
        assert!(timed.is_over(1000));
        let open = Pause {
            until_ms: None,
            ..timed
        };
        assert!(!open.is_over(i64::MAX));
    }
}
