//! Reading the audit log: everything for administrators, one project's entries for its owners.

use axum::Json;
use axum::extract::State;
use baton_store::entity::audit_entry;
use baton_store::gateway::audit::AuditFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::page_limit;
use crate::AppState;
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::Result;
use crate::extract::{ApiPath, ApiQuery};
use crate::model::{self, Page};
use crate::openapi::params::ProjectPath;
use crate::openapi::schemas::AuditEntry;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Query {
    /// Only entries about this project (ignored on a project's own audit log).
    project_id: Option<i64>,
    /// Only entries of this user.
    user_id: Option<i64>,
    /// Only entries of this action, e.g. `POST /api/v1/projects/{pid}/tasks`.
    action: Option<String>,
    /// Items per page: 50 unless given.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    before: Option<i64>,
}

fn render(e: &audit_entry::Model) -> Value {
    json!({
        "id": e.id, "time": model::time(e.time), "user_id": e.user_id, "username": e.username,
        "token_id": e.token_id, "client_ip": e.client_ip, "node": e.node, "action": e.action,
        "target": e.target, "detail": e.detail, "project_id": e.project_id, "status": e.status,
    })
}

async fn page(state: &AppState, q: Query, project_id: Option<i64>) -> Result<Json<Page<Value>>> {
    let limit = page_limit(q.limit)?;
    let filter = AuditFilter { project_id, user_id: q.user_id, action: q.action, before: q.before };
    let rows = state.tables.audit(filter, limit as u64 + 1).await?;
    Ok(Json(Page::of(rows, limit, |e| e.id, |e| render(&e))))
}

/// `GET /audit` (administrators).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "admin",
    params(Query),
    responses((status = 200, description = "a page of the audit log, newest first", body = Page<AuditEntry>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Page<Value>>> {
    caller.require_admin()?;
    let project_id = q.project_id;
    page(&state, q, project_id).await
}

/// `GET /projects/{pid}/audit` (the project's owners).
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/audit",
    operation_id = "list_project_audit",
    tag = "projects",
    params(ProjectPath, Query),
    responses((status = 200, description = "a page of the project's audit log, newest first", body = Page<AuditEntry>))
)]
pub async fn project(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Own).await?;
    page(&state, q, Some(pid)).await
}
