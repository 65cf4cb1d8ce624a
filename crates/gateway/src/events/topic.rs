//! The topics of API.md and who may read them. A topic a caller may not read is refused with
//! the API's error (404 for a project they cannot see, 403 for an administrators' topic).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

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
            let pid = match state.task_projects.get(id) {
                Some(pid) => pid,
                None => {
                    let Some(task) = state.tables.find_task(id).await? else {
                        return Err(Error::not_found(format!("task {id}")));
                    };
                    state.task_projects.note(id, task.project_id);
                    task.project_id
                }
            };
            // A task of a project the caller cannot see does not exist for them. The task's
            // project exists (the task does): only the role is needed.
            access::role(state, caller, pid, Permission::Read)
                .await
                .map_err(|e| if e.code == ErrorCode::NotFound { Error::not_found(format!("task {id}")) } else { e })?;
            Ok(Some(pid))
        }
        Topic::Runners | Topic::Cluster => {
            caller.require_admin()?;
            Ok(None)
        }
    }
}

/// The projects of tasks this node has seen lately. A task never moves to another project and
/// its id is never reused, so subscribing to the log of a task just created or just seen (a
/// console opening the task it started) needs no read to find whose it is. A task deleted since
/// it was seen (retention, its project deleted) is then followed instead of refused: its log ends
/// at once, as the log of a task deleted while followed does.
#[derive(Debug, Default)]
pub struct TaskProjects(Mutex<(HashMap<i64, i64>, VecDeque<i64>)>);

/// How many tasks' projects a node keeps (the oldest go first): a few seconds of a busy node's
/// new tasks, 160 KiB at most.
const TASK_PROJECTS: usize = 8192;

impl TaskProjects {
    pub fn get(&self, task: i64) -> Option<i64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.get(&task).copied()
    }

    pub fn note(&self, task: i64, project: i64) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(task, project).is_none() {
            order.push_back(task);
            while order.len() > TASK_PROJECTS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
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

    #[test]
    fn task_projects_keep_the_latest_few() {
        let t = TaskProjects::default();
        for id in 1..=(TASK_PROJECTS as i64 + 10) {
            t.note(id, id % 7);
        }
        assert_eq!(t.get(1), None, "the oldest went first");
        assert_eq!(t.get(TASK_PROJECTS as i64 + 10), Some((TASK_PROJECTS as i64 + 10) % 7));
        assert_eq!(t.0.lock().unwrap().0.len(), TASK_PROJECTS);
    }
}
