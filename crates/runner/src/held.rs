//! Bounds on the output a runner holds: bytes read from scripts' pipes that the server has not
//! acknowledged yet. Each line reserves its bytes from its task's pool and from the runner's
//! before it is filed; the reservation travels with the line into its chunk and is given back
//! when the chunk is acknowledged, or when the job is dropped for any reason. A pipe reader
//! waiting for a reservation does not read, so a script printing faster than the server
//! acknowledges blocks on its writes instead of growing the runner's memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// What a line costs beyond its text: sequence number, time, stream and the string itself.
pub const LINE_OVERHEAD: usize = 64;

/// How many bytes of output the runner holds until the server acknowledges them.
///
/// Not configuration keys: they bound the runner's memory, not anything an operator sees, and
/// the defaults leave a healthy server hundreds of chunks of slack. Tests make them small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    /// Per task; also the most one line reserves, so a longer line still fits.
    pub per_task: u32,
    /// For all tasks together; at least `per_task`.
    pub per_runner: u32,
}

impl Default for HoldLimits {
    fn default() -> HoldLimits {
        HoldLimits { per_task: 8 << 20, per_runner: 64 << 20 }
    }
}

/// The runner's pool; cheap to clone.
#[derive(Debug, Clone)]
pub struct Pool {
    runner: Arc<Semaphore>,
    limits: HoldLimits,
}

impl Pool {
    pub fn new(limits: HoldLimits) -> Pool {
        let limits = HoldLimits { per_runner: limits.per_runner.max(limits.per_task), ..limits };
        Pool { runner: Arc::new(Semaphore::new(limits.per_runner as usize)), limits }
    }

    /// Bytes reserved now, by all tasks.
    pub fn held(&self) -> usize {
        self.limits.per_runner as usize - self.runner.available_permits()
    }

    /// A new task's pool.
    pub fn task(&self) -> TaskPool {
        TaskPool {
            task: Arc::new(Semaphore::new(self.limits.per_task as usize)),
            runner: self.runner.clone(),
            per_task: self.limits.per_task,
            gone: CancellationToken::new(),
        }
    }
}

/// One task's pool; cheap to clone.
#[derive(Debug, Clone)]
pub struct TaskPool {
    task: Arc<Semaphore>,
    runner: Arc<Semaphore>,
    per_task: u32,
    gone: CancellationToken,
}

impl TaskPool {
    /// Waits until a line of `bytes` may be held. `None` once the job is gone: its output is
    /// not wanted any more, and waiting could last forever (the runner's pool may be full of
    /// another task's output that a server far away does not acknowledge).
    pub async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        // A line longer than the whole bound reserves the bound, so it passes once the task's
        // earlier output is acknowledged.
        let n = u32::try_from(bytes.saturating_add(LINE_OVERHEAD)).unwrap_or(u32::MAX).min(self.per_task);
        let task = tokio::select! {
            biased;
            _ = self.gone.cancelled() => return None,
            p = self.task.clone().acquire_many_owned(n) => p.ok()?,
        };
        let runner = tokio::select! {
            biased;
            _ = self.gone.cancelled() => return None,
            p = self.runner.clone().acquire_many_owned(n) => p.ok()?,
        };
        Some(Reservation { task, runner })
    }

    /// The job is gone: waiting reservations end, and new ones are refused.
    pub fn close(&self) {
        self.gone.cancel();
    }

    /// Bytes this task holds now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.per_task as usize - self.task.available_permits()
    }
}

/// Bytes held for lines until they are acknowledged; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    task: OwnedSemaphorePermit,
    runner: OwnedSemaphorePermit,
}

impl Reservation {
    /// Adds `other` (of the same task) to this one.
    pub fn merge(&mut self, other: Reservation) {
        self.task.merge(other.task);
        self.runner.merge(other.runner);
    }
}

/// Keeps `into` the sum of the reservations merged in.
pub fn merge(into: &mut Option<Reservation>, more: Option<Reservation>) {
    match (into.as_mut(), more) {
        (Some(held), Some(more)) => held.merge(more),
        (None, more) => *into = more,
        (Some(_), None) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::Duration;

    use baton_proto::v1::runner_message::Msg;
    use baton_proto::v1::{self as pb, Assignment, Outcome, TaskRef};

    use super::*;
    use crate::jobs::Jobs;

    const LINE: usize = 200;

    /// Waits for `cond` (panics after 30 s), checking `invariant` all along.
    async fn until(what: &str, mut cond: impl FnMut() -> bool, invariant: impl Fn()) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            invariant();
            if cond() {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn options(dir: &Path, hold: HoldLimits) -> crate::Options {
        crate::Options {
            url: "http://127.0.0.1:1".into(),
            tls: None,
            runner_id: 1,
            secret: String::new(),
            labels: Vec::new(),
            capacity: 4,
            work_dir: dir.to_owned(),
            kill_grace: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(1),
            max_log_bytes: crate::DEFAULT_MAX_LOG_BYTES,
            hold,
        }
    }

    fn task(task_id: i64) -> TaskRef {
        TaskRef { task_id, epoch: 1 }
    }

    /// Task `id` running `script`, whose lines are `LINE` bytes long.
    fn assignment(id: i64, script: &str) -> Assignment {
        let script = script.replace("LINE", &LINE.to_string());
        Assignment {
            task: Some(task(id)),
            attempt: 1,
            script,
            shell: "bash".into(),
            first_seq: 1,
            ..Default::default()
        }
    }

    /// Plays the server once: takes what the runner sends and acknowledges all of it. Returns
    /// the lines and the ends it got, per task.
    fn serve(jobs: &Jobs, lines: &mut HashMap<i64, Vec<String>>, ends: &mut HashMap<i64, Outcome>) {
        use pb::ack::What;
        for m in jobs.outgoing() {
            let (what, last_seq) = match m.msg {
                Some(Msg::Started(s)) => (What::Started(s.task.unwrap()), 0),
                Some(Msg::Log(c)) => {
                    let last = c.lines.last().map_or(0, |l| l.seq);
                    let t = c.task.unwrap();
                    lines.entry(t.task_id).or_default().extend(c.lines.into_iter().map(|l| l.text));
                    (What::Log(t), last)
                }
                Some(Msg::Finished(f)) => {
                    let t = f.task.unwrap();
                    ends.insert(t.task_id, Outcome::try_from(f.outcome).unwrap());
                    (What::Finished(t), 0)
                }
                _ => continue,
            };
            jobs.on_ack(pb::Ack { what: Some(what), last_seq });
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn held_bytes_stay_under_the_bounds_until_acknowledgements_release_them() {
        let dir = tempfile::tempdir().unwrap();
        let hold = HoldLimits { per_task: 64 << 10, per_runner: 96 << 10 };
        let opts = options(dir.path(), hold);
        let jobs = Jobs::new(hold);
        let script = "for i in $(seq 1 2000); do printf '%0LINEd\\n' $i; done";
        jobs.start(assignment(1, script), &opts);
        jobs.start(assignment(2, script), &opts);
        let bounded = || {
            assert!(jobs.held_bytes() <= hold.per_runner as usize, "runner holds {}", jobs.held_bytes());
            for id in [1, 2] {
                let held = jobs.task_held(id);
                assert!(held <= hold.per_task as usize, "task {id} holds {held}");
            }
        };
        // Nobody acknowledges: the scripts fill what the runner may hold, and stop there.
        let full = hold.per_runner as usize - 2 * (LINE + LINE_OVERHEAD);
        until("the runner's bound to fill", || jobs.held_bytes() >= full, bounded).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        bounded();
        assert_eq!(jobs.len(), 2, "a script that cannot write cannot end");

        let (mut lines, mut ends) = (HashMap::new(), HashMap::new());
        until(
            "both tasks to end",
            || {
                serve(&jobs, &mut lines, &mut ends);
                jobs.len() == 0
            },
            bounded,
        )
        .await;
        let want: Vec<String> = (1..=2000).map(|i| format!("{i:0LINE$}")).collect();
        for id in [1, 2] {
            assert_eq!(ends.get(&id), Some(&Outcome::Succeeded));
            assert!(lines[&id] == want, "task {id}: {} lines, not the 2000 written in order", lines[&id].len());
        }
        assert_eq!(jobs.held_bytes(), 0, "every acknowledged line gave its bytes back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_stopped_while_its_reader_waits_ends_and_removal_releases_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let hold = HoldLimits { per_task: 64 << 10, per_runner: 64 << 10 };
        let opts = options(dir.path(), hold);
        let jobs = Jobs::new(hold);
        let endless = "while :; do printf '%0LINEd\\n' 1; done";
        let bounded = || assert!(jobs.held_bytes() <= hold.per_runner as usize, "runner holds {}", jobs.held_bytes());
        jobs.start(assignment(1, endless), &opts);
        let full = hold.per_runner as usize - (LINE + LINE_OVERHEAD);
        until("task 1 to fill the runner's bound", || jobs.held_bytes() >= full, bounded).await;
        // Task 2's reader waits for bytes only an acknowledgement of task 1 would free.
        jobs.start(assignment(2, endless), &opts);
        let workdir = |id: i64| dir.path().join(format!("task-{id}-1"));
        until("task 2 to start", || workdir(2).exists(), bounded).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(jobs.held_bytes() >= full, "task 1 still holds its bytes");

        jobs.on_stop(task(2));
        until("task 2's script and readers to end", || !workdir(2).exists(), bounded).await;
        jobs.on_stop(task(1));
        until("task 1's bytes to be given back", || jobs.held_bytes() == 0, bounded).await;
        until("task 1's script and readers to end", || !workdir(1).exists(), bounded).await;
        assert_eq!(jobs.len(), 0);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_bound_passes_once_earlier_output_is_released() {
        let pool = Pool::new(HoldLimits { per_task: 1000, per_runner: 1000 });
        let t = pool.task();
        let first = t.reserve(400).await.unwrap();
        assert_eq!((t.held(), pool.held()), (400 + LINE_OVERHEAD, 400 + LINE_OVERHEAD));
        let waiting = tokio::spawn({
            let t = t.clone();
            async move { t.reserve(1 << 20).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the long line waits for the earlier one");
        drop(first);
        let long = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("the long line waits forever");
        let long = long.unwrap().expect("the long line passes");
        assert_eq!(pool.held(), 1000, "a long line holds the whole bound, not more");
        drop(long);
        assert_eq!(pool.held(), 0);
    }

    #[tokio::test]
    async fn closing_a_task_pool_ends_its_waiting_reservations() {
        let pool = Pool::new(HoldLimits { per_task: 1000, per_runner: 1000 });
        let (a, b) = (pool.task(), pool.task());
        let _held = a.reserve(900).await.unwrap();
        let on_task = tokio::spawn({
            let a = a.clone();
            async move { a.reserve(500).await }
        });
        let on_runner = tokio::spawn({
            let b = b.clone();
            async move { b.reserve(500).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!on_task.is_finished() && !on_runner.is_finished());
        a.close();
        b.close();
        let ended = |h| async { tokio::time::timeout(Duration::from_secs(5), h).await.expect("a waiter hangs") };
        assert!(ended(on_task).await.unwrap().is_none() && ended(on_runner).await.unwrap().is_none());
        assert!(b.reserve(1).await.is_none(), "a closed pool holds nothing more");
    }
}
