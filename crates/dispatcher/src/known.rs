//! What placement has learned of queued tasks it read: what each needs of a runner. A task's
//! project, labels and limits never change while it waits, so once a node has read a task from
//! SQL it can tell, without reading it again, whether its runners can take it now. That is what
//! lets a node leave alone the tasks it cannot place, instead of taking them off the queue, putting
//! them back and waking every node (itself included) to look again, forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baton_coord::Queued;
use baton_store::entity::task;

use crate::registry::{Outbox, Registry};

/// The most tasks remembered. Tasks leave when this node claims them or finds them gone (claimed
/// elsewhere, taken by another node, no longer queued); the others (put back, then run by
/// another node) expire.
const MAX: usize = 4096;
/// How long a task's needs are trusted: after that it is unknown again, worth one more look
/// (so a task put back goes back at most once per node in this time).
const EXPIRE: Duration = Duration::from_secs(60);

/// What a queued task needs of a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Its spec cannot be read: no runner can take it.
    Unreadable,
    Runner {
        project_id: i64,
        template_id: i64,
        labels: Vec<String>,
        template_max_parallel: i32,
        project_max_parallel: i32,
    },
}

impl Needs {
    pub fn of(t: &task::Model, labels: Option<&[String]>) -> Needs {
        match labels {
            None => Needs::Unreadable,
            Some(labels) => Needs::Runner {
                project_id: t.project_id,
                template_id: t.template_id,
                labels: labels.to_vec(),
                template_max_parallel: t.template_max_parallel,
                project_max_parallel: t.project_max_parallel,
            },
        }
    }

    fn limited(&self) -> bool {
        matches!(self, Needs::Runner { template_max_parallel, project_max_parallel, .. }
            if *template_max_parallel > 0 || *project_max_parallel > 0)
    }
}

/// Running tasks per template and per project, for the `max_parallel` limits.
pub type Counts = (HashMap<i64, i64>, HashMap<i64, i64>);

/// The needs of the queued tasks this node has read. Owned by the placement loop alone.
#[derive(Debug, Default)]
pub struct Known {
    needs: HashMap<i64, (Needs, Instant)>,
}

impl Known {
    pub fn learn(&mut self, task_id: i64, needs: Needs) {
        if self.needs.len() >= MAX {
            let now = Instant::now();
            self.needs.retain(|_, (_, at)| now.duration_since(*at) < EXPIRE);
            if self.needs.len() >= MAX {
                self.needs.clear();
            }
        }
        self.needs.insert(task_id, (needs, Instant::now()));
    }

    pub fn forget(&mut self, task_id: i64) {
        self.needs.remove(&task_id);
    }

    /// What `task_id` needs, while that is trusted.
    fn get(&self, task_id: i64) -> Option<&Needs> {
        self.needs.get(&task_id).filter(|(_, at)| at.elapsed() < EXPIRE).map(|(n, _)| n)
    }

    /// Whether any of `entries` is known to have a `max_parallel` limit: then the running counts
    /// are needed to choose.
    pub fn any_limited(&self, entries: &[Queued]) -> bool {
        entries.iter().any(|e| self.get(e.task_id).is_some_and(Needs::limited))
    }

    /// The entries of a page worth taking off the queue, in order: each known task that a runner
    /// here can take now (counting the slots and limits the ones before it would use), and
    /// unknown ones while free slots are left. `counts` are needed only when a known entry is
    /// limited ([`Known::any_limited`]).
    pub fn wanted(&self, entries: &[Queued], registry: &Registry, counts: Option<&Counts>) -> Vec<i64> {
        let mut slots = registry.total_free();
        let mut choosing = Choosing::new(counts.cloned().unwrap_or_default());
        let mut out = Vec::new();
        for e in entries {
            if slots == 0 {
                break;
            }
            // Unknown: worth a look. Known: only if a runner here can take it now.
            if let Some(needs) = self.get(e.task_id)
                && choosing.choose(registry, needs).is_none()
            {
                continue;
            }
            slots -= 1;
            out.push(e.task_id);
        }
        out
    }
}

/// The slots and limits one placement pass has used so far: each task chosen counts against its
/// runner, its template and its project.
#[derive(Debug, Default)]
pub struct Choosing {
    taken: HashMap<i64, usize>,
    per_template: HashMap<i64, i64>,
    per_project: HashMap<i64, i64>,
}

impl Choosing {
    /// Starting from the tasks running now.
    pub fn new((per_template, per_project): Counts) -> Choosing {
        Choosing { taken: HashMap::new(), per_template, per_project }
    }

    /// A runner of `registry` that can take a task needing `needs` now, within its limits, counted
    /// as taken from here (a claim lost later only makes the rest of the pass more careful than
    /// it had to be, never less): its id and the session and outbox of its stream.
    pub fn choose(&mut self, registry: &Registry, needs: &Needs) -> Option<(i64, u64, Outbox)> {
        let Needs::Runner { project_id, template_id, labels, template_max_parallel, project_max_parallel } = needs
        else {
            return None;
        };
        if over_limit(*template_max_parallel, self.per_template.get(template_id))
            || over_limit(*project_max_parallel, self.per_project.get(project_id))
        {
            return None;
        }
        let picked = registry.pick(*project_id, labels, &self.taken)?;
        *self.taken.entry(picked.0).or_insert(0) += 1;
        *self.per_template.entry(*template_id).or_insert(0) += 1;
        *self.per_project.entry(*project_id).or_insert(0) += 1;
        Some(picked)
    }
}

/// Whether `active` tasks reach a `limit` (0: unlimited).
fn over_limit(limit: i32, active: Option<&i64>) -> bool {
    limit > 0 && active.copied().unwrap_or(0) >= i64::from(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::conn;

    fn needs(labels: &[&str], template_max_parallel: i32) -> Needs {
        Needs::Runner {
            project_id: 1,
            template_id: 10,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            template_max_parallel,
            project_max_parallel: 0,
        }
    }

    fn q(task_id: i64) -> Queued {
        Queued { task_id, priority: 0 }
    }

    #[test]
    fn known_tasks_no_runner_here_fits_are_left_on_the_queue() {
        let registry = Registry::default();
        registry.insert(1, conn(&["linux"], 3, 0));
        let mut known = Known::default();
        known.learn(1, needs(&["gpu"], 0));
        known.learn(2, needs(&["linux"], 0));
        known.learn(3, Needs::Unreadable);
        let page = [q(1), q(2), q(3), q(4), q(5), q(6)];
        // 1 needs a label nobody here has, 3 cannot run anywhere; 2 fits and 4, 5 are unknown
        // (worth a look); the three slots are spoken for before 6.
        assert_eq!(known.wanted(&page, &registry, None), [2, 4, 5]);
    }

    #[test]
    fn limits_count_the_running_and_the_chosen() {
        let registry = Registry::default();
        registry.insert(1, conn(&[], 8, 0));
        let mut known = Known::default();
        for id in 1..=4 {
            known.learn(id, needs(&[], 3));
        }
        let page = [q(1), q(2), q(3), q(4)];
        assert!(known.any_limited(&page));
        let counts: Counts = (HashMap::from([(10, 1)]), HashMap::new());
        assert_eq!(known.wanted(&page, &registry, Some(&counts)), [1, 2], "one running + two chosen reach 3");
        known.forget(1);
        known.forget(2);
        // Unknown again: worth a look whatever the limits (their templates are not known).
        assert_eq!(known.wanted(&page, &registry, Some(&counts)), [1, 2, 3, 4]);
    }

    #[test]
    fn known_is_bounded() {
        let mut known = Known::default();
        for id in 0..(MAX as i64 + 10) {
            known.learn(id, Needs::Unreadable);
        }
        assert!(known.needs.len() <= MAX);
    }

    #[test]
    fn limits_of_zero_mean_unlimited() {
        assert!(!over_limit(0, Some(&100)));
        assert!(!over_limit(2, Some(&1)));
        assert!(over_limit(2, Some(&2)));
        assert!(!over_limit(1, None));
    }
}
