//! One runner's stream, once `runner_api.rs` has authenticated the runner and checked its hello:
//! adopt or stop the tasks it reports, then take heartbeats, log chunks and reports, acknowledge
//! what is durable, and tell it to stop anything that is not its to report on. Every report is
//! fenced by (task, epoch, this runner) in the store: a runner can act only on its own work.

use std::collections::HashMap;
use std::time::Duration;

use baton_core::{Coded, TaskStatus};
use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::{self as pb, Ack, RunnerMessage, ServerMessage, Stop, TaskRef, Welcome, ack, server_message};
use baton_store::dispatcher::batch::Start;
use baton_store::dispatcher::logs::Appended;
use baton_store::dispatcher::reports::{Accepted, Fence, Finish};
use baton_store::dispatcher::tasks::Lost;
use baton_store::entity::runner;
use baton_store::{LogLine, LogStream};
use futures::FutureExt;
use futures::future::join_all;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use crate::outbox::Outbox;
use crate::registry::{Conn, Held};
use crate::runner_api::truncate;
use crate::{Service, events};

/// The longest error text of a finished report that is kept.
const MAX_ERROR: usize = 4096;
/// How often the session checks that the runner takes its messages.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A checked hello: what the stream is opened with.
#[derive(Debug)]
pub struct Opening {
    pub protocol_version: u32,
    pub version: String,
    /// The granted labels, narrowed by the hello.
    pub labels: Vec<String>,
    /// Clamped into 1–1024.
    pub capacity: usize,
    pub running: Vec<TaskRef>,
    pub resumed: bool,
}

pub struct Session {
    svc: Service,
    runner_id: i64,
    outbox: Outbox,
    session: u64,
}

/// Opens the session and serves it until the stream ends or the runner is cut off. A failure to
/// open ends the stream with its reason.
pub async fn run(session: Session, opening: Opening, row: runner::Model, inbound: Streaming<RunnerMessage>) {
    let outbox = session.outbox.clone();
    match session.open(opening, row).await {
        Ok(s) => s.serve(inbound).await,
        Err(status) => outbox.close(status),
    }
}

impl Session {
    pub fn new(svc: Service, runner_id: i64, outbox: Outbox) -> Session {
        Session { svc, runner_id, outbox, session: 0 }
    }

    /// Records the runner, reconciles what it runs with SQL, registers it, and welcomes it.
    async fn open(mut self, hello: Opening, row: runner::Model) -> Result<Session, Status> {
        let inner = &self.svc.inner;
        let hello_row = baton_store::dispatcher::runners::Hello {
            node_id: &inner.opts.node_id,
            version: &hello.version,
            capacity: hello.capacity as i32,
        };
        inner.tables.runner_connected(self.runner_id, hello_row).await.map_err(|e| e.to_status())?;
        let held = self.reconcile(&hello.running, hello.resumed).await?;
        let conn = Conn {
            session: 0,
            outbox: self.outbox.clone(),
            labels: hello.labels.clone(),
            capacity: hello.capacity,
            held,
            project_id: row.project_id,
            draining: false,
            paused: row.paused,
        };
        self.session = inner.registry.insert(self.runner_id, conn);
        let welcome = Welcome {
            protocol_version: hello.protocol_version.min(baton_proto::RUNNER_PROTOCOL_VERSION),
            runner_id: self.runner_id,
            node_id: inner.opts.node_id.clone(),
            heartbeat_seconds: inner.opts.heartbeat.as_secs().max(1) as u32,
        };
        self.send(server_message::Msg::Welcome(welcome)).await;
        tracing::info!(runner_id = self.runner_id, version = %hello.version, capacity = hello.capacity, resumed = hello.resumed, "runner connected");
        events::wake_here(&self.svc);
        Ok(self)
    }

    /// Adopts the reported tasks whose epoch still holds, stops the others, and settles the tasks
    /// SQL says this runner holds but it does not report. A resumed runner never received those
    /// (their assignment died with a node or a stream): they go back to the queue as they were.
    /// A fresh runner process may have started them before its predecessor died: they are lost.
    async fn reconcile(&self, running: &[TaskRef], resumed: bool) -> Result<HashMap<i64, Held>, Status> {
        let tables = &self.svc.inner.tables;
        // Only this runner's tasks: a hello naming another runner's task adopts nothing.
        let active = tables.tasks_of_runner(self.runner_id).await.map_err(|e| e.to_status())?;
        let mut held = HashMap::new();
        for r in running {
            if let Some(t) = active.iter().find(|t| t.id == r.task_id && t.epoch == r.epoch) {
                held.insert(
                    r.task_id,
                    Held {
                        epoch: r.epoch,
                        project_id: t.project_id,
                        awaiting_start: Held::first_start(t),
                        last_seq: None,
                    },
                );
            } else {
                self.stop(*r, "the task is no longer assigned to this runner").await;
            }
        }
        for t in active.iter().filter(|t| !held.contains_key(&t.id)) {
            let outcome = if resumed && t.status == TaskStatus::Assigned.as_str() {
                tracing::info!(
                    runner_id = self.runner_id,
                    task_id = t.id,
                    epoch = t.epoch,
                    "assignment never reached the runner; queued again"
                );
                tables.unassign(t.id, t.epoch).await
            } else {
                tables.lose(t.id, t.epoch, "the runner restarted without it").await
            };
            events::attempt_ended(&self.svc, t.project_id, t.id, outcome).await;
        }
        Ok(held)
    }

    async fn serve(self, mut inbound: Streaming<RunnerMessage>) {
        let mut watch = self.outbox.watch();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        let mut end = None;
        while end.is_none() {
            let msg = tokio::select! {
                m = inbound.next() => m,
                _ = self.outbox.closed() => break,
                _ = tick.tick() => {
                    if watch.stalled(&self.outbox) {
                        tracing::warn!(runner_id = self.runner_id, "runner stopped reading its stream; disconnecting it");
                        self.outbox.close(Status::unavailable("this runner stopped reading its stream; reconnect"));
                        break;
                    }
                    continue;
                }
            };
            let mut batch = Vec::new();
            end = take(msg, &mut batch);
            // What else has arrived already goes with it: reports of many tasks are stored
            // together (see `batch`).
            while end.is_none() && batch.len() < MAX_BATCH {
                let Some(next) = inbound.next().now_or_never() else { break };
                end = take(next, &mut batch);
            }
            // A busy runner's reports wait a moment for others (group commit): one transaction
            // for many ends costs far less than one each. An idle runner's are stored at once.
            if end.is_none() && self.busy() {
                let until = tokio::time::Instant::now() + LINGER;
                while end.is_none() && batch.len() < MAX_BATCH {
                    let Ok(next) = tokio::time::timeout_at(until, inbound.next()).await else { break };
                    end = take(next, &mut batch);
                }
            }
            if let Some(End::Broke(e)) = &end {
                tracing::info!(runner_id = self.runner_id, error = %e, "runner stream broke");
            }
            if let Err(e) = self.handle_all(batch).await {
                // The database is the likely cause: drop the stream, the runner reconnects and
                // re-sends everything unacknowledged.
                tracing::warn!(runner_id = self.runner_id, error = %e, "cannot handle runner message; closing its stream");
                self.outbox.close(Status::unavailable(e.to_string()));
                break;
            }
        }
        self.svc.inner.registry.remove(self.runner_id, self.session);
        tracing::info!(runner_id = self.runner_id, "runner disconnected");
    }

    /// Handles messages that arrived together: their started and finished reports are each
    /// stored in one go when that keeps every task's own reports in order; otherwise one by one.
    async fn handle_all(&self, batch: Vec<Msg>) -> crate::Result<()> {
        if batch.len() < 2 || !crate::batch::in_phases(&batch) {
            for m in batch {
                self.handle(m).await?;
            }
            return Ok(());
        }
        let (mut started, mut finished, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for m in batch {
            match m {
                Msg::Started(s) => started.push(s),
                Msg::Finished(f) => finished.push(f),
                other => others.push(other),
            }
        }
        self.on_started_all(started).await?;
        for m in others {
            self.handle(m).await?;
        }
        self.on_finished_all(finished).await
    }

    async fn on_started_all(&self, reports: Vec<pb::TaskStarted>) -> crate::Result<()> {
        let starts: Vec<Start> =
            reports.iter().filter_map(|s| Some(Start { fence: self.fence(s.task?), at: started_at(s) })).collect();
        let answers = self.svc.inner.tables.report_started_many(&starts).await?;
        // Side by side, so their notices leave together (one pipeline to Redis) and in order.
        join_all(starts.iter().zip(answers).map(|(s, answer)| self.on_started_answer(task_ref(s.fence), answer))).await;
        Ok(())
    }

    async fn on_started_answer(&self, task: TaskRef, answer: Option<Accepted>) {
        let Some(accepted) = answer else {
            return self.stop(task, "not this runner's task at this epoch").await;
        };
        self.count_start(task.task_id);
        self.ack(ack::What::Started(task), 0).await;
        if let Some(project_id) = self.held_project(task.task_id) {
            let running = TaskStatus::Running.as_str();
            events::row_changed(&self.svc, project_id, task.task_id, running, accepted.row.as_ref()).await;
        }
    }

    /// Ends reported together: those with a final outcome whose project this node knows are
    /// stored in one transaction; the rest (given up, or re-sent after a restart) one by one.
    async fn on_finished_all(&self, reports: Vec<pb::TaskFinished>) -> crate::Result<()> {
        let mut ends = Vec::new();
        for f in reports {
            let (Some(task), Some(status)) = (f.task, final_status(&f)) else {
                self.on_finished(f).await?;
                continue;
            };
            let Some(project_id) = self.held_project(task.task_id) else {
                self.on_finished(f).await?;
                continue;
            };
            let error = (!f.error.is_empty()).then(|| truncate(&f.error, MAX_ERROR).to_owned());
            let node_id = Some(self.svc.inner.opts.node_id.clone());
            ends.push((project_id, Finish { fence: self.fence(task), status, exit_code: f.exit_code, error, node_id }));
        }
        if ends.is_empty() {
            return Ok(());
        }
        let finishes: Vec<Finish> = ends.iter().map(|(_, f)| f.clone()).collect();
        let answers = self.svc.inner.tables.report_finished_many(&finishes).await?;
        join_all(ends.into_iter().zip(answers).map(|((project_id, f), answer)| {
            self.on_finished_answer(project_id, task_ref(f.fence), Some(f.status), answer)
        }))
        .await;
        events::wake_here(&self.svc);
        Ok(())
    }

    /// Whether this runner holds enough tasks that its reports are worth batching.
    fn busy(&self) -> bool {
        self.svc.inner.registry.with(self.runner_id, |c| c.held.len() >= BUSY).unwrap_or(false)
    }

    /// The attempt a report of this runner names.
    fn fence(&self, task: TaskRef) -> Fence {
        Fence { task_id: task.task_id, epoch: task.epoch, runner_id: self.runner_id }
    }

    async fn handle(&self, msg: Msg) -> crate::Result<()> {
        let tables = &self.svc.inner.tables;
        match msg {
            Msg::Heartbeat(_) => self.svc.inner.heard.note(self.runner_id, baton_store::now_ms()),
            Msg::Draining(_) => {
                self.svc.inner.registry.with(self.runner_id, |c| c.draining = true);
            }
            Msg::Log(chunk) => self.on_log(chunk).await?,
            Msg::Started(s) => {
                let Some(task) = s.task else { return Ok(()) };
                let answer = tables.report_started(self.fence(task), started_at(&s)).await?;
                self.on_started_answer(task, answer).await;
            }
            Msg::Finished(f) => self.on_finished(f).await?,
            Msg::Hello(_) => {}
        }
        Ok(())
    }

    async fn on_log(&self, chunk: pb::LogChunk) -> crate::Result<()> {
        let Some(task) = chunk.task else { return Ok(()) };
        let lines: Vec<LogLine> = chunk.lines.iter().map(line).collect();
        let Some(last) = lines.last().map(|l| l.seq) else { return Ok(()) };
        tracing::debug!(task_id = task.task_id, epoch = task.epoch, lines = lines.len(), "log chunk");
        let appended = self.svc.inner.tables.append_log(self.fence(task), &lines).await?;
        if appended != Appended::Stale {
            self.svc.inner.registry.with(self.runner_id, |c| {
                if let Some(h) = c.held.get_mut(&task.task_id).filter(|h| h.epoch == task.epoch) {
                    h.last_seq = h.last_seq.map(|s| s.max(last));
                }
            });
        }
        match appended {
            Appended::Stored => {
                self.ack(ack::What::Log(task), last).await;
                events::log_stored(&self.svc, task.task_id, &lines).await;
            }
            Appended::Duplicate => self.ack(ack::What::Log(task), last).await,
            Appended::Stale => self.stop(task, "not this runner's task at this epoch").await,
        }
        Ok(())
    }

    async fn on_finished(&self, f: pb::TaskFinished) -> crate::Result<()> {
        let Some(task) = f.task else { return Ok(()) };
        let tables = &self.svc.inner.tables;
        let status = final_status(&f);
        // Usually known from the assignment; a report re-sent after this node restarted is not.
        let project_id = match self.held_project(task.task_id) {
            Some(p) => p,
            None => match tables.task(task.task_id).await {
                Ok(t) => t.project_id,
                Err(baton_store::Error::NotFound(_)) => {
                    self.stop(task, "the task no longer exists").await;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
        };
        let error = (!f.error.is_empty()).then(|| truncate(&f.error, MAX_ERROR).to_owned());
        let fence = self.fence(task);
        match status {
            Some(status) => {
                let node_id = Some(self.svc.inner.opts.node_id.clone());
                let ended =
                    tables.report_finished(Finish { fence, status, exit_code: f.exit_code, error, node_id }).await?;
                self.on_finished_answer(project_id, task, Some(status), ended).await;
            }
            None => {
                let reason = error.unwrap_or_else(|| "the runner stopped it".into());
                // Acknowledged only once recorded: an error closes the stream and the runner
                // reports it again.
                let outcome = tables.give_up(fence, &reason).await?;
                events::attempt_ended(&self.svc, project_id, task.task_id, Ok(outcome)).await;
                // Stale: recorded before (a repeat), or not this runner's to give up.
                let done = (outcome != Lost::Stale).then(Accepted::default);
                self.on_finished_answer(project_id, task, None, done).await;
            }
        }
        events::wake_here(&self.svc);
        Ok(())
    }

    /// Announces, counts and acknowledges an end the store recorded (`answer`), or tells the
    /// runner to stop the attempt. `status` is none for a given-up attempt (announced and
    /// counted by `attempt_ended`).
    async fn on_finished_answer(
        &self,
        project_id: i64,
        task: TaskRef,
        status: Option<TaskStatus>,
        answer: Option<Accepted>,
    ) {
        let done = answer.is_some();
        if let (Some(accepted), Some(_)) = (&answer, status) {
            // The last line stored, when this node followed the attempt from its assignment.
            let last_seq = self
                .svc
                .inner
                .registry
                .with(self.runner_id, |c| {
                    c.held.get(&task.task_id).filter(|h| h.epoch == task.epoch).and_then(|h| h.last_seq)
                })
                .flatten();
            events::task_ended(&self.svc, project_id, task.task_id, last_seq, accepted.row.as_ref()).await;
        }
        if done {
            let was_held = self.svc.inner.registry.with(self.runner_id, |c| c.held.remove(&task.task_id)).flatten();
            // A repeated report (its acknowledgement was lost) finds the task no longer held:
            // each end is counted once. Given-up attempts were counted by `attempt_ended`.
            if let (Some(_), Some(status)) = (was_held, status) {
                self.svc.inner.metrics.task_finished(status);
            }
        }
        tracing::debug!(task_id = task.task_id, epoch = task.epoch, recorded = done, "end reported");
        if done {
            self.ack(ack::What::Finished(task), 0).await;
        } else {
            self.stop(task, "not this runner's task at this epoch").await;
        }
    }

    /// Records the dispatch latency of a task whose first attempt this runner started, once:
    /// measured on this node's clock (the runner's may be off), from the task's submission.
    fn count_start(&self, task_id: i64) {
        let submitted = self
            .svc
            .inner
            .registry
            .with(self.runner_id, |c| c.held.get_mut(&task_id).and_then(|h| h.awaiting_start.take()))
            .flatten();
        if let Some(submitted) = submitted {
            let waited = u64::try_from(baton_store::now_ms() - submitted).unwrap_or(0);
            self.svc.inner.metrics.task_started(Duration::from_millis(waited));
        }
    }

    /// The project of a task this runner holds, as remembered from its assignment or adoption.
    fn held_project(&self, task_id: i64) -> Option<i64> {
        self.svc.inner.registry.with(self.runner_id, |c| c.held.get(&task_id).map(|h| h.project_id)).flatten()
    }

    async fn ack(&self, what: ack::What, last_seq: i64) {
        self.send(server_message::Msg::Ack(Ack { what: Some(what), last_seq })).await;
    }

    async fn stop(&self, task: TaskRef, reason: &str) {
        tracing::info!(
            runner_id = self.runner_id,
            task_id = task.task_id,
            epoch = task.epoch,
            reason,
            "telling runner to stop a task"
        );
        // What it holds at a newer epoch (a report about an older attempt) stays held.
        self.svc.inner.registry.with(self.runner_id, |c| {
            if c.held.get(&task.task_id).is_some_and(|h| h.epoch <= task.epoch) {
                c.held.remove(&task.task_id);
            }
        });
        self.send(server_message::Msg::Stop(Stop { task: Some(task), reason: reason.to_owned() })).await;
    }

    /// Queues a reply; a runner that leaves no room for it is cut off (see `outbox.rs`), which
    /// ends this session.
    async fn send(&self, msg: server_message::Msg) {
        let _ = self.outbox.send(ServerMessage { msg: Some(msg) }).await;
    }
}

/// The most messages handled as one batch.
const MAX_BATCH: usize = 64;
/// How long a busy runner's messages wait for more to store with them. Acknowledgements and
/// events wait as long; scripts do not (they start when assigned, not when acknowledged).
const LINGER: Duration = Duration::from_millis(2);
/// A runner holding at least this many tasks is busy: its reports wait up to [`LINGER`].
const BUSY: usize = 8;

/// How a runner's stream ended.
enum End {
    Closed,
    Broke(Status),
}

/// Adds what the stream yielded to `batch`; the end of the stream, if that is what it was.
fn take(next: Option<Result<RunnerMessage, Status>>, batch: &mut Vec<Msg>) -> Option<End> {
    match next {
        Some(Ok(RunnerMessage { msg: Some(m) })) => {
            batch.push(m);
            None
        }
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(End::Broke(e)),
        None => Some(End::Closed),
    }
}

/// When the runner started the attempt, by its clock (this node's when it does not say).
fn started_at(s: &pb::TaskStarted) -> i64 {
    s.time.map_or_else(baton_store::now_ms, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// The final status an end reports; none for an attempt the runner gave up.
fn final_status(f: &pb::TaskFinished) -> Option<TaskStatus> {
    match pb::Outcome::try_from(f.outcome).unwrap_or(pb::Outcome::Unspecified) {
        pb::Outcome::Succeeded => Some(TaskStatus::Succeeded),
        pb::Outcome::Failed => Some(TaskStatus::Failed),
        pb::Outcome::Cancelled => Some(TaskStatus::Cancelled),
        pb::Outcome::TimedOut => Some(TaskStatus::TimedOut),
        pb::Outcome::Interrupted | pb::Outcome::Unspecified => None,
    }
}

fn line(l: &pb::LogLine) -> LogLine {
    let stream = match pb::Stream::try_from(l.stream) {
        Ok(pb::Stream::Stderr) => LogStream::Stderr,
        Ok(pb::Stream::System) => LogStream::System,
        _ => LogStream::Stdout,
    };
    let time_ms = l.time.as_ref().map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
    LogLine { seq: l.seq, time_ms, stream, text: l.text.clone() }
}

fn task_ref(f: Fence) -> TaskRef {
    TaskRef { task_id: f.task_id, epoch: f.epoch }
}
