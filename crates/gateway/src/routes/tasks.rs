//! Tasks: created and cancelled through the dispatcher, read from SQL.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::TaskStatus;
use baton_core::names::valid_env_name;
use baton_proto::v1::{self as pb, CancelTaskRequest, SubmitTaskRequest};
use baton_store::gateway::templates::TemplateFields;
use baton_store::views::TaskFilter;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::page_limit;
use super::queue_reason::Runners;
use crate::AppState;
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{self, Page};
use crate::openapi::params::{ProjectPath, TaskPath};
use crate::openapi::schemas::{Attempt, LogPage, Task};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// A template of the project.
    template_id: i64,
    /// Variables added to (or replacing) the template's; not `BATON_…`.
    env: Option<BTreeMap<String, String>>,
    /// The template's unless given.
    #[schema(minimum = -1000, maximum = 1000)]
    priority: Option<i32>,
}

/// Runs a template: a new queued task (runners).
#[utoipa::path(
    post,
    path = "/api/v1/projects/{pid}/tasks",
    operation_id = "create_task",
    tag = "tasks",
    params(ProjectPath),
    request_body = NewTask,
    responses((status = 201, description = "the new task", body = Task))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(body): ApiJson<NewTask>,
) -> Result<Response> {
    access::role(&state, &caller, pid, Permission::Run).await?;
    let (template, project) = template_with_project(&state, pid, body.template_id).await?;
    let f = TemplateFields::of(&template)?;
    let mut env = f.env;
    for (k, v) in body.env.unwrap_or_default() {
        if !valid_env_name(&k) || k.starts_with("BATON_") {
            return Err(Error::field(&format!("env.{k}"), "is not a valid variable name (BATON_ names are reserved)"));
        }
        env.insert(k, v);
    }
    // A secret the template names must exist now; its value is read only at assignment.
    if !f.secrets.is_empty() {
        let defined: Vec<String> = state.tables.project_secrets(pid).await?.into_iter().map(|s| s.name).collect();
        if let Some(missing) = f.secrets.iter().find(|n| !defined.contains(n)) {
            return Err(Error::field(
                "template_id",
                format!("its template uses secret {missing:?}, which project {pid} does not define"),
            ));
        }
    }
    let priority = body.priority.unwrap_or(f.priority);
    if !(-1000..=1000).contains(&priority) {
        return Err(Error::field("priority", "must be between -1000 and 1000"));
    }
    let spec = pb::TaskSpec {
        project_id: pid,
        template_id: template.id,
        script: f.script,
        shell: f.shell,
        env: env.into_iter().collect(),
        labels: f.labels,
        timeout_seconds: f.timeout_seconds.max(0) as u32,
        max_attempts: f.max_attempts.max(1) as u32,
        priority,
        template_max_parallel: f.max_parallel.max(0) as u32,
        project_max_parallel: project.max_parallel.max(0) as u32,
        schedule_id: None,
        created_by: Some(caller.id),
        secrets: f.secrets,
    };
    let created =
        state.tasks.clone().submit_task(SubmitTaskRequest { spec: Some(spec), fire: None }).await?.into_inner();
    // The dispatcher hands back the row it stored; read it only from an older dispatcher.
    let task = match serde_json::from_slice::<baton_store::entity::task::Model>(&created.row) {
        Ok(t) if t.id == created.task_id && t.project_id == pid => t,
        _ => state.tables.project_task(pid, created.task_id).await?,
    };
    state.task_projects.note(task.id, pid);
    // Written from the row here (no `Value` tree): the answer every start of a task waits for.
    Ok((StatusCode::CREATED, Json(model::TaskJson::of(&task, None))).into_response())
}

/// The template a task starts from and its project, remembered while their coordination version
/// holds (`templates_seen.rs`); 404 without the project, 400 naming `template_id` without the
/// template.
async fn template_with_project(state: &AppState, pid: i64, tid: i64) -> Result<crate::templates_seen::Found> {
    let (read, seen) = state.templates_seen.start(&state.coord, pid, tid).await;
    if let Some(found) = seen {
        return Ok(found);
    }
    // The template and its project in one read; which one is missing only when one is.
    let Some(found) = state.tables.template_with_project(pid, tid).await? else {
        state.tables.project(pid).await?;
        return Err(Error::field("template_id", format!("no template {tid} in project {pid}")));
    };
    state.templates_seen.keep(found.clone(), read);
    Ok(found)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tasks in this status (`queued`, `assigned`, `running`, `succeeded`, `failed`,
    /// `cancelled`, `timed_out`, `lost`).
    status: Option<String>,
    /// Only tasks of this template.
    template_id: Option<i64>,
    /// Items per page: 50 unless given.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    before: Option<i64>,
}

/// A project's tasks, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    params(ProjectPath, ListQuery),
    responses((status = 200, description = "a page of the project's tasks", body = Page<Task>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            let all: Vec<_> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
            Error::field("status", format!("{s:?} is not a task status; use one of {}", all.join(", ")))
        })?),
        None => None,
    };
    let limit = page_limit(q.limit)?;
    let filter = TaskFilter { status, template_id: q.template_id, before: q.before, limit: limit as u64 + 1 };
    let rows = state.tables.project_tasks(pid, &filter).await?;
    let runners = runners_view(&state, rows.iter().any(|t| t.status == "queued")).await?;
    Ok(Json(Page::of(rows, limit, |t| t.id, |t| render(&runners, &t))))
}

/// A task, with the reason it waits if it is queued.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/tasks/{id}",
    operation_id = "get_task",
    tag = "tasks",
    params(TaskPath),
    responses((status = 200, description = "the task", body = Task))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, id)): ApiPath<(i64, i64)>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let t = state.tables.project_task(pid, id).await?;
    let runners = runners_view(&state, t.status == "queued").await?;
    Ok(Json(render(&runners, &t)))
}

/// `?limit=&before=` of the attempts list; `before` is an attempt number.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// Items per page: 50 unless given.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next` of the previous page: an attempt number.
    before: Option<i32>,
}

/// The ended attempts of a task, newest first (the current attempt, if the task has not ended,
/// is the task itself). The cursor is an attempt number.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/tasks/{id}/attempts",
    operation_id = "list_attempts",
    tag = "tasks",
    params(TaskPath, AttemptsQuery),
    responses((status = 200, description = "a page of the task's ended attempts", body = Page<Attempt>))
)]
pub async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, id)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    // The task must be the project's: another project's is "not found", exactly like GET.
    state.tables.project_task(pid, id).await?;
    let limit = page_limit(q.limit)?;
    let rows = state.tables.task_attempts(id, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(rows, limit, |a| i64::from(a.attempt.attempt), |a| model::attempt(&a))))
}

/// The runners, read only when a queued task needs a reason.
async fn runners_view(state: &AppState, needed: bool) -> Result<Runners> {
    let rows = if needed { state.tables.runners().await? } else { Vec::new() };
    Ok(Runners::new(&rows, state.opts.runner_lease.as_millis() as i64))
}

fn render(runners: &Runners, t: &baton_store::entity::task::Model) -> Value {
    serde_json::to_value(model::TaskJson::of(t, Some(runners.reason(t)))).unwrap_or_default()
}

/// Tasks exactly as `GET` shows them, as JSON text, with the reason each queued one waits given
/// `runners` (for live events: their follower says how fresh the runners are).
pub fn tasks_json(
    state: &AppState,
    ts: &[baton_store::entity::task::Model],
    runners: &[baton_store::entity::runner::Model],
) -> Vec<Box<RawValue>> {
    let runners = Runners::new(runners, state.opts.runner_lease.as_millis() as i64);
    // Strings and numbers only: writing them cannot fail.
    let raw = |t| serde_json::value::to_raw_value(&model::TaskJson::of(t, Some(runners.reason(t))));
    ts.iter().map(|t| raw(t).unwrap_or_else(|_| RawValue::NULL.to_owned())).collect()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Lines after this sequence number (0 unless given).
    after: Option<i64>,
    /// Lines per page: 1000 unless given.
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<u32>,
}

/// Log lines after `after`; `complete` once the task has ended and no line follows.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/tasks/{id}/log",
    operation_id = "get_log",
    tag = "tasks",
    params(TaskPath, LogQuery),
    responses((status = 200, description = "a page of the task's log", body = LogPage))
)]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, id)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = match q.limit.unwrap_or(1000) {
        n @ 1..=10_000 => n as usize,
        _ => return Err(Error::field("limit", "must be between 1 and 10000")),
    };
    // Read the status before the lines: a task seen final has all its lines stored already.
    let task = state.tables.project_task(pid, id).await?;
    let finished = TaskStatus::parse(&task.status).is_some_and(TaskStatus::is_final);
    let after = q.after.unwrap_or(0).max(0);
    let page = state.tables.log_page(id, after, limit).await?;
    let next_after = page.lines.last().map_or(after, |l| l.seq);
    Ok(Json(json!({
        "items": page.lines.iter().map(model::log_line).collect::<Vec<_>>(),
        "next_after": next_after,
        "complete": finished && !page.more,
    })))
}

/// Lines per read of `log/raw`: one page is all it holds in memory at a time.
const RAW_PAGE: usize = 1000;

/// The whole log as plain text.
///
/// One line per line, streamed page by page from SQL so that a log of any size costs one page of
/// memory. The first page is read before answering, so a failure
/// there is still an error response; a failure later aborts the body (the client sees a broken
/// transfer, never a log that silently ends early).
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/tasks/{id}/log/raw",
    operation_id = "get_raw_log",
    tag = "tasks",
    params(TaskPath),
    responses((status = 200, description = "the whole log so far, one line per line, streamed",
        body = String, content_type = "text/plain"))
)]
pub async fn raw_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, id)): ApiPath<(i64, i64)>,
) -> Result<Response> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    state.tables.project_task(pid, id).await?;
    let first = state.tables.log_page(id, 0, RAW_PAGE).await?;
    let tables = state.tables.clone();
    let pages = futures::stream::unfold(RawPages::Ready(first), move |at| {
        let tables = tables.clone();
        async move {
            let page = match at {
                RawPages::Ready(page) => page,
                RawPages::After(after) => match tables.log_page(id, after, RAW_PAGE).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(task_id = id, error = %e, "log/raw: reading the next page failed");
                        return Some((Err(std::io::Error::other("reading the log failed")), RawPages::Done));
                    }
                },
                RawPages::Done => return None,
            };
            let mut text = String::with_capacity(page.lines.iter().map(|l| l.text.len() + 1).sum());
            for l in &page.lines {
                text.push_str(&l.text);
                text.push('\n');
            }
            let next = match page.lines.last() {
                Some(l) if page.more => RawPages::After(l.seq),
                _ => RawPages::Done,
            };
            Some((Ok(bytes::Bytes::from(text)), next))
        }
    });
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], axum::body::Body::from_stream(pages)).into_response())
}

/// Where `log/raw` stands.
enum RawPages {
    /// A page read and not sent yet.
    Ready(baton_store::views::LogPage),
    /// The next page starts after this sequence number.
    After(i64),
    Done,
}

/// Cancels a task (runners): a queued one at once, a running one once its runner has stopped it.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{pid}/tasks/{id}/cancel",
    operation_id = "cancel_task",
    tag = "tasks",
    params(TaskPath),
    responses(
        (status = 202, description = "cancelling: the task as it is now", body = Task),
        (status = 409, description = "the task has already finished", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, id)): ApiPath<(i64, i64)>,
) -> Result<(StatusCode, Json<Value>)> {
    access::project(&state, &caller, pid, Permission::Run).await?;
    state.tables.project_task(pid, id).await?;
    state.tasks.clone().cancel_task(CancelTaskRequest { task_id: id }).await?;
    let task = state.tables.project_task(pid, id).await?;
    Ok((StatusCode::ACCEPTED, Json(model::task(&task))))
}
