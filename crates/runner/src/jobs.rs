//! The runner's jobs and everything they have to report. A report leaves this table only when
//! the server acknowledges it; after a reconnect every unacknowledged report is sent again, in
//! order. Log lines are cut into chunks with at most one chunk in flight per task: the first line
//! goes out at once, and while a chunk awaits its acknowledgement the next lines gather into the
//! following chunk, so batching grows with load by itself. Every line carries the reservation
//! of bytes it holds (`held.rs`) into its chunk, and gives it back when the chunk is acknowledged
//! or the job is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::{self as pb, Assignment, RunnerMessage, TaskRef};
use prost_types::Timestamp;
use tokio::sync::{Notify, mpsc};

use crate::Options;
use crate::exec::{self, Control, Event, StopReason};
use crate::held::{self, HoldLimits, Pool, Reservation, TaskPool};
use crate::sink::Sink;

/// A chunk is cut at this many lines or bytes of text, whichever comes first.
const CHUNK_LINES: usize = 1000;
const CHUNK_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Something new to send.
    changed: Notify,
    /// A job left the table.
    left: Notify,
    /// Bytes of output held, for all jobs.
    pool: Pool,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<i64, Job>,
    draining: bool,
}

#[derive(Debug)]
struct Job {
    epoch: i64,
    control: Control,
    /// Closed when the job is dropped, so its pipe readers stop waiting to hold more.
    pool: TaskPool,
    started: Option<(Timestamp, bool)>,
    next_seq: i64,
    buffer: Vec<pb::LogLine>,
    buffer_bytes: usize,
    /// What the lines in `buffer` hold.
    buffer_held: Option<Reservation>,
    chunks: VecDeque<Chunk>,
    finished: Option<(pb::TaskFinished, bool)>,
}

/// A chunk of log lines waiting for its acknowledgement.
#[derive(Debug)]
struct Chunk {
    msg: pb::LogChunk,
    last_seq: i64,
    sent: bool,
    /// Given back when the chunk is acknowledged (dropped).
    _held: Option<Reservation>,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.pool.close();
    }
}

impl Job {
    fn task(&self, task_id: i64) -> TaskRef {
        TaskRef { task_id, epoch: self.epoch }
    }

    fn cut_chunk(&mut self, task_id: i64) {
        let lines = std::mem::take(&mut self.buffer);
        self.buffer_bytes = 0;
        let last_seq = lines.last().map_or(0, |l| l.seq);
        let msg = pb::LogChunk { task: Some(self.task(task_id)), lines };
        self.chunks.push_back(Chunk { msg, last_seq, sent: false, _held: self.buffer_held.take() });
    }

    /// The messages this job may send now, marked as sent.
    fn outgoing(&mut self, task_id: i64, out: &mut Vec<Msg>) {
        let task = self.task(task_id);
        if let Some((at, sent @ false)) = &mut self.started {
            *sent = true;
            out.push(Msg::Started(pb::TaskStarted { task: Some(task), time: Some(*at) }));
        }
        let in_flight = self.chunks.iter().any(|c| c.sent);
        if !in_flight {
            if self.chunks.is_empty() && !self.buffer.is_empty() {
                self.cut_chunk(task_id);
            }
            if let Some(chunk) = self.chunks.front_mut() {
                chunk.sent = true;
                out.push(Msg::Log(chunk.msg.clone()));
            }
        }
        if self.chunks.is_empty()
            && self.buffer.is_empty()
            && let Some((fin, sent @ false)) = &mut self.finished
        {
            *sent = true;
            tracing::debug!(task_id, epoch = self.epoch, "reporting the end");
            out.push(Msg::Finished(fin.clone()));
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

impl Jobs {
    pub fn new(limits: HoldLimits) -> Jobs {
        let inner =
            Inner { state: Mutex::default(), changed: Notify::new(), left: Notify::new(), pool: Pool::new(limits) };
        Jobs { inner: Arc::new(inner) }
    }

    pub fn held_bytes(&self) -> usize {
        self.inner.pool.held()
    }

    /// Bytes task `id` holds now.
    #[cfg(test)]
    pub fn task_held(&self, id: i64) -> usize {
        self.lock().jobs.get(&id).map_or(0, |j| j.pool.held())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    pub fn changed(&self) -> &Notify {
        &self.inner.changed
    }

    pub fn set_draining(&self) {
        self.lock().draining = true;
        self.inner.changed.notify_one();
    }

    pub fn is_draining(&self) -> bool {
        self.lock().draining
    }

    pub async fn wait_empty(&self) {
        loop {
            let left = self.inner.left.notified();
            if self.len() == 0 {
                return;
            }
            left.await;
        }
    }

    pub fn stop_all(&self, why: StopReason) {
        for job in self.lock().jobs.values() {
            job.control.stop(why);
        }
    }

    /// What the runner holds, for its hello: running scripts and finished ones whose end is not
    /// acknowledged yet. Leaving the latter out would make the server declare them lost and run
    /// them again.
    pub fn running(&self) -> Vec<TaskRef> {
        self.lock().jobs.iter().map(|(id, j)| j.task(*id)).collect()
    }

    /// After a reconnect nothing counts as sent: every unacknowledged report goes again.
    pub fn reset_sent(&self) {
        for job in self.lock().jobs.values_mut() {
            if let Some((_, sent)) = &mut job.started {
                *sent = false;
            }
            for c in job.chunks.iter_mut() {
                c.sent = false;
            }
            if let Some((_, sent)) = &mut job.finished {
                *sent = false;
            }
        }
    }

    /// Everything that may be sent now.
    pub fn outgoing(&self) -> Vec<RunnerMessage> {
        let mut out = Vec::new();
        for (id, job) in self.lock().jobs.iter_mut() {
            job.outgoing(*id, &mut out);
        }
        out.into_iter().map(|m| RunnerMessage { msg: Some(m) }).collect()
    }

    pub fn on_ack(&self, ack: pb::Ack) {
        use pb::ack::What;
        let mut state = self.lock();
        let (task, what) = match ack.what {
            Some(What::Log(t)) => (t, 0),
            Some(What::Started(t)) => (t, 1),
            Some(What::Finished(t)) => (t, 2),
            None => return,
        };
        let Some(job) = state.jobs.get_mut(&task.task_id).filter(|j| j.epoch == task.epoch) else { return };
        match what {
            0 => {
                while job.chunks.front().is_some_and(|c| c.last_seq <= ack.last_seq) {
                    job.chunks.pop_front();
                }
            }
            1 => job.started = None,
            _ => {
                state.jobs.remove(&task.task_id);
                self.inner.left.notify_waiters();
            }
        }
        drop(state);
        self.inner.changed.notify_one();
    }

    /// The server says the task is not ours any more: kill it and forget it.
    pub fn on_stop(&self, task: TaskRef) {
        let removed = {
            let mut state = self.lock();
            match state.jobs.get(&task.task_id) {
                Some(j) if j.epoch <= task.epoch => state.jobs.remove(&task.task_id),
                _ => None,
            }
        };
        if let Some(job) = removed {
            job.control.stop(StopReason::Fenced);
            self.inner.left.notify_waiters();
        }
    }

    pub fn on_cancel(&self, task: TaskRef) {
        if let Some(job) = self.lock().jobs.get(&task.task_id) {
            job.control.stop(StopReason::Cancelled);
        }
    }

    /// Starts an assigned task, unless it already runs here (a re-sent assignment).
    pub fn start(&self, a: Assignment, opts: &Options) {
        let Some(task) = a.task else { return };
        let control = Control::default();
        let pool = self.inner.pool.task();
        {
            let mut state = self.lock();
            if state.jobs.get(&task.task_id).is_some_and(|j| j.epoch >= task.epoch) {
                return;
            }
            let job = Job {
                epoch: task.epoch,
                control: control.clone(),
                pool: pool.clone(),
                started: None,
                next_seq: a.first_seq.max(1),
                buffer: Vec::new(),
                buffer_bytes: 0,
                buffer_held: None,
                chunks: VecDeque::new(),
                finished: None,
            };
            state.jobs.insert(task.task_id, job);
        }
        let job = exec::Job {
            task_id: task.task_id,
            attempt: a.attempt,
            project_id: a.project_id,
            template_id: a.template_id,
            script: a.script,
            shell: a.shell,
            env: a.env,
            secrets: a.secrets,
            timeout: (a.timeout_seconds > 0).then(|| std::time::Duration::from_secs(a.timeout_seconds.into())),
        };
        // Unbounded, yet bounded: every line in it holds its reservation.
        let (tx, rx) = mpsc::unbounded_channel();
        let exec = exec::Exec {
            job,
            dirs: exec::Dirs { root: opts.work_dir.clone() },
            kill_grace: opts.kill_grace,
            control,
            sink: Arc::new(Sink::new(tx, pool, opts.max_log_bytes)),
        };
        tracing::info!(task_id = task.task_id, epoch = task.epoch, attempt = a.attempt, "starting task");
        tokio::spawn(exec.run());
        tokio::spawn(self.clone().record(task, rx));
    }

    /// Files what a script does under its job, as long as the job is still this attempt's.
    async fn record(self, task: TaskRef, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(ev) = rx.recv().await {
            let mut state = self.lock();
            let Some(job) = state.jobs.get_mut(&task.task_id).filter(|j| j.epoch == task.epoch) else {
                continue;
            };
            match ev {
                Event::Started => job.started = Some((now(), false)),
                Event::Line { stream, text, held } => {
                    held::merge(&mut job.buffer_held, held);
                    job.buffer_bytes += text.len();
                    job.buffer.push(pb::LogLine { seq: job.next_seq, time: Some(now()), stream: stream as i32, text });
                    job.next_seq += 1;
                    if job.buffer.len() >= CHUNK_LINES || job.buffer_bytes >= CHUNK_BYTES {
                        job.cut_chunk(task.task_id);
                    }
                }
                Event::Exited { outcome, exit_code, error } => {
                    let fin = pb::TaskFinished {
                        task: Some(task),
                        outcome: outcome as i32,
                        exit_code,
                        error,
                        time: Some(now()),
                    };
                    job.finished = Some((fin, false));
                }
            }
            drop(state);
            self.inner.changed.notify_one();
        }
    }
}
