//! One runner's stream. The runner authenticates with its id and secret, says hello (including
//! what it still runs), and then sends heartbeats, log chunks and reports; this side adopts or
//! stops the tasks it reports, acknowledges what is durable, and tells it to stop anything whose
//! epoch has moved on.

use std::collections::HashMap;
use std::pin::Pin;

use baton_core::{Coded, TaskStatus, token};
use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::{self as pb, Ack, RunnerMessage, ServerMessage, Stop, TaskRef, Welcome, ack, server_message};
use baton_store::dispatcher::logs::Appended;
use baton_store::dispatcher::tasks::Finish;
use baton_store::{LogLine, LogStream};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::registry::{Conn, Held, Outbox};
use crate::{Service, events};

/// Messages queued for one runner before the sender waits.
const OUTBOX: usize = 256;

pub struct RunnerApi {
    svc: Service,
}

impl RunnerApi {
    pub fn new(svc: Service) -> RunnerApi {
        RunnerApi { svc }
    }
}

type ServerStream = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::runner_server::Runner for RunnerApi {
    type AttachStream = ServerStream;

    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() || r.name.len() > 100 {
            return Err(Status::invalid_argument("name: give the runner a name of 1 to 100 characters"));
        }
        if let Some(bad) = r.labels.iter().find(|l| !baton_core::names::valid_label(l)) {
            return Err(Status::invalid_argument(format!("labels: {bad:?} is not a valid label")));
        }
        let secret = token::generate("brs_");
        let digest = token::digest(&secret);
        let spec = baton_store::dispatcher::runners::RunnerSpec {
            name: &r.name,
            labels: &r.labels,
            capacity: r.capacity.clamp(1, 1024) as i32,
            secret_hash: &digest,
        };
        let registered = self
            .svc
            .inner
            .tables
            .register_runner(&token::digest(&r.token), spec)
            .await
            .map_err(|e| e.to_status())?
            .ok_or_else(|| {
                Status::unauthenticated("unknown or expired registration token; ask an admin for a new one")
            })?;
        tracing::info!(runner_id = registered.runner.id, name = %r.name, "runner registered");
        Ok(Response::new(pb::RegisterResponse { runner_id: registered.runner.id, secret, labels: registered.labels }))
    }

    async fn attach(&self, req: Request<Streaming<RunnerMessage>>) -> Result<Response<ServerStream>, Status> {
        if self.svc.is_draining() {
            return Err(Status::unavailable("this node is draining; connect to another one"));
        }
        let runner_id = authenticate(&self.svc, &req).await?;
        let mut inbound = req.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(RunnerMessage { msg: Some(Msg::Hello(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("the first message on a runner stream must be hello")),
        };
        if hello.protocol_version == 0 {
            return Err(Status::invalid_argument("hello.protocol_version is 0; upgrade the runner"));
        }
        let (tx, rx) = mpsc::channel(OUTBOX);
        let session = Session { svc: self.svc.clone(), runner_id, outbox: tx.clone(), session: 0 };
        let session = session.open(hello).await?;
        tokio::spawn(session.serve(inbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Checks `x-baton-runner-id` and the bearer secret against the stored digest.
async fn authenticate<T>(svc: &Service, req: &Request<T>) -> Result<i64, Status> {
    let md = req.metadata();
    let id = md
        .get("x-baton-runner-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| Status::unauthenticated("missing x-baton-runner-id"))?;
    let secret = md
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("missing runner secret"))?;
    let runner = match svc.inner.tables.runner(id).await {
        Ok(r) => r,
        Err(e) if e.code() == baton_core::ErrorCode::NotFound => {
            return Err(Status::unauthenticated("unknown runner or wrong secret"));
        }
        Err(e) => return Err(e.to_status()),
    };
    if runner.revoked || !token::verify(secret, &runner.secret_hash) {
        return Err(Status::unauthenticated("unknown runner or wrong secret"));
    }
    Ok(id)
}

struct Session {
    svc: Service,
    runner_id: i64,
    outbox: Outbox,
    session: u64,
}

impl Session {
    /// Records the runner, reconciles what it runs with SQL, registers it, and welcomes it.
    async fn open(mut self, hello: pb::Hello) -> Result<Session, Status> {
        let inner = &self.svc.inner;
        let row = inner.tables.runner(self.runner_id).await.map_err(|e| e.to_status())?;
        let hello_row = baton_store::dispatcher::runners::Hello {
            node_id: &inner.opts.node_id,
            version: &hello.version,
            labels: &hello.labels,
            capacity: hello.capacity as i32,
        };
        inner.tables.runner_connected(self.runner_id, hello_row).await.map_err(|e| e.to_status())?;
        let held = self.reconcile(&hello.running, hello.resumed).await?;
        let conn = Conn {
            session: 0,
            outbox: self.outbox.clone(),
            labels: hello.labels.clone(),
            capacity: hello.capacity.max(1) as usize,
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
        let active = tables.tasks_of_runner(self.runner_id).await.map_err(|e| e.to_status())?;
        let mut held = HashMap::new();
        for r in running {
            if let Some(t) = active.iter().find(|t| t.id == r.task_id && t.epoch == r.epoch) {
                held.insert(r.task_id, Held { epoch: r.epoch, project_id: t.project_id });
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
        loop {
            let msg = match inbound.next().await {
                Some(Ok(RunnerMessage { msg: Some(m) })) => m,
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::info!(runner_id = self.runner_id, error = %e, "runner stream broke");
                    break;
                }
                None => break,
            };
            if let Err(e) = self.handle(msg).await {
                // The database is the likely cause: drop the stream, the runner reconnects and
                // re-sends everything unacknowledged.
                tracing::warn!(runner_id = self.runner_id, error = %e, "cannot handle runner message; closing its stream");
                let _ = self.outbox.send(Err(Status::unavailable(e.to_string()))).await;
                break;
            }
        }
        self.svc.inner.registry.remove(self.runner_id, self.session);
        tracing::info!(runner_id = self.runner_id, "runner disconnected");
    }

    async fn handle(&self, msg: Msg) -> crate::Result<()> {
        let tables = &self.svc.inner.tables;
        match msg {
            Msg::Heartbeat(_) => tables.runner_seen(self.runner_id).await?,
            Msg::Draining(_) => {
                self.svc.inner.registry.with(self.runner_id, |c| c.draining = true);
            }
            Msg::Log(chunk) => self.on_log(chunk).await?,
            Msg::Started(s) => {
                let Some(task) = s.task else { return Ok(()) };
                let at = s.time.map_or_else(baton_store::now_ms, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
                if tables.mark_running(task.task_id, task.epoch, at).await? {
                    self.ack(ack::What::Started(task), 0).await;
                    if let Some(project_id) = self.held_project(task.task_id) {
                        events::task_changed(&self.svc, project_id, task.task_id, TaskStatus::Running.as_str()).await;
                    }
                } else {
                    self.stop(task, "stale epoch").await;
                }
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
        let t0 = std::time::Instant::now();
        let appended = self.svc.inner.tables.append_log(task.task_id, task.epoch, &lines).await?;
        tracing::debug!(task_id = task.task_id, took_us = t0.elapsed().as_micros() as u64, "log chunk stored");
        match appended {
            Appended::Stored | Appended::Duplicate => self.ack(ack::What::Log(task), last).await,
            Appended::Stale => self.stop(task, "stale epoch").await,
        }
        Ok(())
    }

    async fn on_finished(&self, f: pb::TaskFinished) -> crate::Result<()> {
        let Some(task) = f.task else { return Ok(()) };
        let tables = &self.svc.inner.tables;
        let outcome = pb::Outcome::try_from(f.outcome).unwrap_or(pb::Outcome::Unspecified);
        let status = match outcome {
            pb::Outcome::Succeeded => Some(TaskStatus::Succeeded),
            pb::Outcome::Failed => Some(TaskStatus::Failed),
            pb::Outcome::Cancelled => Some(TaskStatus::Cancelled),
            pb::Outcome::TimedOut => Some(TaskStatus::TimedOut),
            pb::Outcome::Interrupted | pb::Outcome::Unspecified => None,
        };
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
        let error = (!f.error.is_empty()).then(|| f.error.clone());
        let done = match status {
            Some(status) => {
                let fin = Finish { task_id: task.task_id, epoch: task.epoch, status, exit_code: f.exit_code, error };
                let ok = tables.finish(fin).await?;
                if ok {
                    events::task_changed(&self.svc, project_id, task.task_id, status.as_str()).await;
                }
                ok
            }
            None => {
                let reason = error.unwrap_or_else(|| "the runner stopped it".into());
                let outcome = tables.lose(task.task_id, task.epoch, &reason).await;
                events::attempt_ended(&self.svc, project_id, task.task_id, outcome).await;
                true
            }
        };
        self.svc.inner.registry.with(self.runner_id, |c| c.held.remove(&task.task_id));
        tracing::debug!(task_id = task.task_id, epoch = task.epoch, recorded = done, "end reported");
        if done {
            self.ack(ack::What::Finished(task), 0).await;
        } else {
            self.stop(task, "stale epoch").await;
        }
        events::wake_here(&self.svc);
        Ok(())
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
        self.svc.inner.registry.with(self.runner_id, |c| c.held.remove(&task.task_id));
        self.send(server_message::Msg::Stop(Stop { task: Some(task), reason: reason.to_owned() })).await;
    }

    async fn send(&self, msg: server_message::Msg) {
        let _ = self.outbox.send(Ok(ServerMessage { msg: Some(msg) })).await;
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
