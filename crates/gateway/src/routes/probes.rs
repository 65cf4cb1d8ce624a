//! Liveness and readiness for load balancers and orchestrators, and the node's metrics for
//! Prometheus.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use baton_core::ErrorCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{Error, ErrorBody, Result};
use crate::openapi::schemas;

/// 200 while the process lives.
#[utoipa::path(
    get,
    path = "/api/health",
    operation_id = "health",
    tag = "probes",
    security(()),
    responses((status = 200, description = "the process lives", body = schemas::Health))
)]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when this node can serve: the database answers and the node is not draining.
#[utoipa::path(
    get,
    path = "/api/ready",
    operation_id = "ready",
    tag = "probes",
    security(()),
    responses(
        (status = 200, description = "the node can serve", body = schemas::Ready),
        (status = 503, description = "the node cannot serve: it drains, or its database does not answer \
                                      (a short reason, never internal error text)", body = ErrorBody),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    if state.membership.is_draining() {
        return Err(Error::new(ErrorCode::Unavailable, "draining"));
    }
    database_ok(&state).await.map_err(|why| Error::new(ErrorCode::Unavailable, why))?;
    // Coordination down is a degraded mode, not a reason to leave the load balancer: the node
    // still serves and dispatches from SQL. `/api/v1/cluster` shows it.
    Ok(Json(json!({"status": "ready", "coordination": if state.coord.healthy() { "ok" } else { "degraded" }})))
}

/// `GET /metrics`: this node's metrics in the Prometheus text format (`http_metrics.rs`).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "probes",
    security(()),
    responses((status = 200, description = "this node's metrics in the Prometheus text exposition format 0.0.4 \
        (gauges that describe the whole cluster say so in their help)", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    crate::http_metrics::render(&state.metrics)
}

/// Whether the database answers within two seconds. The reason is short and fixed: the driver's
/// message (host names, user names, SQL states) goes to the log, never to an unauthenticated
/// client.
pub async fn database_ok(state: &AppState) -> std::result::Result<(), &'static str> {
    match tokio::time::timeout(Duration::from_secs(2), state.tables.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err("database unreachable")
        }
        Err(_) => {
            tracing::warn!("readiness: the database gave no answer within 2 s");
            Err("database unreachable")
        }
    }
}
