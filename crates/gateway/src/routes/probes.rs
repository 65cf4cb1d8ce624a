//! Liveness and readiness for load balancers and orchestrators.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use baton_core::ErrorCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{Error, Result};

/// 200 while the process lives.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when this node can serve: the database answers and the node is not draining.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    if state.draining.is_cancelled() {
        return Err(Error::new(ErrorCode::Unavailable, "draining"));
    }
    match tokio::time::timeout(Duration::from_secs(2), state.tables.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => Err(Error::new(ErrorCode::Unavailable, format!("database unreachable: {e}"))),
        Err(_) => Err(Error::new(ErrorCode::Unavailable, "database unreachable: no answer within 2s")),
    }
}
