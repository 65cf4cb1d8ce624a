//! Topic names, in one place so publishers and subscribers agree.

/// "There may be queued work": wakes every dispatcher.
pub const DISPATCH: &str = "dispatch";

/// Cancellation requests: payload is the task id in decimal.
pub const CANCEL: &str = "cancel";

/// Task events of a project.
pub fn project(project_id: i64) -> String {
    format!("project:{project_id}")
}

/// Log lines of a task.
pub fn task_log(task_id: i64) -> String {
    format!("task:{task_id}:log")
}
