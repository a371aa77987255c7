//! Denied requests (401/403) counted per source per minute (§12), so the audit
//! log gets one entry per source and minute however hard someone knocks. Must
//! not write anything itself: the agent's loop appends the entries it is handed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use super::auth::Denial;
use crate::agent::DeniedMinute;

const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct DeniedLog {
    counts: Mutex<BTreeMap<(i64, IpAddr), (u64, u64)>>,
}

impl DeniedLog {
    pub fn record(&self, source: IpAddr, denial: Denial, now_ms: i64) {
        let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let (unauthorized, forbidden) = counts.entry((minute, source)).or_default();
        match denial {
            Denial::Unauthorized => *unauthorized += 1,
            Denial::Forbidden => *forbidden += 1,
        }
    }

    /// Takes out every minute that has ended by `now_ms`.
    pub fn drain_ended(&self, now_ms: i64) -> Vec<DeniedMinute> {
        let current = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        // 0.0.0.0 is the least address (V4 sorts before V6): the split keeps
        // every source of the current minute open.
        let open = counts.split_off(&(current, IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
        minutes(std::mem::replace(&mut *counts, open))
    }

    /// Takes out everything, the current minute too: at shutdown, so that no
    /// denied attempt goes unrecorded.
    pub fn drain_all(&self) -> Vec<DeniedMinute> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        minutes(std::mem::take(&mut *counts))
    }
}

fn minutes(counts: BTreeMap<(i64, IpAddr), (u64, u64)>) -> Vec<DeniedMinute> {
    counts
        .into_iter()
        .map(
            |((minute_start_ms, source), (unauthorized, forbidden))| DeniedMinute {
                source,
                minute_start_ms,
                unauthorized,
                forbidden,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn denials_are_one_entry_per_source_and_minute_once_the_minute_ends() {
        let log = DeniedLog::default();
        let m = 10 * MINUTE_MS;
        for i in 0..50 {
            log.record(A, Denial::Unauthorized, m + i);
        }
        log.record(A, Denial::Forbidden, m + 59_999);
        log.record(B, Denial::Unauthorized, m + 5);
        log.record(A, Denial::Unauthorized, m + MINUTE_MS);
        assert!(
            log.drain_ended(m + 59_999).is_empty(),
            "the minute is still open"
        );
        let ended = log.drain_ended(m + MINUTE_MS + 1);
        assert_eq!(
            ended,
            vec![
                DeniedMinute {
                    source: A,
                    minute_start_ms: m,
                    unauthorized: 50,
                    forbidden: 1
                },
                DeniedMinute {
                    source: B,
                    minute_start_ms: m,
                    unauthorized: 1,
                    forbidden: 0
                },
            ]
        );
        assert!(log.drain_ended(m + MINUTE_MS + 2).is_empty(), "taken once");
        assert_eq!(log.drain_ended(m + 2 * MINUTE_MS).len(), 1);
    }

    #[test]
    fn at_shutdown_the_open_minute_is_taken_too() {
        let log = DeniedLog::default();
        let m = 1_700_000_040_000 - 1_700_000_040_000 % MINUTE_MS;
        log.record(A, Denial::Forbidden, m + 5);
        log.record(B, Denial::Unauthorized, m + MINUTE_MS + 5);
        assert!(log.drain_ended(m + MINUTE_MS + 6).len() == 1);
        let rest = log.drain_all();
        assert_eq!(rest.len(), 1, "the minute still open");
        assert_eq!((rest[0].source, rest[0].unauthorized), (B, 1));
        assert!(log.drain_all().is_empty());
    }
}
