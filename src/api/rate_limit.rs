//! The admin API's per-source token bucket (§3 `rate_limit_per_s`,
//! `rate_limit_burst`; §12): every request under `/api/` takes a token from its
//! client IP's bucket *before* authentication, so guessing tokens costs the same
//! as using one; an empty bucket is 429 with `Retry-After`. `/livez`, `/healthz`
//! and `/metrics` are never limited (they are outside this router).
//!
//! Must not look at credentials. Time is an argument (`Instant`), so the rule is
//! unit-tested without waiting.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;

/// Buckets kept at most; past it, full (idle) buckets are forgotten first, so
/// a scan from many addresses cannot grow memory without bound.
const MAX_SOURCES: usize = 10_000;

/// The client address of a request, as the middleware found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source(pub IpAddr);

#[derive(Debug)]
pub struct RateLimiter {
    per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A request's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; a token is back after this many whole seconds (at least 1).
    Limit {
        retry_after_s: u64,
    },
}

impl RateLimiter {
    pub fn new(per_s: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_s: f64::from(per_s.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `source`'s bucket at `now`, if there is one.
    pub fn check(&self, source: IpAddr, now: Instant) -> Decision {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
            self.forget_idle(&mut buckets, now);
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_s).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Decision::Allow;
        }
        let wait = (1.0 - bucket.tokens) / self.per_s;
        Decision::Limit {
            retry_after_s: (wait.ceil() as u64).max(1),
        }
    }

    fn forget_idle(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let (per_s, burst) = (self.per_s, self.burst);
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_s < burst
        });
        if buckets.len() >= MAX_SOURCES {
            // Still full of active sources: the least recently seen goes.
            if let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.at).map(|(ip, _)| *ip) {
                buckets.remove(&oldest);
            }
        }
    }
}

/// The middleware: finds the client's address, applies its bucket, and hands
/// the address on to the handlers (for auth and the audit log).
pub async fn limit(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match state.limiter().check(ip, Instant::now()) {
        Decision::Allow => {
            req.extensions_mut().insert(Source(ip));
            next.run(req).await
        }
        Decision::Limit { retry_after_s } => ApiError::rate_limited(retry_after_s).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn a_burst_passes_then_the_bucket_refills_at_the_rate() {
        let limiter = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(A, t0), Decision::Allow);
        }
        assert_eq!(limiter.check(A, t0), Decision::Limit { retry_after_s: 1 });
        // Half a second at 2/s is one token.
        assert_eq!(
            limiter.check(A, t0 + Duration::from_millis(500)),
            Decision::Allow
        );
        assert!(matches!(
            limiter.check(A, t0 + Duration::from_millis(500)),
            Decision::Limit { .. }
        ));
        // Refill stops at the burst.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check(A, later), Decision::Allow);
        }
        assert!(matches!(limiter.check(A, later), Decision::Limit { .. }));
    }

    #[test]
    fn each_source_has_its_own_bucket() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(limiter.check(A, t0), Decision::Allow);
        assert!(matches!(limiter.check(A, t0), Decision::Limit { .. }));
        assert_eq!(limiter.check(B, t0), Decision::Allow);
    }

    #[test]
    fn retry_after_counts_whole_seconds_until_a_token() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        limiter.check(A, t0);
        assert_eq!(
            limiter.check(A, t0 + Duration::from_millis(100)),
            Decision::Limit { retry_after_s: 1 }
        );
    }

    #[test]
    fn many_sources_stay_bounded() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 50) {
            limiter.check(IpAddr::V4(Ipv4Addr::from(i)), t0);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_SOURCES);
    }
}
