//! The topics of API.md and who may read them. A topic a caller may not read is refused with
//! the API's error (404 for a project they cannot see, 403 for an administrators' topic).

use baton_core::ErrorCode;

use crate::AppState;
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::{Error, Result};

/// A topic a client may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `project:<pid>`: changes of the project's tasks.
    Project(i64),
    /// `task:<id>:log`: a task's log lines.
    TaskLog(i64),
    /// `runners`: runner changes (administrators).
    Runners,
    /// `cluster`: node changes (administrators).
    Cluster,
}

impl Topic {
    pub fn parse(s: &str) -> Option<Topic> {
        if s == "runners" {
            return Some(Topic::Runners);
        }
        if s == "cluster" {
            return Some(Topic::Cluster);
        }
        if let Some(pid) = s.strip_prefix("project:") {
            return pid.parse().ok().filter(|p| *p > 0).map(Topic::Project);
        }
        let id = s.strip_prefix("task:")?.strip_suffix(":log")?;
        id.parse().ok().filter(|i| *i > 0).map(Topic::TaskLog)
    }

    pub fn name(self) -> String {
        match self {
            Topic::Project(pid) => baton_coord::topic::project(pid),
            Topic::TaskLog(id) => baton_coord::topic::task_log(id),
            Topic::Runners => "runners".into(),
            Topic::Cluster => "cluster".into(),
        }
    }
}

/// `Ok` with the project the topic belongs to (if any) when `caller` may read `topic` now.
pub async fn check(state: &AppState, caller: &Caller, topic: Topic) -> Result<Option<i64>> {
    match topic {
        Topic::Project(pid) => {
            access::project(state, caller, pid, Permission::Read).await?;
            Ok(Some(pid))
        }
        Topic::TaskLog(id) => {
            let Some(task) = state.tables.find_task(id).await? else {
                return Err(Error::not_found(format!("task {id}")));
            };
            // A task of a project the caller cannot see does not exist for them. The task's
            // project exists (the task does): only the role is needed.
            access::role(state, caller, task.project_id, Permission::Read)
                .await
                .map_err(|e| if e.code == ErrorCode::NotFound { Error::not_found(format!("task {id}")) } else { e })?;
            Ok(Some(task.project_id))
        }
        Topic::Runners | Topic::Cluster => {
            caller.require_admin()?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_nonsense_is_refused() {
        for t in [Topic::Project(3), Topic::TaskLog(42), Topic::Runners, Topic::Cluster] {
            assert_eq!(Topic::parse(&t.name()), Some(t));
        }
        for bad in ["", "project:", "project:x", "project:-1", "task:1", "task:1:logs", "tasks", "cluster:1"] {
            assert_eq!(Topic::parse(bad), None, "{bad}");
        }
    }
}
