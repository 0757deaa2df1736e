//! Integration health: the registry's `healthCheck` settings, how an answer
//! is judged (seed 000's `healthy`, `degraded`, `unhealthy`), and the
//! outbound port that sends the probe.

use crate::ErrorCode;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::Health;
use crate::error::ServiceError;

/// `healthCheck` of a registry entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckSettings {
    /// `GET` (default) or `HEAD`.
    #[serde(default = "get")]
    pub method: String,
    /// Path under the proxy's base URL (default: the base itself).
    #[serde(default)]
    pub path: String,
    /// The status a healthy upstream answers (default 200).
    #[serde(default = "ok", deserialize_with = "crate::json_int::integer")]
    pub expected_status: u16,
    /// Slower than this (milliseconds) is `degraded` (default 2000).
    #[serde(default = "slow", deserialize_with = "crate::json_int::integer")]
    pub slow_ms: u64,
    /// Seconds between checks of one connection (default 300, at least 10).
    #[serde(default = "interval", deserialize_with = "crate::json_int::integer")]
    pub interval_seconds: u64,
}

fn get() -> String {
    "GET".into()
}
fn ok() -> u16 {
    200
}
fn slow() -> u64 {
    2000
}
fn interval() -> u64 {
    300
}

impl HealthCheckSettings {
    /// Validates a caller's settings.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let bad =
            |msg: &str, field: &str| ServiceError::invalid(ErrorCode::InvalidHealthCheck, msg.to_owned(), Some(field));
        if !matches!(self.method.as_str(), "GET" | "HEAD") {
            return Err(bad("method must be GET or HEAD", "healthCheck.method"));
        }
        if !(100..=599).contains(&self.expected_status) {
            return Err(bad("expectedStatus must be an HTTP status", "healthCheck.expectedStatus"));
        }
        if self.interval_seconds < 10 {
            return Err(bad("intervalSeconds must be at least 10", "healthCheck.intervalSeconds"));
        }
        Ok(())
    }
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The upstream answered this status after this long.
    Answered {
        /// Status code.
        status: u16,
        /// Time to the response head.
        latency: Duration,
    },
    /// No answer in time, or no connection.
    NoAnswer(String),
}

/// The verdict on one probe, with a reason.
pub fn judge(settings: &HealthCheckSettings, outcome: &ProbeOutcome) -> (Health, String) {
    match *outcome {
        ProbeOutcome::NoAnswer(ref why) => (Health::Unhealthy, format!("no answer: {why}")),
        ProbeOutcome::Answered { status, .. } if status == 401 || status == 403 => {
            (Health::Unhealthy, format!("the credential was refused ({status})"))
        }
        ProbeOutcome::Answered { status, .. } if status >= 500 => {
            (Health::Unhealthy, format!("the upstream failed ({status})"))
        }
        ProbeOutcome::Answered { status, .. } if status != settings.expected_status => {
            (Health::Degraded, format!("answered {status}, expected {}", settings.expected_status))
        }
        ProbeOutcome::Answered { latency, .. } if latency > Duration::from_millis(settings.slow_ms) => {
            (Health::Degraded, format!("slow: {} ms", latency.as_millis()))
        }
        ProbeOutcome::Answered { status, latency } => {
            (Health::Healthy, format!("{status} in {} ms", latency.as_millis()))
        }
    }
}

/// A credential header or query parameter added to the probe.
pub enum ProbeAuth<'a> {
    /// None.
    None,
    /// A header.
    Header(&'a str, &'a secrecy::SecretString),
}

/// Sends health probes (implemented in `tessera-outbound`).
#[async_trait]
pub trait HttpProbe: Send + Sync {
    /// Sends `method url` with the credential and reports what came back.
    async fn probe(&self, method: &str, url: url::Url, auth: ProbeAuth<'_>) -> ProbeOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HealthCheckSettings {
        serde_json::from_value(serde_json::json!({"path": "/me", "slowMs": 100})).expect("defaults fill the rest")
    }

    #[test]
    fn answers_are_judged_as_seed_000_says() {
        let s = settings();
        let at = |status, ms| ProbeOutcome::Answered { status, latency: Duration::from_millis(ms) };
        assert_eq!(judge(&s, &at(200, 10)).0, Health::Healthy);
        assert_eq!(judge(&s, &at(200, 500)).0, Health::Degraded);
        assert_eq!(judge(&s, &at(404, 10)).0, Health::Degraded);
        assert_eq!(judge(&s, &at(401, 10)).0, Health::Unhealthy);
        assert_eq!(judge(&s, &at(403, 10)).0, Health::Unhealthy);
        assert_eq!(judge(&s, &at(503, 10)).0, Health::Unhealthy);
        assert_eq!(
            judge(&s, &ProbeOutcome::NoAnswer("127.0.0.1:9 could not be reached: connection refused".into())).0,
            Health::Unhealthy
        );
        assert_eq!(s.interval_seconds, 300);
        assert!(HealthCheckSettings { interval_seconds: 1, ..s }.validate().is_err());
    }
}
