//! Projects. Until per-project roles arrive, administrators see and manage every project and
//! other users see none (a project they cannot see is "not found", as for one that does not exist).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::ErrorCode;
use baton_proto::v1::PurgeProjectRequest;
use baton_store::entity::project;
use baton_store::gateway::projects::ProjectChanges;
use serde::Deserialize;
use serde_json::Value;

use super::{ListQuery, page_limit};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{self, Page};

/// The project if the caller may see it, else "not found".
pub async fn visible(state: &AppState, caller: &Caller, pid: i64) -> Result<project::Model> {
    if !caller.admin {
        return Err(Error::not_found(format!("project {pid}")));
    }
    Ok(state.tables.project(pid).await?)
}

/// The project if the caller may change it.
async fn managed(state: &AppState, caller: &Caller, pid: i64) -> Result<project::Model> {
    let p = visible(state, caller, pid).await?;
    caller.require_admin()?;
    Ok(p)
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    let limit = page_limit(q.limit);
    if !caller.admin {
        return Ok(Json(Page { items: Vec::new(), next: None }));
    }
    let rows = state.tables.projects(q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(rows, limit, |p| p.id, |p| model::project(&p))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
    description: Option<String>,
    max_parallel: Option<i32>,
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Error::field("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

fn check_max_parallel(n: i32) -> Result<()> {
    if !(0..=100_000).contains(&n) {
        return Err(Error::field("max_parallel", "must be between 0 (unlimited) and 100000"));
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    check_name(&body.name)?;
    let max_parallel = body.max_parallel.unwrap_or(0);
    check_max_parallel(max_parallel)?;
    let p =
        state.tables.create_project(body.name.trim(), body.description.as_deref().unwrap_or(""), max_parallel).await?;
    Ok((StatusCode::CREATED, Json(model::project(&p))))
}

pub async fn get(State(state): State<AppState>, caller: Caller, ApiPath(pid): ApiPath<i64>) -> Result<Json<Value>> {
    Ok(Json(model::project(&visible(&state, &caller, pid).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    name: Option<String>,
    description: Option<String>,
    max_parallel: Option<i32>,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(body): ApiJson<ProjectPatch>,
) -> Result<Json<Value>> {
    managed(&state, &caller, pid).await?;
    if let Some(n) = &body.name {
        check_name(n)?;
    }
    if let Some(n) = body.max_parallel {
        check_max_parallel(n)?;
    }
    let changes = ProjectChanges {
        name: body.name.map(|n| n.trim().to_owned()),
        description: body.description,
        max_parallel: body.max_parallel,
    };
    Ok(Json(model::project(&state.tables.update_project(pid, changes).await?)))
}

/// Deletes a project with its templates, tasks and logs; refused while tasks are unfinished.
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiPath(pid): ApiPath<i64>) -> Result<StatusCode> {
    managed(&state, &caller, pid).await?;
    let unfinished = state.tables.unfinished_tasks(pid).await?;
    if unfinished > 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("project {pid} has {unfinished} unfinished tasks; cancel them first"),
        ));
    }
    state.tasks.clone().purge_project(PurgeProjectRequest { project_id: pid }).await?;
    state.tables.delete_project_secrets(pid).await?;
    state.tables.delete_project(pid).await?;
    Ok(StatusCode::NO_CONTENT)
}
