//! Schedules of a project (API.md): cron (`{template_id, cron, timezone?, enabled?}`) or one-shot
//! (`{template_id, run_at}`), plus `catch_up` and `overlap`. Reads come from SQL; changes and
//! previews (of saved schedules and of unsaved expressions) go to the scheduler, which owns
//! schedules and validates expressions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_proto::v1::{
    CreateScheduleRequest, DeleteScheduleRequest, PreviewCronRequest, PreviewScheduleRequest, ScheduleFields,
    UpdateScheduleRequest,
};
use baton_store::entity::schedule;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Page;
use crate::openapi::params::{ProjectPath, SchedulePath};
use crate::openapi::schemas::{Fire, Schedule, Times};
use crate::{AppState, model};

/// The body of POST (`template_id` required, and `cron` or `run_at`) and PATCH (absent fields
/// stay as they are).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ScheduleFields)]
pub struct Body {
    /// A template of the project; required on POST.
    template_id: Option<i64>,
    /// 5 fields (minutes first) or 6 (seconds first).
    cron: Option<String>,
    /// An IANA time zone for `cron`; UTC unless given.
    timezone: Option<String>,
    /// When a one-shot schedule fires (instead of `cron`).
    #[schema(value_type = Option<String>, format = DateTime)]
    run_at: Option<DateTime<Utc>>,
    enabled: Option<bool>,
    /// `latest` (the default) or `none`: what happens to due times missed while no node ran.
    catch_up: Option<String>,
    /// `allow` (the default) or `skip`: whether a due time starts a task while the previous one runs.
    overlap: Option<String>,
}

impl Body {
    async fn fields(self, state: &AppState, pid: i64) -> Result<ScheduleFields> {
        if let Some(tid) = self.template_id {
            state
                .tables
                .template(pid, tid)
                .await
                .map_err(|_| Error::field("template_id", format!("no template {tid} in project {pid}")))?;
        }
        Ok(ScheduleFields {
            template_id: self.template_id,
            cron: self.cron,
            timezone: self.timezone,
            run_at_ms: self.run_at.map(|t| t.timestamp_millis()),
            enabled: self.enabled,
            catch_up: self.catch_up,
            overlap: self.overlap,
        })
    }
}

fn render(s: &schedule::Model) -> Value {
    json!({
        "id": s.id, "project_id": s.project_id, "template_id": s.template_id, "cron": s.cron,
        "timezone": s.timezone, "run_at": s.run_at.map(model::time), "enabled": s.enabled,
        "catch_up": s.catch_up, "overlap": s.overlap, "created_by": s.created_by,
        "created_at": model::time(s.created_at), "updated_at": model::time(s.updated_at),
    })
}

/// A project's schedules.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/schedules",
    operation_id = "list_schedules",
    tag = "schedules",
    params(ProjectPath, ListQuery),
    responses((status = 200, description = "a page of the project's schedules", body = Page<Schedule>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = page_limit(q.limit)?;
    let rows = state.tables.schedules(pid, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(rows, limit, |s| s.id, |s| render(&s))))
}

/// A new schedule (managers).
#[utoipa::path(
    post,
    path = "/api/v1/projects/{pid}/schedules",
    operation_id = "create_schedule",
    tag = "schedules",
    params(ProjectPath),
    request_body = Body,
    responses((status = 201, description = "the new schedule", body = Schedule))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(body): ApiJson<Body>,
) -> Result<(StatusCode, Json<Value>)> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    if body.template_id.is_none() {
        return Err(Error::field("template_id", "is required"));
    }
    let fields = body.fields(&state, pid).await?;
    let req = CreateScheduleRequest { project_id: pid, fields: Some(fields), created_by: Some(caller.id) };
    let id = state.schedules.clone().create_schedule(req).await?.into_inner().schedule_id;
    Ok((StatusCode::CREATED, Json(render(&state.tables.schedule(pid, id).await?))))
}

/// A schedule.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/schedules/{sid}",
    operation_id = "get_schedule",
    tag = "schedules",
    params(SchedulePath),
    responses((status = 200, description = "the schedule", body = Schedule))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    Ok(Json(render(&state.tables.schedule(pid, sid).await?)))
}

/// Changes a schedule (managers); every node follows within a second.
#[utoipa::path(
    patch,
    path = "/api/v1/projects/{pid}/schedules/{sid}",
    operation_id = "update_schedule",
    tag = "schedules",
    params(SchedulePath),
    request_body = Body,
    responses((status = 200, description = "the changed schedule", body = Schedule))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<Body>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    let fields = body.fields(&state, pid).await?;
    let req = UpdateScheduleRequest { project_id: pid, schedule_id: sid, fields: Some(fields) };
    state.schedules.clone().update_schedule(req).await?;
    Ok(Json(render(&state.tables.schedule(pid, sid).await?)))
}

/// Deletes a schedule (managers).
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{pid}/schedules/{sid}",
    operation_id = "delete_schedule",
    tag = "schedules",
    params(SchedulePath),
    responses((status = 204, description = "deleted"))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
) -> Result<StatusCode> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    state.schedules.clone().delete_schedule(DeleteScheduleRequest { project_id: pid, schedule_id: sid }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// How many: 5 unless given, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    count: Option<u32>,
}

/// `?count=` of a preview: 5 unless given, 1 to 100.
fn preview_count(count: Option<u32>) -> Result<u32> {
    let count = count.unwrap_or(5);
    if !(1..=100).contains(&count) {
        return Err(Error::field("count", "must be between 1 and 100"));
    }
    Ok(count)
}

fn times_json(times_ms: Vec<i64>) -> Json<Value> {
    Json(json!({"times": times_ms.into_iter().map(model::time).collect::<Vec<_>>()}))
}

/// The next due times of a schedule.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/schedules/{sid}/next",
    operation_id = "next_times",
    tag = "schedules",
    params(SchedulePath, NextQuery),
    responses((status = 200, description = "the next due times", body = Times))
)]
pub async fn next(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<NextQuery>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let count = preview_count(q.count)?;
    let req = PreviewScheduleRequest { project_id: pid, schedule_id: sid, count };
    Ok(times_json(state.schedules.clone().preview_schedule(req).await?.into_inner().times_ms))
}

/// `?cron=&timezone=&count=` of a preview of an unsaved expression. `cron` is required, but by
/// the handler after the permission check: a caller who cannot see the project gets its 404
/// rather than a complaint about the query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// A cron expression of 5 or 6 fields.
    #[param(required = true, value_type = String)]
    cron: Option<String>,
    /// An IANA time zone; UTC unless given.
    timezone: Option<String>,
    /// How many: 5 unless given, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    count: Option<u32>,
}

/// The next due times of a cron expression that is not saved (a schedule form being filled in),
/// read by the scheduler exactly as a saved schedule's: its errors are the ones creating the
/// schedule would give.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/schedules/preview",
    operation_id = "preview_cron",
    tag = "schedules",
    params(ProjectPath, PreviewQuery),
    responses((status = 200, description = "the next due times of the expression", body = Times))
)]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let Some(cron) = q.cron else {
        return Err(Error::field("cron", "is required: a cron expression of 5 or 6 fields"));
    };
    let count = preview_count(q.count)?;
    let req = PreviewCronRequest { cron, timezone: q.timezone.unwrap_or_default(), count };
    Ok(times_json(state.schedules.clone().preview_cron(req).await?.into_inner().times_ms))
}

/// The latest fires of a schedule, newest first: when each due time fired, with its task, or why
/// it was skipped.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/schedules/{sid}/fires",
    operation_id = "list_fires",
    tag = "schedules",
    params(SchedulePath, ListQuery),
    responses((status = 200, description = "a page of the schedule's fires; the cursor is a due time in Unix milliseconds",
        body = Page<Fire>))
)]
pub async fn fires(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    state.tables.schedule(pid, sid).await?;
    // `before` is a due time in Unix milliseconds: the cursor `next` hands out.
    let limit = page_limit(q.limit)?;
    let rows = state.tables.schedule_fires(sid, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(
        rows,
        limit,
        |f| f.due_at,
        |f| json!({"due_at": model::time(f.due_at), "status": f.status, "task_id": f.task_id, "reason": f.reason}),
    )))
}
