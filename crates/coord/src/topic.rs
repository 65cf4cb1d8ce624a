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
