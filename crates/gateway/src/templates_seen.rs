//! A single node's short memory of the templates tasks are started from. Every `POST …/tasks`
//! reads its template and project (a statement of its own, a third of a task's statements on
//! SQLite), though a busy template starts hundreds of tasks a second unchanged.
//!
//! Architecture Invariant: a template is remembered only on a node that is the whole
//! installation (without `ha.enabled`: its coordination is in process, so no other gateway
//! exists), where every write to templates and projects passes through this gateway, and each
//! such write forgets everything before it answers. A read made before a forgetting is not kept
//! after it. In a cluster nothing is remembered: a template changed through one node must be what
//! the next task started through any other node runs, and no notice crosses the cluster before
//! that node's answer does. The memory lasts at most [`FRESH`] anyway, which bounds what a write
//! made around the gateway (an operator's tool on the database) can go unseen.

use std::time::{Duration, Instant};

use baton_store::entity::{project, template};

use crate::memo::Memo;

/// The longest a template is remembered.
pub const FRESH: Duration = Duration::from_secs(1);
/// The most templates remembered.
const MAX_ENTRIES: usize = 1_024;

/// A template with its project, as `POST …/tasks` needs them.
pub type Found = (template::Model, project::Model);

#[derive(Debug)]
pub struct TemplatesSeen {
    /// Whether this node is the whole installation; nothing is remembered otherwise.
    enabled: bool,
    /// By (project id, template id).
    memo: Memo<(i64, i64), Found>,
}

impl TemplatesSeen {
    pub fn new(enabled: bool) -> TemplatesSeen {
        TemplatesSeen { enabled, memo: Memo::new(MAX_ENTRIES) }
    }

    /// Template `tid` of project `pid`, if remembered and still fresh.
    pub fn get(&self, pid: i64, tid: i64) -> Option<Found> {
        if !self.enabled {
            return None;
        }
        self.memo.get(&(pid, tid))
    }

    /// Taken before reading a template from SQL, and handed to [`TemplatesSeen::keep`].
    pub fn generation(&self) -> u64 {
        self.memo.generation()
    }

    /// Remembers `found` for at most [`FRESH`], unless a forgetting came since `generation`.
    pub fn keep(&self, found: Found, generation: u64) {
        if self.enabled {
            let key = (found.0.project_id, found.0.id);
            self.memo.keep(key, found, Instant::now() + FRESH, generation, || true);
        }
    }

    /// Forgets every template: one, or a project, was changed or deleted.
    pub fn forget(&self) {
        self.memo.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(pid: i64, tid: i64, script: &str) -> Found {
        let p = project::Model {
            id: pid,
            name: format!("p{pid}"),
            description: String::new(),
            max_parallel: 0,
            created_at: 0,
            updated_at: 0,
        };
        let t = template::Model {
            id: tid,
            project_id: pid,
            name: format!("t{tid}"),
            script: script.into(),
            shell: "sh".into(),
            env: "{}".into(),
            secrets: "[]".into(),
            labels: "[]".into(),
            timeout_seconds: 0,
            max_attempts: 1,
            max_parallel: 0,
            priority: 0,
            created_at: 0,
            updated_at: 0,
        };
        (t, p)
    }

    #[test]
    fn only_a_whole_installation_remembers() {
        let cluster = TemplatesSeen::new(false);
        cluster.keep(found(1, 2, "a"), cluster.generation());
        assert!(cluster.get(1, 2).is_none());
        let single = TemplatesSeen::new(true);
        single.keep(found(1, 2, "a"), single.generation());
        assert_eq!(single.get(1, 2).map(|f| f.0.script), Some("a".into()));
        assert!(single.get(2, 2).is_none(), "another project's template id is not this one");
    }

    #[test]
    fn a_forgetting_clears_all_and_beats_a_read_made_before_it() {
        let s = TemplatesSeen::new(true);
        s.keep(found(1, 2, "a"), s.generation());
        let before = s.generation();
        s.forget();
        assert!(s.get(1, 2).is_none());
        s.keep(found(1, 2, "old"), before);
        assert!(s.get(1, 2).is_none(), "read before the forgetting: not kept");
        s.keep(found(1, 2, "new"), s.generation());
        assert_eq!(s.get(1, 2).map(|f| f.0.script), Some("new".into()));
    }

    #[test]
    fn the_memory_is_bounded() {
        let s = TemplatesSeen::new(true);
        for tid in 0..(MAX_ENTRIES as i64 + 10) {
            s.keep(found(1, tid, "a"), s.generation());
        }
        assert!(s.memo.len() <= MAX_ENTRIES);
    }
}
