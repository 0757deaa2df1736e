//! Prometheus metrics: a middleware that counts requests by route template
//! (never a tenant id) and status and times them, and `GET /metrics`, which
//! adds the service's gauges at scrape time.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiResult;
use crate::AppState;

/// Latency buckets, seconds: a cached read is well under a millisecond, a proxied call may take seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The process-wide recorder (installed once, on first use).
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may exist (an embedding process); then ours only renders what it has.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Registers every documented counter at 0, so `GET /metrics` lists it from
/// the start (a counter that appears only after its first event breaks rate
/// queries and alerts). Request counters are per route and appear with them.
pub(crate) fn register_counters(secret_backend: &'static str) {
    for kind in ["read", "write"] {
        metrics::counter!("tessera_secret_operations_total", "kind" => kind, "backend" => secret_backend).increment(0);
    }
    metrics::counter!("tessera_token_refresh_attempts_total").increment(0);
    metrics::counter!("tessera_token_refresh_failures_total").increment(0);
    for outcome in ["delivered", "failed", "retry"] {
        metrics::counter!("tessera_webhook_deliveries_total", "outcome" => outcome).increment(0);
    }
    for reason in ["per_client", "total"] {
        metrics::counter!("tessera_connections_refused_total", "reason" => reason).increment(0);
    }
    metrics::counter!("tessera_anonymous_rate_limited_total").increment(0);
}

/// Counts and times every request.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("tessera_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics` in Prometheus text format (no token needed, like `/healthz`).
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", security(()), tag = "service", responses((status = 200, description = "Prometheus text")))]
pub(crate) async fn render(State(s): State<AppState>) -> ApiResult<impl IntoResponse> {
    let snapshot = s.svc.metrics_snapshot().await?;
    metrics::gauge!("tessera_tenants").set(snapshot.tenants as f64);
    metrics::gauge!("tessera_credentials").set(snapshot.credentials as f64);
    metrics::gauge!("tessera_refresh_queue").set(snapshot.refresh_queue as f64);
    for (status, n) in snapshot.connections_by_health {
        metrics::gauge!("tessera_connections", "health" => status).set(n as f64);
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle().render()))
}
