//! Runners and their registration tokens. Administrators see and manage every runner and mint
//! global tokens; a project's owners mint tokens for runners that serve only their project, and
//! see, pause and revoke those runners. The dispatcher owns both, so changes go through its
//! `Tasks` service; reads come from SQL.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::ErrorCode;
use baton_core::names::valid_label;
use baton_proto::v1::{CreateRegistrationTokenRequest, RevokeRunnerRequest, SetRunnerPausedRequest};
use baton_store::entity::runner;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::access::{self, Permission, Role};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Page;
use crate::openapi::params::{ProjectPath, RunnerPath};
use crate::openapi::schemas::{RegistrationToken, Runner};
use crate::{AppState, model};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewRegistrationToken)]
pub struct NewToken {
    /// 3600 unless given; at most a year.
    #[schema(minimum = 1, maximum = 31_536_000)]
    expires_in_seconds: Option<u64>,
    /// The labels its runners get (letters, digits and `- _ . : =`); without, runners choose.
    labels: Option<Vec<String>>,
    /// The only project its runners serve.
    project_id: Option<i64>,
    /// How many runners it may register: 1 by default, 0 = any number until it expires.
    #[schema(maximum = 1_000_000)]
    max_uses: Option<u32>,
}

/// `POST /runner-registration-tokens` (administrators).
#[utoipa::path(
    post,
    path = "/api/v1/runner-registration-tokens",
    operation_id = "create_registration_token",
    tag = "runners",
    request_body = NewToken,
    responses((status = 201, description = "the token, shown once", body = RegistrationToken))
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    mint(&state, body).await
}

/// `POST /projects/{pid}/runner-registration-tokens` (the project's owners): the same, for
/// runners that serve only this project.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{pid}/runner-registration-tokens",
    operation_id = "create_project_registration_token",
    tag = "runners",
    params(ProjectPath),
    request_body = NewToken,
    responses((status = 201, description = "the token, shown once", body = RegistrationToken))
)]
pub async fn create_project_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(mut body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>)> {
    access::project(&state, &caller, pid, Permission::Own).await?;
    if body.project_id.is_some_and(|p| p != pid) {
        return Err(Error::field("project_id", format!("a token minted here serves project {pid}; leave it out")));
    }
    body.project_id = Some(pid);
    mint(&state, body).await
}

async fn mint(state: &AppState, body: NewToken) -> Result<(StatusCode, Json<Value>)> {
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

pub fn render(state: &AppState, r: &runner::Model, running: i64) -> Value {
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

/// Every runner for administrators; for anyone else, the runners of the projects they own.
#[utoipa::path(
    get,
    path = "/api/v1/runners",
    operation_id = "list_runners",
    tag = "runners",
    params(ListQuery),
    responses((status = 200, description = "a page of runners", body = Page<Runner>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    let limit = page_limit(q.limit)?;
    let projects = if caller.is_admin() { None } else { Some(owned_projects(&state, &caller).await?) };
    let rows = state.tables.runners_page(projects.as_deref(), q.before, limit as u64 + 1).await?;
    let running = state.tables.running_per_runner().await?;
    Ok(Json(Page::of(rows, limit, |r| r.id, |r| render(&state, &r, running.get(&r.id).copied().unwrap_or(0)))))
}

/// The projects the caller may manage runners of.
async fn owned_projects(state: &AppState, caller: &Caller) -> Result<Vec<i64>> {
    let mut owned = Vec::new();
    let candidates = match caller.token.as_ref().and_then(|t| t.project_id) {
        Some(pid) => vec![pid],
        None if caller.user_admin => return Ok(Vec::new()),
        None => state.tables.projects_with_role(caller.id, "owner").await?,
    };
    for pid in candidates {
        if access::role_in(state, caller, pid).await? == Some(Role::Owner) {
            owned.push(pid);
        }
    }
    Ok(owned)
}

/// The runner `id` if the caller may manage it: administrators any, a project's owners that
/// project's. The runner of a project the caller sees with a lesser role is refused like any
/// owner's action there (403 naming the role); any other runner is "not found".
async fn managed(state: &AppState, caller: &Caller, id: i64) -> Result<runner::Model> {
    let r = state.tables.active_runner(id).await?;
    if caller.is_admin() {
        return Ok(r);
    }
    let Some(pid) = r.project_id else { return Err(Error::not_found(format!("runner {id}"))) };
    match access::project(state, caller, pid, Permission::Own).await {
        // The runner is hidden as its project is: the answer names neither.
        Err(e) if e.code == ErrorCode::NotFound => Err(Error::not_found(format!("runner {id}"))),
        Err(e) => Err(e),
        Ok(_) => Ok(r),
    }
}

/// A runner (administrators, or owners of the runner's project).
#[utoipa::path(
    get,
    path = "/api/v1/runners/{id}",
    operation_id = "get_runner",
    tag = "runners",
    params(RunnerPath),
    responses((status = 200, description = "the runner", body = Runner))
)]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> Result<Json<Value>> {
    let r = managed(&state, &caller, id).await?;
    let running = state.tables.running_per_runner().await?.get(&id).copied().unwrap_or(0);
    Ok(Json(render(&state, &r, running)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RunnerPatch)]
pub struct Patch {
    /// A paused runner takes no new task; what it runs goes on.
    paused: bool,
}

/// Pauses or resumes a runner.
#[utoipa::path(
    patch,
    path = "/api/v1/runners/{id}",
    operation_id = "update_runner",
    tag = "runners",
    params(RunnerPath),
    request_body = Patch,
    responses((status = 200, description = "the runner", body = Runner))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Patch>,
) -> Result<Json<Value>> {
    managed(&state, &caller, id).await?;
    state.tasks.clone().set_runner_paused(SetRunnerPausedRequest { runner_id: id, paused: body.paused }).await?;
    get(State(state), caller, ApiPath(id)).await
}

/// Revokes the runner: it is disconnected at once and can never connect again.
#[utoipa::path(
    delete,
    path = "/api/v1/runners/{id}",
    operation_id = "revoke_runner",
    tag = "runners",
    params(RunnerPath),
    responses((status = 204, description = "revoked"))
)]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> Result<StatusCode> {
    managed(&state, &caller, id).await?;
    state.tasks.clone().revoke_runner(RevokeRunnerRequest { runner_id: id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
