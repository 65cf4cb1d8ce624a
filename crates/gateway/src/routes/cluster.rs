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
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath};
use crate::model;
use crate::openapi::params::NodePath;
use crate::openapi::schemas::{Cluster, Node};

/// The live nodes, the database and Redis (administrators).
#[utoipa::path(
    get,
    path = "/api/v1/cluster",
    operation_id = "get_cluster",
    tag = "admin",
    responses((status = 200, description = "the cluster", body = Cluster))
)]
pub async fn view(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    caller.require_admin()?;
    let live = state.membership.nodes().await;
    let nodes: Vec<Value> = live.iter().map(render).collect();
    let db_ok = super::probes::database_ok(&state).await.is_ok();
    let pools: u64 = live.iter().map(|n| u64::from(n.database_pool)).sum();
    // The embedded default has no Redis: `null`, as API.md says.
    let redis = (state.coord.kind() == "redis").then(|| json!({"ok": state.coord.healthy()}));
    Ok(Json(json!({
        "nodes": nodes,
        "database": {"dialect": state.dialect, "ok": db_ok, "connections": connections(&state, db_ok, pools).await},
        "redis": redis,
    })))
}

/// The database server's connection limit, what is open on it, and what the live nodes' pools
/// may open together (`pools`): the first limit a growing cluster meets, since pools open
/// connections as load asks and a cluster past the limit fails only under load. `null` on
/// SQLite, or when the database does not say.
async fn connections(state: &AppState, db_ok: bool, pools: u64) -> Value {
    if !db_ok {
        return Value::Null;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.tables.connection_room()).await {
        Ok(Ok(Some(room))) => json!({"limit": room.limit, "open": room.open, "pools": pools}),
        Ok(Ok(None)) => Value::Null,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot read the database's connection limit");
            Value::Null
        }
        Err(_) => Value::Null,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Drain)]
pub struct DrainBody {
    /// `true`: the node stops taking work and hands its runners to others; `false`: it resumes.
    draining: bool,
}

/// Drains a node, or ends its drain (administrators), through any node.
#[utoipa::path(
    post,
    path = "/api/v1/cluster/nodes/{node_id}/drain",
    operation_id = "drain_node",
    tag = "admin",
    params(NodePath),
    request_body = DrainBody,
    responses(
        (status = 200, description = "the node, as it was when asked", body = Node),
        (status = 503, description = "the node cannot be reached without coordination", body = ErrorBody),
    )
)]
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
        "draining": n.draining, "ready": n.ready, "database_pool": n.database_pool,
    })
}
