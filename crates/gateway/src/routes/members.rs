//! A project's members and their roles. Every member reads the list; owners add, change and
//! remove members, and a project always keeps at least one owner (409 otherwise).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton_store::gateway::members::Member;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::AppState;
use crate::access::{self, Permission, Role};
use crate::audit::Note;
use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Page;
use crate::openapi::params::{MemberPath, ProjectPath};
use crate::openapi::schemas;

fn render(m: &Member) -> Value {
    json!({"user_id": m.user_id, "username": m.username, "role": m.role})
}

/// A project's members and their roles.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/members",
    operation_id = "list_members",
    tag = "projects",
    params(ProjectPath, ListQuery),
    responses((status = 200, description = "a page of the project's members", body = Page<schemas::Member>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = page_limit(q.limit)?;
    let rows = state.tables.members(pid, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(rows, limit, |m| m.user_id, |m| render(&m))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Membership)]
pub struct Body {
    #[schema(value_type = crate::openapi::schemas::Role)]
    role: String,
}

/// Adds the user to the project, or changes their role (owners).
#[utoipa::path(
    put,
    path = "/api/v1/projects/{pid}/members/{uid}",
    operation_id = "set_member",
    tag = "projects",
    params(MemberPath),
    request_body = Body,
    responses(
        (status = 200, description = "the member with their role", body = schemas::Member),
        (status = 409, description = "the project would be left without an owner", body = ErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, uid)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<Body>,
) -> Result<Response> {
    access::project(&state, &caller, pid, Permission::Own).await?;
    let role =
        Role::parse(&body.role).ok_or_else(|| Error::field("role", "must be owner, manager, runner or viewer"))?;
    // A user that does not exist is the path's mistake, like any other missing thing.
    state.tables.user(uid).await?;
    let m = state.tables.set_member(pid, uid, role.as_str()).await?;
    crate::events::rights_changed(&state).await;
    let note = Note::detail(format!("user {uid} ({}) is {role}", m.username));
    Ok((axum::Extension(note), Json(render(&m))).into_response())
}

/// Removes a member from the project (owners).
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{pid}/members/{uid}",
    operation_id = "remove_member",
    tag = "projects",
    params(MemberPath),
    responses(
        (status = 204, description = "removed"),
        (status = 409, description = "the project would be left without an owner", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, uid)): ApiPath<(i64, i64)>,
) -> Result<Response> {
    access::project(&state, &caller, pid, Permission::Own).await?;
    state.tables.remove_member(pid, uid).await?;
    crate::events::rights_changed(&state).await;
    Ok((StatusCode::NO_CONTENT, axum::Extension(Note::detail(format!("user {uid} removed")))).into_response())
}
