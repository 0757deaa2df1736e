//! Per-caller rate limits: a token bucket (GCRA, the `governor` crate) per
//! principal, `per_second` requests with bursts of `burst`; and the same per
//! client address for anonymous requests (`TESSERA_RATE_LIMIT_ANONYMOUS`).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
        self.take(caller).map_err(refusal)
    }

    /// Takes one token from `caller`'s bucket, or gives the time until the next one.
    fn take(&self, caller: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SHRINK_EVERY == SHRINK_EVERY - 1 {
            self.shrink();
        }
        self.limiter.check_key(&caller.to_owned()).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets buckets that are full again (bounded memory with many callers).
    fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A 429 that says how long to wait.
fn refusal(wait: Duration) -> ServiceError {
    // Retry-After is whole seconds; round up so a retry at that time succeeds.
    ServiceError::rate_limited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

/// The buckets of anonymous requests, per client address. An address whose
/// bucket ran empty is refused until its next token without any other work
/// (no token lookup, no audit write): that is what the limit protects.
pub(crate) struct AddressLimits {
    buckets: CallerLimits,
    /// Addresses with an empty bucket, and when their next token comes.
    empty_until: moka::sync::Cache<String, Instant>,
}

impl AddressLimits {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let empty_until =
            moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(60)).build();
        Self { buckets: CallerLimits::new(limit), empty_until }
    }

    /// Refuses an address whose bucket is empty, without taking a token.
    pub(crate) fn refuse_if_empty(&self, address: &str) -> Result<(), ServiceError> {
        match self.empty_until.get(address) {
            Some(until) if until > Instant::now() => Err(refusal(until - Instant::now())),
            _ => Ok(()),
        }
    }

    /// Takes a token from the address's bucket.
    pub(crate) fn take(&self, address: &str) -> Result<(), ServiceError> {
        self.buckets.take(address).map_err(|wait| {
            self.empty_until.insert(address.to_owned(), Instant::now() + wait);
            refusal(wait)
        })
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

    #[test]
    fn an_address_with_an_empty_bucket_is_refused_without_taking_a_token() {
        let ten = NonZeroU32::new(10).expect("non-zero");
        let limits = AddressLimits::new(RateLimit { per_second: ten, burst: NonZeroU32::new(2).expect("non-zero") });
        assert!(limits.refuse_if_empty("10.0.0.1").is_ok());
        assert!(limits.take("10.0.0.1").is_ok() && limits.take("10.0.0.1").is_ok());
        let refused = limits.take("10.0.0.1").expect_err("over the burst");
        assert_eq!(refused.retry_after, Some(1));
        assert!(limits.refuse_if_empty("10.0.0.1").is_err(), "empty until the next token");
        assert!(limits.refuse_if_empty("10.0.0.2").is_ok(), "per address");
        std::thread::sleep(Duration::from_millis(150));
        assert!(limits.refuse_if_empty("10.0.0.1").is_ok(), "a token came back");
    }
}
