//! Topic names, in one place so publishers and subscribers agree.

/// A schedule was created, changed or deleted: every scheduler re-reads them.
pub const SCHEDULES: &str = "schedules";

/// Drain requests for nodes: payload `drain <true|false> <node id>`.
pub const NODES: &str = "nodes";

/// Cancellation requests: payload is the task id in decimal.
pub const CANCEL: &str = "cancel";

/// A runner was paused, resumed or revoked: payload `<id> paused <bool>` or `<id> revoked`.
pub const RUNNERS: &str = "runners";

/// Task events of a project.
pub fn project(project_id: i64) -> String {
    format!("project:{project_id}")
}

/// Log lines of a task.
pub fn task_log(task_id: i64) -> String {
    format!("task:{task_id}:log")
}

/// Whether `topic` is a task's log topic ([`task_log`]).
pub fn is_task_log(topic: &str) -> bool {
    topic.strip_prefix("task:").and_then(|t| t.strip_suffix(":log")).is_some_and(|id| id.parse::<i64>().is_ok())
}

/// How many messages a slow subscriber of a task's log may fall behind before it is told it
/// lagged (and reads SQL). A log topic lives while someone follows one task, often for less than
/// a second (a busy node opens one per task for a client following them all), and a channel's
/// slots are allocated when it opens: thousands of slots for each task followed cost more than
/// the rest of following it (measured: 8% of a SQLite node's CPU), while a gap costs one read.
pub const LOG_BACKLOG: usize = 64;

/// The same for any `topic`: other topics live long and carry bursts.
pub fn backlog(topic: &str) -> usize {
    if is_task_log(topic) { LOG_BACKLOG } else { 4096 }
}

/// What the dispatcher announces on [`project`]: a task of the project changed (any change).
/// When the writer knows the row it committed, and it is small, the notice carries it and
/// readers take it from here; otherwise they read SQL, which is the truth.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TaskNotice {
    pub task: i64,
    /// The task's row as committed (the store's columns), as JSON text: it travels as the writer
    /// wrote it, and each reader parses it once, straight into its own type (a tree of values in
    /// between cost every notice two conversions more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<Box<serde_json::value::RawValue>>,
}

/// The largest row a [`TaskNotice`] carries, serialized; larger ones go without it.
pub const NOTICE_ROW_MAX: usize = 16 * 1024;

/// What the dispatcher announces on [`task_log`]: lines up to `last` are stored (and, when they
/// are few, here they are, as a shortcut), or the task has ended (`end`) and every line of it is
/// stored. A reader that finds a gap between what it has and these lines reads SQL.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LogNotice {
    pub task: i64,
    /// The sequence number of the last stored line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<i64>,
    /// The lines just stored, when small enough to travel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<NoticeLine>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    /// When the lines were stored (Unix ms, the publishing node's clock): subscribers pass it on,
    /// so a client can measure how long lines take to reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<i64>,
}

/// A log line as it travels in a [`LogNotice`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeLine {
    pub seq: i64,
    /// Unix milliseconds.
    pub time: i64,
    /// `stdout`, `stderr` or `system`.
    pub stream: String,
    pub text: String,
}

/// The most text a [`LogNotice`] carries; larger chunks go without their lines.
pub const NOTICE_TEXT_MAX: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_log_topics_are_told_from_others() {
        assert!(is_task_log(&task_log(42)));
        assert!(!is_task_log(&project(42)));
        assert!(!is_task_log("task:x:log"));
        assert!(!is_task_log("task:1:log:more"));
    }
}
