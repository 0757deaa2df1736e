//! Retry timing shared by the workers (token refresh, webhook delivery).

use std::time::Duration;

use chrono::Duration as TimeDelta;

/// The longest wait between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The wait after the `n`th failure in a row: `base * 2^(n-1)`, at most an hour.
pub(crate) fn backoff(base: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// A settings duration as a chrono delta (a minute if it does not fit).
pub(crate) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::seconds(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_an_hour() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(Duration::from_secs(10), 3), Duration::from_secs(40));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
