//! The cluster view and node drains (admin only). Any node answers for all: the node list comes
//! from coordination heartbeats, and a drain request travels to the named node through it.

use axum::Json;
use axum::extract::State;
use baton_coord::{DrainRequest, NodeInfo};
use baton_core::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath};
use crate::model;

pub async fn view(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    caller.require_admin()?;
    let nodes: Vec<Value> = state.membership.nodes().await.iter().map(render).collect();
    let db_ok = super::probes::database_ok(&state).await.is_ok();
    // The embedded default has no Redis: `null`, as API.md says.
    let redis = (state.coord.kind() == "redis").then(|| json!({"ok": state.coord.healthy()}));
    Ok(Json(json!({
        "nodes": nodes,
        "database": {"dialect": state.dialect, "ok": db_ok},
        "redis": redis,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainBody {
    draining: bool,
}

pub async fn drain(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(node_id): ApiPath<String>,
    ApiJson(body): ApiJson<DrainBody>,
) -> Result<Json<Value>> {
    caller.require_admin()?;
    match state.membership.request_drain(&node_id, body.draining).await {
        Ok(DrainRequest::Sent(node)) => Ok(Json(render(&node))),
        Ok(DrainRequest::UnknownNode) => Err(Error::not_found(format!("live node {node_id:?}"))),
        Err(e) => Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "cannot reach node {node_id:?} without coordination ({e}); retry, or send the request to that node"
            ),
        )),
    }
}

pub fn render(n: &NodeInfo) -> Value {
    json!({
        "id": n.id, "services": n.services, "version": n.version,
        "started_at": model::time(n.started_at), "last_seen": model::time(n.last_seen),
        "draining": n.draining, "ready": n.ready,
    })
}
