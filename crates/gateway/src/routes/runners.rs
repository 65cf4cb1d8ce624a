//! Runners and their registration tokens (admins only). The dispatcher owns both, so changes go
//! through its `Tasks` service; reads come from SQL.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::names::valid_label;
use baton_proto::v1::{CreateRegistrationTokenRequest, RevokeRunnerRequest, SetRunnerPausedRequest};
use baton_store::entity::runner;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath};
use crate::{AppState, model};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    expires_in_seconds: Option<u64>,
    labels: Option<Vec<String>>,
    project_id: Option<i64>,
    /// How many runners it may register: 1 by default, 0 = any number until it expires.
    max_uses: Option<u32>,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    let labels = body.labels.unwrap_or_default();
    if let Some(bad) = labels.iter().find(|l| !valid_label(l)) {
        return Err(Error::field("labels", format!("{bad:?} is not a valid label (letters, digits and - _ . : =)")));
    }
    match body.expires_in_seconds {
        Some(0) => return Err(Error::field("expires_in_seconds", "must be positive (default 3600)")),
        Some(s) if s > 365 * 86_400 => return Err(Error::field("expires_in_seconds", "must be at most a year")),
        _ => {}
    }
    if body.max_uses.is_some_and(|n| n > 1_000_000) {
        return Err(Error::field("max_uses", "must be at most 1000000 (0 = any number until it expires)"));
    }
    if let Some(pid) = body.project_id {
        state.tables.project(pid).await.map_err(|_| Error::field("project_id", format!("no project {pid}")))?;
    }
    let req = CreateRegistrationTokenRequest {
        expires_in_seconds: body.expires_in_seconds.unwrap_or(0),
        labels,
        project_id: body.project_id,
        max_uses: body.max_uses,
    };
    let r = state.tasks.clone().create_registration_token(req).await?.into_inner();
    let body = json!({
        "id": r.id, "token": r.token, "expires_at": model::time(r.expires_at_ms), "max_uses": body.max_uses.unwrap_or(1),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

fn render(state: &AppState, r: &runner::Model, running: i64) -> Value {
    let labels: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
    let lease = state.opts.runner_lease.as_millis() as i64;
    let online = r.last_seen.is_some_and(|t| t > baton_store::now_ms() - lease);
    json!({
        "id": r.id, "name": r.name, "labels": labels, "capacity": r.capacity, "running": running,
        "paused": r.paused, "online": online, "last_seen": r.last_seen.map(model::time),
        "version": r.version, "node_id": r.node_id, "project_id": r.project_id,
        "created_at": model::time(r.created_at),
    })
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    caller.require_admin()?;
    let running = state.tables.running_per_runner().await?;
    let items: Vec<Value> = state
        .tables
        .runners()
        .await?
        .iter()
        .map(|r| render(&state, r, running.get(&r.id).copied().unwrap_or(0)))
        .collect();
    Ok(Json(json!({"items": items, "next": null})))
}

pub async fn get(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> Result<Json<Value>> {
    caller.require_admin()?;
    let r = state.tables.active_runner(id).await?;
    let running = state.tables.running_per_runner().await?.get(&id).copied().unwrap_or(0);
    Ok(Json(render(&state, &r, running)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    paused: bool,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Patch>,
) -> Result<Json<Value>> {
    caller.require_admin()?;
    state.tables.active_runner(id).await?;
    state.tasks.clone().set_runner_paused(SetRunnerPausedRequest { runner_id: id, paused: body.paused }).await?;
    get(State(state), caller, ApiPath(id)).await
}

/// Revokes the runner: it is disconnected at once and can never connect again.
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> Result<StatusCode> {
    caller.require_admin()?;
    state.tables.active_runner(id).await?;
    state.tasks.clone().revoke_runner(RevokeRunnerRequest { runner_id: id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
