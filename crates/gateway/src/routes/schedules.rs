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
use crate::{AppState, model};

/// The body of POST and PATCH; on PATCH absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    template_id: Option<i64>,
    cron: Option<String>,
    timezone: Option<String>,
    run_at: Option<DateTime<Utc>>,
    enabled: Option<bool>,
    catch_up: Option<String>,
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

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = page_limit(q.limit);
    let rows = state.tables.schedules(pid, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(rows, limit, |s| s.id, |s| render(&s))))
}

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

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    Ok(Json(render(&state.tables.schedule(pid, sid).await?)))
}

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

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
) -> Result<StatusCode> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    state.schedules.clone().delete_schedule(DeleteScheduleRequest { project_id: pid, schedule_id: sid }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextQuery {
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    cron: Option<String>,
    timezone: Option<String>,
    count: Option<u32>,
}

/// The next due times of a cron expression that is not saved (a schedule form being filled in),
/// read by the scheduler exactly as a saved schedule's: its errors are the ones creating the
/// schedule would give.
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
pub async fn fires(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, sid)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    state.tables.schedule(pid, sid).await?;
    // `before` is a due time in Unix milliseconds: the cursor `next` hands out.
    let limit = page_limit(q.limit);
    let rows = state.tables.schedule_fires(sid, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(
        rows,
        limit,
        |f| f.due_at,
        |f| json!({"due_at": model::time(f.due_at), "status": f.status, "task_id": f.task_id, "reason": f.reason}),
    )))
}
