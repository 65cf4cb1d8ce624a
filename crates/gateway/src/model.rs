//! The JSON shapes of API.md, built from store rows. Times are RFC 3339 UTC strings.

use baton_store::LogLine;
use baton_store::entity::{api_token, project, task, template, user};
use baton_store::gateway::templates::TemplateFields;
use baton_store::views::AttemptView;
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use serde_json::{Value, json};

/// RFC 3339 in UTC with milliseconds.
pub fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn opt_time(ms: Option<i64>) -> Option<String> {
    ms.map(time)
}

/// A page of a list: `{"items": [...], "next": <cursor or null>}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `before` of the next page; `null` on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// `rows` was fetched with one extra row to tell whether another page follows.
    pub fn of<R>(mut rows: Vec<R>, limit: usize, id: impl Fn(&R) -> i64, f: impl Fn(R) -> T) -> Page<T> {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(|r| id(r).to_string()) } else { None };
        Page { items: rows.into_iter().map(f).collect(), next }
    }
}

pub fn user(u: &user::Model) -> Value {
    json!({"id": u.id, "username": u.username, "admin": u.admin, "created_at": time(u.created_at)})
}

pub fn token(t: &api_token::Model) -> Value {
    json!({
        "id": t.id, "name": t.name, "created_at": time(t.created_at), "expires_at": opt_time(t.expires_at),
        "project_id": t.project_id, "role": t.role,
    })
}

pub fn project(p: &project::Model) -> Value {
    json!({
        "id": p.id, "name": p.name, "description": p.description, "max_parallel": p.max_parallel,
        "created_at": time(p.created_at), "updated_at": time(p.updated_at),
    })
}

pub fn template(t: &template::Model, f: &TemplateFields) -> Value {
    json!({
        "id": t.id, "project_id": t.project_id, "name": f.name, "script": f.script, "shell": f.shell,
        "env": f.env, "secrets": f.secrets, "labels": f.labels,
        "timeout_seconds": (f.timeout_seconds > 0).then_some(f.timeout_seconds),
        "max_attempts": f.max_attempts, "max_parallel": f.max_parallel, "priority": f.priority,
        "created_at": time(t.created_at), "updated_at": time(t.updated_at),
    })
}

pub fn task(t: &task::Model) -> Value {
    serde_json::to_value(TaskJson::of(t, None)).unwrap_or_default()
}

/// A task as the API shows it, serialized straight from its row: a busy project's followers render
/// every change of every task, and a `Value` tree in between cost more than the writing. Fields in
/// alphabetical order, as a `Value` object writes them.
#[derive(Serialize)]
pub struct TaskJson<'a> {
    assigned_at: Option<Time>,
    attempt: i32,
    cancel_requested: bool,
    created_at: Time,
    created_by: Option<i64>,
    epoch: i64,
    error: Option<&'a str>,
    exit_code: Option<i32>,
    finished_at: Option<Time>,
    id: i64,
    max_attempts: i32,
    priority: i32,
    project_id: i64,
    /// Why a queued task waits (`null` when it does not); absent where the API does not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_reason: Option<Option<String>>,
    runner_id: Option<i64>,
    schedule_id: Option<i64>,
    started_at: Option<Time>,
    status: &'a str,
    template_id: i64,
    updated_at: Time,
    version: i64,
}

impl TaskJson<'_> {
    /// `reason`: `Some` where the answer tells why a queued task waits (`Some(None)`: it does not).
    pub fn of(t: &task::Model, reason: Option<Option<String>>) -> TaskJson<'_> {
        TaskJson {
            assigned_at: t.assigned_at.map(Time),
            attempt: t.attempt,
            cancel_requested: t.cancel_requested,
            created_at: Time(t.created_at),
            created_by: t.created_by,
            epoch: t.epoch,
            error: t.error.as_deref(),
            exit_code: t.exit_code,
            finished_at: t.finished_at.map(Time),
            id: t.id,
            max_attempts: t.max_attempts,
            priority: t.priority,
            project_id: t.project_id,
            queue_reason: reason,
            runner_id: t.runner_id,
            schedule_id: t.schedule_id,
            started_at: t.started_at.map(Time),
            status: &t.status,
            template_id: t.template_id,
            updated_at: Time(t.updated_at),
            version: t.version,
        }
    }
}

/// A time column (Unix ms), written as [`time`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct Time(pub i64);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&time(self.0))
    }
}

/// An ended attempt of a task, as `GET …/tasks/{id}/attempts` lists it.
pub fn attempt(a: &AttemptView) -> Value {
    let (r, name) = (&a.attempt, &a.runner_name);
    json!({
        "attempt": r.attempt, "epoch": r.epoch, "runner_id": r.runner_id, "runner_name": name,
        "node_id": r.node_id, "status": r.status, "exit_code": r.exit_code, "error": r.error,
        "started_at": opt_time(r.started_at), "finished_at": time(r.finished_at),
    })
}

pub fn log_line(l: &LogLine) -> Value {
    json!({"seq": l.seq, "time": time(l.time_ms), "stream": l.stream.as_str(), "text": l.text})
}

/// A queued task with every optional field empty, for tests to change what they look at.
#[cfg(test)]
pub(crate) fn queued_task() -> task::Model {
    task::Model {
        id: 1,
        project_id: 1,
        template_id: 1,
        status: "queued".into(),
        attempt: 1,
        max_attempts: 1,
        epoch: 0,
        priority: 0,
        runner_id: None,
        exit_code: None,
        error: None,
        schedule_id: None,
        created_by: None,
        cancel_requested: false,
        spec: "{}".into(),
        template_max_parallel: 0,
        project_max_parallel: 0,
        created_at: 0,
        assigned_at: None,
        started_at: None,
        finished_at: None,
        version: 1,
        updated_at: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn pages_carry_a_cursor_only_when_more_follow() {
        let p = Page::of(vec![5, 4, 3], 2, |r| *r, |r| r);
        assert_eq!((p.items, p.next), (vec![5, 4], Some("4".to_string())));
        let p = Page::of(vec![5, 4], 2, |r| *r, |r| r);
        assert_eq!((p.items, p.next), (vec![5, 4], None));
    }

    /// The shape API.md gives a task, built as a `Value` (whose keys serialize in order).
    fn task_as_value(t: &task::Model) -> Value {
        json!({
            "id": t.id, "project_id": t.project_id, "template_id": t.template_id, "status": t.status,
            "attempt": t.attempt, "max_attempts": t.max_attempts, "epoch": t.epoch, "priority": t.priority,
            "runner_id": t.runner_id, "exit_code": t.exit_code, "error": t.error, "schedule_id": t.schedule_id,
            "created_by": t.created_by, "cancel_requested": t.cancel_requested, "version": t.version,
            "created_at": time(t.created_at), "assigned_at": opt_time(t.assigned_at),
            "started_at": opt_time(t.started_at), "finished_at": opt_time(t.finished_at),
            "updated_at": time(t.updated_at),
        })
    }

    #[test]
    fn a_task_is_written_exactly_as_its_value_would_be() {
        let queued = task::Model { id: 7, priority: -5, created_at: 1_700_000_000_123, ..queued_task() };
        let ended = task::Model {
            status: "failed".into(),
            attempt: 2,
            max_attempts: 3,
            epoch: 4,
            runner_id: Some(9),
            exit_code: Some(1),
            error: Some("exit \"1\"\n".into()),
            schedule_id: Some(11),
            created_by: Some(1),
            cancel_requested: true,
            assigned_at: Some(1_700_000_000_200),
            started_at: Some(1_700_000_000_300),
            finished_at: Some(1_700_000_001_000),
            version: 6,
            updated_at: 1_700_000_001_000,
            ..queued.clone()
        };
        for t in [&ended, &queued] {
            let text = |reason| serde_json::to_string(&TaskJson::of(t, reason)).unwrap();
            assert_eq!(text(None), task_as_value(t).to_string(), "the same text, key for key");
            assert_eq!(task(t), task_as_value(t));
            let mut with_reason = task_as_value(t);
            with_reason["queue_reason"] = Value::Null;
            assert_eq!(text(Some(None)), with_reason.to_string());
            with_reason["queue_reason"] = json!("no runner");
            assert_eq!(text(Some(Some("no runner".into()))), with_reason.to_string());
        }
    }
}
