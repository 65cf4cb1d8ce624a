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
}
