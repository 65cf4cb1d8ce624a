//! What the gateway records of HTTP for `/metrics`: every response counted by route template,
//! method and status, and timed until its head is sent (a log stream's or a WebSocket's life is
//! not a request's duration). The route label is the template that matched
//! (`/api/v1/projects/{pid}/tasks/{id}`), never the path: ids and names in paths, and random
//! paths of a scan, would each make new series. `GET /metrics` itself renders the registry.
//!
//! The layer wraps the router after routing, where axum has put the `MatchedPath`; split
//! processes without the gateway serve their probes and `/metrics` with it too (`node.rs`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_metrics::Metrics;

/// Middleware (`from_fn_with_state(metrics, record)`) that counts and times every response.
pub async fn record(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.http_request(route.as_deref(), method.as_str(), resp.status().as_u16(), started.elapsed());
    resp
}

/// The answer to `GET /metrics`: no credentials, like the probes, since Prometheus scrapes every
/// node directly. It shows counts and timings only — no ids, names or paths — and the load
/// balancers do not forward it (docker/haproxy.cfg, docker/nginx.conf).
pub fn render(metrics: &Metrics) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, baton_metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot render the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
