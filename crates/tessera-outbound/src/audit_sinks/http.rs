//! `https://...`: each batch is one POST of JSON Lines, signed as webhook
//! deliveries are (`Tessera-Signature: t=<unix seconds>,v1=<hex>`, HMAC-SHA256
//! under `TESSERA_AUDIT_SINK_SECRET` over `<t>.<body>`), sent by the
//! webhooks' client (no redirects followed, no proxy variables, a time
//! limit). Only a 2xx answer delivers the batch.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tessera_core::audit_sink::{json_line, AuditSink, SinkError};
use tessera_core::service::AuditEventView;
use tessera_core::webhook::{signature, SendOutcome, WebhookSender};

use super::SinkBuildError;
use crate::Forwarder;

/// An HTTP endpoint sink.
pub struct HttpSink {
    name: String,
    url: url::Url,
    secret: SecretString,
    // The operator chose this URL (not a tenant), so the client is the
    // proxy's, without the webhooks' public-addresses-only resolver: a SIEM
    // collector inside the deployment's network is the usual case.
    client: Forwarder,
}

impl HttpSink {
    /// A sink POSTing to `url`.
    pub fn new(name: String, url: url::Url, secret: SecretString, timeout: Duration) -> Result<Self, SinkBuildError> {
        let client = Forwarder::new(timeout)
            .map_err(|e| SinkBuildError(format!("cannot build the audit sink's HTTP client: {e}")))?;
        Ok(Self { name, url, secret, client })
    }
}

/// The body of a batch: one event a line.
pub(crate) fn body(events: &[AuditEventView]) -> Vec<u8> {
    let mut body = Vec::with_capacity(events.len() * 320);
    for e in events {
        body.extend_from_slice(json_line(e).as_bytes());
        body.push(b'\n');
    }
    body
}

#[async_trait]
impl AuditSink for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[AuditEventView]) -> Result<(), SinkError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let body = body(events);
        let now = chrono::Utc::now().timestamp();
        let headers = vec![
            ("content-type", "application/jsonl; charset=utf-8".to_owned()),
            ("tessera-event", "audit".to_owned()),
            // Receivers drop repeats by seq: a batch is resent whole after a failure.
            ("tessera-audit-first-seq", first.seq.to_string()),
            ("tessera-audit-last-seq", last.seq.to_string()),
            ("tessera-signature", signature(self.secret.expose_secret().as_bytes(), now, &body)),
        ];
        match self.client.post(self.url.clone(), headers, body).await {
            SendOutcome::Answered(status) if (200..300).contains(&status) => Ok(()),
            SendOutcome::Answered(status) => Err(SinkError(format!("the receiver answered {status}"))),
            SendOutcome::NoAnswer(why) => Err(SinkError(why)),
        }
    }
}
