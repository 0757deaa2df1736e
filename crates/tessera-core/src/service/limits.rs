//! Per-caller rate limits: a token bucket (GCRA, the `governor` crate) per
//! principal, `per_second` requests with bursts of `burst`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ServiceError;

/// `TESSERA_RATE_LIMIT` and its burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second per caller.
    pub per_second: NonZeroU32,
    /// Requests a caller may send at once.
    pub burst: NonZeroU32,
}

/// The buckets of every caller seen.
pub(crate) struct CallerLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// Full buckets are dropped every this many checks.
const SHRINK_EVERY: u64 = 10_000;

impl CallerLimits {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one token from `caller`'s bucket, or says how long to wait.
    pub(crate) fn check(&self, caller: &str) -> Result<(), ServiceError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SHRINK_EVERY == SHRINK_EVERY - 1 {
            self.shrink();
        }
        match self.limiter.check_key(&caller.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                // Retry-After is whole seconds; round up so a retry at that time succeeds.
                Err(ServiceError::rate_limited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)))
            }
        }
    }

    /// Forgets buckets that are full again (bounded memory with many callers).
    fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_caller_waits_and_others_do_not() {
        let one = NonZeroU32::new(1).expect("non-zero");
        let limits = CallerLimits::new(RateLimit { per_second: one, burst: NonZeroU32::new(3).expect("non-zero") });
        for _ in 0..3 {
            assert!(limits.check("key-a").is_ok());
        }
        let refused = limits.check("key-a").expect_err("over the burst");
        assert_eq!(refused.retry_after, Some(1));
        assert!(limits.check("key-b").is_ok(), "buckets are per caller");
    }
}
