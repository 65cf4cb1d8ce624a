//! Projects. Members see theirs (with their role), administrators all; administrators create
//! them, and whoever creates one is its first owner. What each role may do is `access.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::ErrorCode;
use baton_proto::v1::PurgeProjectRequest;
use baton_store::entity::project;
use baton_store::gateway::projects::{NewProject, ProjectChanges};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::AppState;
use crate::access::{self, Permission, Role};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{self, Page};

/// The caller's projects with their role in each: every project for an administrator, their
/// memberships for anyone else, and only its project for a token narrowed to one.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    let limit = page_limit(q.limit);
    let only = caller.token.as_ref().and_then(|t| t.project_id);
    let rows: Vec<(project::Model, Role)> = if caller.user_admin {
        let projects = match only {
            Some(pid) => {
                state.tables.project(pid).await.ok().filter(|p| q.before.is_none_or(|b| p.id < b)).into_iter().collect()
            }
            None => state.tables.projects(q.before, limit as u64 + 1).await?,
        };
        projects.into_iter().map(|p| (p, caller.cap(Role::Owner))).collect()
    } else {
        let mine = state.tables.projects_of(caller.id, q.before, limit as u64 + 1).await?;
        mine.into_iter()
            .filter(|(p, _)| only.is_none_or(|pid| pid == p.id))
            .filter_map(|(p, r)| Role::parse(&r).map(|r| (p, caller.cap(r))))
            .collect()
    };
    Ok(Json(Page::of(rows, limit, |(p, _)| p.id, |(p, role)| with_role(&p, role))))
}

fn with_role(p: &project::Model, role: Role) -> Value {
    let mut v = model::project(p);
    v["role"] = json!(role.as_str());
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProjectBody {
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
    ApiJson(body): ApiJson<NewProjectBody>,
) -> Result<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    check_name(&body.name)?;
    let max_parallel = body.max_parallel.unwrap_or(0);
    check_max_parallel(max_parallel)?;
    let new =
        NewProject { name: body.name.trim(), description: body.description.as_deref().unwrap_or(""), max_parallel };
    let p = state.tables.create_project_owned(new, caller.id).await?;
    Ok((StatusCode::CREATED, Json(with_role(&p, Role::Owner))))
}

pub async fn get(State(state): State<AppState>, caller: Caller, ApiPath(pid): ApiPath<i64>) -> Result<Json<Value>> {
    let a = access::project(&state, &caller, pid, Permission::Read).await?;
    Ok(Json(with_role(&a.project, a.role)))
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
    access::project(&state, &caller, pid, Permission::Own).await?;
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
    access::project(&state, &caller, pid, Permission::Own).await?;
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
    crate::events::rights_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
