//! Denials of anonymous requests (bad bearer tokens, bogus OAuth callback
//! states), recorded so the audit stays complete in meaning but bounded in
//! size: the first denial of a client address in an interval is written as
//! one durable event before the answer; later ones in the same interval
//! (rate-limited ones too) are only counted in memory, and when the interval
//! ends one aggregated event per address carries the count and the first
//! and last times. A crash loses at most one interval of counts, never an
//! event of a successful access.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::service::rfc3339;

/// Addresses tracked per interval; denials from further addresses are
/// counted together under one key without an address.
const MAX_ADDRESSES: usize = 10_000;

/// What a denial is about: the action and the base of its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Denied {
    /// A bearer token that is not valid (`auth.denied`, `token`).
    Token,
    /// An OAuth callback without a valid state (`oauth.callback`, `oauth/callback`).
    Callback,
    /// A connect page token that opens no session (`connect.denied`, `connect`).
    Connect,
}

impl Denied {
    pub(crate) fn action(self) -> &'static str {
        match self {
            Self::Token => "auth.denied",
            Self::Callback => "oauth.callback",
            Self::Connect => "connect.denied",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Callback => "oauth/callback",
            Self::Connect => "connect",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    client_ip: Option<String>,
    what: Denied,
}

/// Denials not yet written.
struct Tally {
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Whether a denial must be written now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The first of its address in this interval: write it, durably, before answering.
    Write,
    /// Counted; the aggregated event at the end of the interval carries it.
    Counted,
}

/// This interval's denials, per client address.
#[derive(Default)]
pub(crate) struct DenialLog {
    seen: Mutex<HashMap<Key, Option<Tally>>>,
}

impl DenialLog {
    /// Notes a denial that is answered normally (401, 400).
    pub(crate) fn note(&self, client_ip: Option<&str>, what: Denied) -> Record {
        self.add(client_ip, what, false)
    }

    /// Notes a denial that is only counted, whatever came before (a 429).
    pub(crate) fn count(&self, client_ip: Option<&str>, what: Denied) {
        self.add(client_ip, what, true);
    }

    fn add(&self, client_ip: Option<&str>, what: Denied, count_only: bool) -> Record {
        let now = Utc::now();
        let mut seen = self.seen.lock().expect("the denial log is never poisoned");
        let mut key = Key { client_ip: client_ip.map(str::to_owned), what };
        if !seen.contains_key(&key) && seen.len() >= MAX_ADDRESSES {
            key.client_ip = None;
        }
        let first_of_address = !seen.contains_key(&key);
        let tally = seen.entry(key).or_default();
        if first_of_address && !count_only {
            return Record::Write;
        }
        match tally {
            Some(t) => {
                t.count += 1;
                t.last = now;
            }
            None => *tally = Some(Tally { count: 1, first: now, last: now }),
        }
        Record::Counted
    }

    /// Ends the interval: one aggregated event per address with counted denials.
    pub(crate) fn take(&self) -> Vec<AuditEvent> {
        let seen = std::mem::take(&mut *self.seen.lock().expect("the denial log is never poisoned"));
        let mut events: Vec<AuditEvent> = seen
            .into_iter()
            .filter_map(|(key, tally)| tally.map(|t| (key, t)))
            .map(|(key, t)| AuditEvent {
                actor: "anonymous".into(),
                actor_role: "none".into(),
                tenant_id: None,
                action: key.what.action().into(),
                resource: format!(
                    "{}?count={}&first={}&last={}",
                    key.what.resource(),
                    t.count,
                    rfc3339(t.first),
                    rfc3339(t.last)
                ),
                outcome: "denied".into(),
                request_id: None,
                client_ip: key.client_ip,
            })
            .collect();
        events.sort_by(|a, b| a.client_ip.cmp(&b.client_ip));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_denial_is_written_and_later_ones_are_aggregated_per_address() {
        let log = DenialLog::default();
        assert_eq!(log.note(Some("10.0.0.1"), Denied::Token), Record::Write);
        for _ in 0..5 {
            assert_eq!(log.note(Some("10.0.0.1"), Denied::Token), Record::Counted);
        }
        log.count(Some("10.0.0.1"), Denied::Token);
        assert_eq!(log.note(Some("10.0.0.2"), Denied::Token), Record::Write, "per address");
        assert_eq!(log.note(Some("10.0.0.1"), Denied::Callback), Record::Write, "per kind");
        let events = log.take();
        assert_eq!(events.len(), 1, "only addresses with counted denials: {events:?}");
        assert_eq!(events[0].action, "auth.denied");
        assert!(events[0].resource.starts_with("token?count=6&first="), "{}", events[0].resource);
        assert_eq!(events[0].client_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(log.note(Some("10.0.0.1"), Denied::Token), Record::Write, "a new interval starts over");
    }

    #[test]
    fn a_rate_limited_denial_is_counted_even_when_first() {
        let log = DenialLog::default();
        log.count(None, Denied::Callback);
        let events = log.take();
        assert_eq!(events.len(), 1);
        assert!(events[0].resource.starts_with("oauth/callback?count=1&"), "{}", events[0].resource);
    }

    #[test]
    fn addresses_beyond_the_bound_share_one_key() {
        let log = DenialLog::default();
        for i in 0..MAX_ADDRESSES + 50 {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            log.note(Some(&ip), Denied::Token);
        }
        assert!(log.seen.lock().expect("lock").len() <= MAX_ADDRESSES + 1);
        let events = log.take();
        assert_eq!(events.len(), 1, "the overflow key counted 49 after writing its first");
        assert_eq!(events[0].client_ip, None);
        assert!(events[0].resource.starts_with("token?count=49&"), "{}", events[0].resource);
    }
}
