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
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{self, Page};
use crate::openapi::params::ProjectPath;
use crate::openapi::schemas::Project;

/// The caller's projects with their role in each: every project for an administrator, their
/// memberships for anyone else, and only its project for a token narrowed to one.
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    operation_id = "list_projects",
    tag = "projects",
    params(ListQuery),
    responses((status = 200, description = "a page of the caller's projects", body = Page<Project>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    let limit = page_limit(q.limit)?;
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewProject)]
pub struct NewProjectBody {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: String,
    description: Option<String>,
    /// Tasks of the project that may run at once: 0 (unlimited, the default) to 100000.
    #[schema(minimum = 0, maximum = 100_000)]
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

/// A new project (administrators), whose first owner is its creator.
#[utoipa::path(
    post,
    path = "/api/v1/projects",
    operation_id = "create_project",
    tag = "projects",
    request_body = NewProjectBody,
    responses(
        (status = 201, description = "the new project", body = Project),
        (status = 409, description = "a project of this name exists", body = ErrorBody),
    )
)]
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

/// A project, with the caller's role in it.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}",
    operation_id = "get_project",
    tag = "projects",
    params(ProjectPath),
    responses((status = 200, description = "the project", body = Project))
)]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiPath(pid): ApiPath<i64>) -> Result<Json<Value>> {
    let a = access::project(&state, &caller, pid, Permission::Read).await?;
    Ok(Json(with_role(&a.project, a.role)))
}

/// The fields to change; the others stay.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: Option<String>,
    description: Option<String>,
    /// 0 (unlimited) to 100000.
    #[schema(minimum = 0, maximum = 100_000)]
    max_parallel: Option<i32>,
}

/// Changes a project (owners).
#[utoipa::path(
    patch,
    path = "/api/v1/projects/{pid}",
    operation_id = "update_project",
    tag = "projects",
    params(ProjectPath),
    request_body = ProjectPatch,
    responses(
        (status = 200, description = "the changed project", body = Project),
        (status = 409, description = "a project of this name exists", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(body): ApiJson<ProjectPatch>,
) -> Result<Json<Value>> {
    let role = access::project(&state, &caller, pid, Permission::Own).await?.role;
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
    let updated = state.tables.update_project(pid, changes).await;
    // After the write: a task started from now on has the project's new limit.
    crate::templates_seen::changed(&state).await;
    // With the caller's role, as every other answer about a project.
    Ok(Json(with_role(&updated?, role)))
}

/// Deletes a project with its templates, tasks and logs; refused while tasks are unfinished.
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{pid}",
    operation_id = "delete_project",
    tag = "projects",
    params(ProjectPath),
    responses(
        (status = 204, description = "deleted"),
        (status = 409, description = "the project has unfinished tasks", body = ErrorBody),
    )
)]
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
    let deleted = state.tables.delete_project(pid).await;
    crate::templates_seen::changed(&state).await;
    deleted?;
    crate::events::rights_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
