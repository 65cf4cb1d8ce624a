//! The runners connected to this dispatcher, with their free slots and the tasks they hold.
//! Capacity is accounted here, on the server side: a slot is taken when an assignment is sent and
//! given back when the runner reports the task finished (or its stream ends).

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::outbox::Outbox;

#[derive(Debug)]
pub struct Conn {
    /// Distinguishes this stream from an older one of the same runner.
    pub session: u64,
    pub outbox: Outbox,
    pub labels: Vec<String>,
    pub capacity: usize,
    /// The tasks this runner holds.
    pub held: HashMap<i64, Held>,
    /// Set for a project-scoped runner: it takes only that project's tasks.
    pub project_id: Option<i64>,
    pub draining: bool,
    /// Paused by an admin: keeps what it runs, gets nothing new.
    pub paused: bool,
}

/// What the dispatcher remembers of a task a runner holds, so reports need no SQL read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub epoch: i64,
    pub project_id: i64,
    /// When the task was submitted (ms), while its first attempt has not been seen starting: the
    /// start of the dispatch latency (`baton_dispatch_latency_seconds`), taken once, so a
    /// re-sent `TaskStarted` is not measured twice.
    pub awaiting_start: Option<i64>,
    /// The sequence number of the task's last stored line (0: none yet), while this node knows
    /// it: from the assignment, then from every chunk stored. Unknown for a task adopted from a
    /// runner's hello. An end notice that carries it spares every log subscriber a read of SQL.
    pub last_seq: Option<i64>,
}

impl Held {
    /// The submission time of a task whose first attempt is yet to start. Later attempts waited
    /// through an earlier one, which is no dispatch latency.
    pub fn first_start(t: &baton_store::entity::task::Model) -> Option<i64> {
        (t.attempt <= 1 && t.status != baton_core::TaskStatus::Running.as_str()).then_some(t.created_at)
    }
}

impl Conn {
    pub fn free(&self) -> usize {
        if self.draining || self.paused || self.outbox.is_closed() {
            0
        } else {
            self.capacity.saturating_sub(self.held.len())
        }
    }

    /// Whether this runner may take a task of `project_id` that needs `labels`.
    pub fn fits(&self, project_id: i64, labels: &[String]) -> bool {
        self.project_id.is_none_or(|p| p == project_id) && labels.iter().all(|l| self.labels.contains(l))
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    conns: HashMap<i64, Conn>,
    next_session: u64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a runner's stream, replacing an older stream of the same runner. Returns the session.
    pub fn insert(&self, runner_id: i64, mut conn: Conn) -> u64 {
        let mut inner = self.lock();
        inner.next_session += 1;
        conn.session = inner.next_session;
        inner.conns.insert(runner_id, conn);
        inner.next_session
    }

    /// Drops the runner's stream whatever its session (it was revoked); returns its outbox.
    pub fn evict(&self, runner_id: i64) -> Option<Outbox> {
        self.lock().conns.remove(&runner_id).map(|c| c.outbox)
    }

    /// Removes the runner if `session` is still its current stream; returns the tasks it held.
    pub fn remove(&self, runner_id: i64, session: u64) -> Option<HashMap<i64, Held>> {
        let mut inner = self.lock();
        if inner.conns.get(&runner_id).is_some_and(|c| c.session == session) {
            return inner.conns.remove(&runner_id).map(|c| c.held);
        }
        None
    }

    pub fn with<R>(&self, runner_id: i64, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
        self.lock().conns.get_mut(&runner_id).map(f)
    }

    /// Like [`with`](Self::with), only while `session` is still the runner's current stream.
    pub fn with_session<R>(&self, runner_id: i64, session: u64, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
        self.lock().conns.get_mut(&runner_id).filter(|c| c.session == session).map(f)
    }

    /// Picks the least-loaded runner with a free slot that may take a task of `project_id` needing
    /// `labels`: its id and the session and outbox of its stream. `taken` counts, per runner, the
    /// slots already chosen for tasks not yet assigned: they are not free.
    pub fn pick(&self, project_id: i64, labels: &[String], taken: &HashMap<i64, usize>) -> Option<(i64, u64, Outbox)> {
        let inner = self.lock();
        let free = |id: &i64, c: &Conn| c.free().saturating_sub(taken.get(id).copied().unwrap_or(0));
        inner
            .conns
            .iter()
            .filter(|(id, c)| free(id, c) > 0 && c.fits(project_id, labels))
            // Least loaded = highest share of free slots; ties go to the lower id for stable tests.
            .max_by(|(a_id, a), (b_id, b)| {
                let (fa, fb) = (free(a_id, a) * b.capacity, free(b_id, b) * a.capacity);
                fa.cmp(&fb).then(b_id.cmp(a_id))
            })
            .map(|(id, c)| (*id, c.session, c.outbox.clone()))
    }

    pub fn total_free(&self) -> usize {
        self.lock().conns.values().map(Conn::free).sum()
    }

    pub fn outboxes(&self) -> Vec<Outbox> {
        self.lock().conns.values().map(|c| c.outbox.clone()).collect()
    }

    pub fn ids(&self) -> Vec<i64> {
        self.lock().conns.keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// The outbox of the runner holding `task_id` at `epoch`, if it is connected here.
    pub fn holder(&self, task_id: i64) -> Option<(i64, Outbox)> {
        let inner = self.lock();
        inner.conns.iter().find(|(_, c)| c.held.contains_key(&task_id)).map(|(id, c)| (*id, c.outbox.clone()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A connected runner with `held` of its `capacity` slots taken (also for other modules' tests).
    pub(crate) fn conn(labels: &[&str], capacity: usize, held: usize) -> Conn {
        let (outbox, stream) = Outbox::new(capacity);
        // A stream nobody reads but that stays open, as a connected runner's does.
        std::mem::forget(stream);
        Conn {
            session: 0,
            outbox,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            capacity,
            held: (0..held as i64)
                .map(|i| (1000 + i, Held { epoch: 1, project_id: 1, awaiting_start: None, last_seq: None }))
                .collect(),
            project_id: None,
            draining: false,
            paused: false,
        }
    }

    #[test]
    fn picks_a_runner_with_every_label_and_a_free_slot() {
        let r = Registry::default();
        r.insert(1, conn(&["linux"], 2, 0));
        r.insert(2, conn(&["linux", "gpu"], 2, 0));
        r.insert(3, conn(&["linux", "gpu"], 1, 1));
        assert_eq!(r.pick(1, &["gpu".into()], &HashMap::new()).map(|p| p.0), Some(2));
        assert_eq!(r.pick(1, &["arm".into()], &HashMap::new()).map(|p| p.0), None);
        assert_eq!(r.total_free(), 4);
    }

    #[test]
    fn prefers_the_least_loaded_runner() {
        let r = Registry::default();
        r.insert(1, conn(&[], 4, 3));
        r.insert(2, conn(&[], 2, 1));
        assert_eq!(r.pick(1, &[], &HashMap::new()).map(|p| p.0), Some(2));
    }

    #[test]
    fn slots_chosen_in_a_pass_are_not_free() {
        let r = Registry::default();
        r.insert(1, conn(&[], 4, 1));
        r.insert(2, conn(&[], 2, 0));
        let mut taken = HashMap::new();
        let mut picks = Vec::new();
        while let Some((id, _, _)) = r.pick(1, &[], &taken) {
            *taken.entry(id).or_insert(0) += 1;
            picks.push(id);
        }
        // Three free slots on runner 1 and two on runner 2, spread by load, and no more.
        assert_eq!(picks, [2, 1, 1, 2, 1]);
        assert_eq!(r.total_free(), 5, "choosing takes nothing until a task is held");
    }

    #[test]
    fn a_project_scoped_runner_takes_only_its_project() {
        let r = Registry::default();
        let mut scoped = conn(&[], 4, 0);
        scoped.project_id = Some(7);
        r.insert(1, scoped);
        assert_eq!(r.pick(7, &[], &HashMap::new()).map(|p| p.0), Some(1));
        assert_eq!(r.pick(8, &[], &HashMap::new()).map(|p| p.0), None);
        r.insert(2, conn(&[], 1, 0));
        assert_eq!(r.pick(8, &[], &HashMap::new()).map(|p| p.0), Some(2));
    }

    #[test]
    fn draining_runners_take_nothing_and_old_sessions_do_not_remove_new_ones() {
        let r = Registry::default();
        let old = r.insert(1, conn(&[], 2, 0));
        let new = r.insert(1, conn(&[], 2, 0));
        assert!(r.remove(1, old).is_none());
        r.with(1, |c| c.draining = true);
        assert!(r.pick(1, &[], &HashMap::new()).is_none());
        assert!(r.remove(1, new).is_some());
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn an_assignment_picked_for_a_replaced_stream_does_not_land_on_the_new_one() {
        let r = Registry::default();
        r.insert(1, conn(&[], 2, 0));
        let (id, old, _) = r.pick(1, &[], &HashMap::new()).unwrap();
        let new = r.insert(id, conn(&[], 2, 0));
        let held = Held { epoch: 1, project_id: 1, awaiting_start: None, last_seq: None };
        assert!(r.with_session(id, old, |c| c.held.insert(5, held)).is_none());
        assert!(r.with_session(id, new, |c| c.held.insert(5, held)).is_some());
        assert_eq!(r.with(id, |c| c.held.len()), Some(1));
    }
}
