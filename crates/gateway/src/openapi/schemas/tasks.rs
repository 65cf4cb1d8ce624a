//! Tasks, their attempts and their logs.

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A run of a template.
#[derive(ToSchema)]
pub struct Task {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    pub status: TaskStatus,
    /// The current attempt, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Grows with every assignment to a runner.
    pub epoch: i64,
    /// Grows by one with every change of the task; clients keep the highest they have seen.
    pub version: i64,
    pub priority: i32,
    pub runner_id: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The schedule that created it, if one did.
    pub schedule_id: Option<i64>,
    /// The user who created it, if one did.
    pub created_by: Option<i64>,
    pub cancel_requested: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub assigned_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Why a queued task waits, when it is not simply for a free slot (present when tasks are
    /// read: `GET`, lists and live events).
    pub queue_reason: Option<String>,
}

/// Where a task is in its life: the states of `baton_core::TaskStatus`, listed from it, so that
/// a state added there is documented at once.
pub struct TaskStatus;

impl utoipa::PartialSchema for TaskStatus {
    fn schema() -> RefOr<Schema> {
        let states = baton_core::TaskStatus::ALL.map(baton_core::TaskStatus::as_str);
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(states))
            .description(Some("Where a task is in its life."))
            .into()
    }
}

impl ToSchema for TaskStatus {}

/// An ended attempt of a task.
#[derive(ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub epoch: i64,
    pub runner_id: Option<i64>,
    /// `null` once the runner is gone.
    pub runner_name: Option<String>,
    /// The node the runner was connected to (unknown for attempts of older versions).
    pub node_id: Option<String>,
    pub status: TaskStatus,
    pub exit_code: Option<i32>,
    /// Why it ended, for attempts that did not end by themselves.
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: String,
}

/// One line of a task's log.
#[derive(ToSchema)]
pub struct LogLine {
    /// The line's sequence number in the task's log, from 1.
    pub seq: i64,
    #[schema(format = DateTime)]
    pub time: String,
    pub stream: LogStream,
    pub text: String,
}

/// Which output of the script a line came from.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// A page of a task's log.
#[derive(ToSchema)]
pub struct LogPage {
    pub items: Vec<LogLine>,
    /// The `after` of the next page.
    pub next_after: i64,
    /// The task has ended and no line follows.
    pub complete: bool,
}

/// One event of a task's log stream (`GET …/log/stream`), as an event-stream parser reads it.
/// The stream's schema describes each event, as OpenAPI 3.2's `itemSchema` would.
#[derive(ToSchema)]
pub struct LogEvent {
    pub event: LogEventKind,
    /// A line, as `LogLine` in JSON; `{}` for `end`.
    pub data: String,
    /// The line's `seq`, which `Last-Event-ID` resumes after; absent on `end`.
    pub id: Option<String>,
}

/// `message`: a line; `end`: the task has finished and every line was sent.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum LogEventKind {
    Message,
    End,
}
