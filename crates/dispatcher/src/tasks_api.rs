//! The internal `Tasks` gRPC service: create, cancel and sweep tasks on behalf of the gateway and
//! the scheduler. Every call must carry the cluster secret.

use baton_core::{Coded, TaskStatus, token};
use baton_proto::v1::{self as pb, tasks_server::Tasks};
use baton_store::TaskSpec;
use baton_store::dispatcher::fires::{FireKey, Fired};
use baton_store::dispatcher::retention::Keep;
use baton_store::dispatcher::runners::{NewRegistrationToken, RunnerSpec};
use baton_store::dispatcher::tasks::{Cancel, Lost, NewTask};
use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::{Error, Service, events};

pub struct TasksApi {
    svc: Service,
}

impl TasksApi {
    pub fn new(svc: Service) -> TasksApi {
        TasksApi { svc }
    }

    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        baton_core::internal::check(req, &self.svc.inner.opts.cluster_secret)
    }
}

/// A database ping slower than this, while the pool opened a connection, is taken for an
/// outage that just ended.
const SLOW_PING: std::time::Duration = std::time::Duration::from_secs(1);

impl TasksApi {
    /// Whether the database has been reachable for at least `lease` (see `db_reachable_since`).
    async fn database_steady(&self, lease: std::time::Duration) -> Result<bool, Status> {
        let tables = &self.svc.inner.tables;
        let (asked, opened) = (std::time::Instant::now(), tables.connections_opened());
        let ping = tables.ping().await;
        let mut since = self.svc.inner.db_reachable_since.lock().unwrap_or_else(|e| e.into_inner());
        match ping {
            Err(e) => {
                *since = None;
                Err(e.to_status())
            }
            // A ping that waited while the pool opened a connection may have waited out a whole
            // outage that no ping saw fail (the pool retries a refused connection until its
            // acquire timeout): reachability starts when it was answered. One that only waited
            // for a busy pool says nothing of the kind, and must not hold expiries back.
            Ok(()) if asked.elapsed() >= SLOW_PING && tables.connections_opened() != opened => {
                *since = Some(std::time::Instant::now());
                Ok(false)
            }
            Ok(()) => Ok(since.get_or_insert_with(std::time::Instant::now).elapsed() >= lease),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Status {
    Error::Invalid { field, message: message.into() }.into()
}

fn new_task(spec: pb::TaskSpec) -> Result<NewTask, Status> {
    if spec.script.trim().is_empty() {
        return Err(invalid("spec.script", "is empty"));
    }
    if spec.project_id <= 0 || spec.template_id <= 0 {
        return Err(invalid("spec.project_id", "project and template ids must be positive"));
    }
    Ok(NewTask {
        project_id: spec.project_id,
        template_id: spec.template_id,
        priority: spec.priority,
        max_attempts: spec.max_attempts.clamp(1, 100) as i32,
        template_max_parallel: spec.template_max_parallel as i32,
        project_max_parallel: spec.project_max_parallel as i32,
        schedule_id: spec.schedule_id,
        created_by: spec.created_by,
        spec: TaskSpec {
            script: spec.script,
            shell: if spec.shell.is_empty() { "bash".into() } else { spec.shell },
            env: spec.env.into_iter().collect(),
            labels: spec.labels,
            timeout_seconds: spec.timeout_seconds,
            secrets: spec.secrets,
        },
    })
}

#[tonic::async_trait]
impl Tasks for TasksApi {
    async fn submit_task(
        &self,
        req: Request<pb::SubmitTaskRequest>,
    ) -> Result<Response<pb::SubmitTaskResponse>, Status> {
        self.check(&req)?;
        let req = req.into_inner();
        let spec = req.spec.ok_or_else(|| invalid("spec", "is missing"))?;
        let new = new_task(spec)?;
        let tables = &self.svc.inner.tables;
        let (task, fire) = match req.fire {
            None => (tables.create_task(new).await.map_err(|e| e.to_status())?, pb::FireOutcome::Unspecified),
            Some(f) => {
                let key =
                    FireKey { schedule_id: f.schedule_id, due_at: f.due_at_ms, skip_if_running: f.skip_if_running };
                match tables.create_task_for_fire(new, key).await.map_err(|e| e.to_status())? {
                    Fired::Created(task) => (*task, pb::FireOutcome::Fired),
                    Fired::Already => {
                        return Ok(Response::new(pb::SubmitTaskResponse {
                            fire: pb::FireOutcome::Already.into(),
                            ..Default::default()
                        }));
                    }
                    Fired::Skipped(reason) => {
                        tracing::info!(schedule_id = f.schedule_id, due_at = f.due_at_ms, %reason, "fire skipped");
                        return Ok(Response::new(pb::SubmitTaskResponse {
                            fire: pb::FireOutcome::Skipped.into(),
                            reason,
                            ..Default::default()
                        }));
                    }
                }
            }
        };
        tracing::debug!(task_id = task.id, project_id = task.project_id, "task queued");
        self.svc.inner.metrics.task_submitted();
        events::queued(&self.svc, baton_coord::Queued { task_id: task.id, priority: task.priority }).await;
        events::row_changed(&self.svc, task.project_id, task.id, TaskStatus::Queued.as_str(), Some(&task)).await;
        let row = serde_json::to_vec(&task).unwrap_or_default();
        Ok(Response::new(pb::SubmitTaskResponse { task_id: task.id, fire: fire.into(), reason: String::new(), row }))
    }

    async fn cancel_task(
        &self,
        req: Request<pb::CancelTaskRequest>,
    ) -> Result<Response<pb::CancelTaskResponse>, Status> {
        self.check(&req)?;
        let id = req.into_inner().task_id;
        let tables = &self.svc.inner.tables;
        let status = match tables.cancel(id).await.map_err(|e| e.to_status())? {
            Cancel::Cancelled => {
                self.svc.inner.metrics.task_finished(TaskStatus::Cancelled);
                let _ = self.svc.inner.coord.dequeue(&[id]).await;
                TaskStatus::Cancelled.as_str().to_owned()
            }
            Cancel::Requested { .. } => {
                // Whichever dispatcher holds the runner's stream forwards it; this one may be it.
                events::send_cancel(&self.svc, id).await;
                let _ = self.svc.inner.coord.publish(baton_coord::topic::CANCEL, Bytes::from(id.to_string())).await;
                tables.task(id).await.map_err(|e| e.to_status())?.status
            }
        };
        if let Ok(t) = tables.task(id).await {
            events::task_changed(&self.svc, t.project_id, id, &t.status).await;
        }
        Ok(Response::new(pb::CancelTaskResponse { status }))
    }

    async fn sweep(&self, req: Request<pb::SweepRequest>) -> Result<Response<pb::SweepResponse>, Status> {
        self.check(&req)?;
        let tables = &self.svc.inner.tables;
        let lease = self.svc.inner.opts.lease;
        if !self.database_steady(lease).await? {
            return Ok(Response::new(pb::SweepResponse::default()));
        }
        let cutoff = baton_store::now_ms() - lease.as_millis() as i64;
        let expired = tables.expired_leases(cutoff).await.map_err(|e| e.to_status())?;
        let mut resp = pb::SweepResponse::default();
        for t in expired {
            let outcome = tables.lose(t.id, t.epoch, "the runner's lease expired").await.map_err(|e| e.to_status())?;
            if outcome == Lost::Stale {
                continue;
            }
            tracing::info!(task_id = t.id, epoch = t.epoch, runner_id = ?t.runner_id, ?outcome, "runner lease expired");
            events::count_end(&self.svc, outcome);
            self.svc
                .inner
                .registry
                .holder(t.id)
                .map(|(rid, _)| self.svc.inner.registry.with(rid, |c| c.held.remove(&t.id)));
            resp.lost += 1;
            if outcome == Lost::Requeued {
                resp.requeued += 1;
                events::requeue(&self.svc, t.id).await;
            }
            let st = tables.task(t.id).await.map(|t| t.status).unwrap_or_default();
            events::task_changed(&self.svc, t.project_id, t.id, &st).await;
        }
        Ok(Response::new(resp))
    }

    async fn purge_project(
        &self,
        req: Request<pb::PurgeProjectRequest>,
    ) -> Result<Response<pb::PurgeProjectResponse>, Status> {
        self.check(&req)?;
        let pid = req.into_inner().project_id;
        let n = self.svc.inner.tables.purge_project(pid).await.map_err(|e| e.to_status())?;
        Ok(Response::new(pb::PurgeProjectResponse { tasks_deleted: n }))
    }

    async fn retain(&self, req: Request<pb::RetainRequest>) -> Result<Response<pb::RetainResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let keep = Keep { finished_after: r.finished_before_ms, per_template: r.keep_per_template };
        let batch = u64::from(r.batch.clamp(1, 1000));
        let deleted = self.svc.inner.tables.retain_batch(keep, batch).await.map_err(|e| e.to_status())?;
        Ok(Response::new(pb::RetainResponse { deleted }))
    }

    async fn create_registration_token(
        &self,
        req: Request<pb::CreateRegistrationTokenRequest>,
    ) -> Result<Response<pb::CreateRegistrationTokenResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        if let Some(bad) = r.labels.iter().find(|l| !baton_core::names::valid_label(l)) {
            return Err(invalid("labels", format!("{bad:?} is not a valid label")));
        }
        let ttl = if r.expires_in_seconds == 0 { 3600 } else { r.expires_in_seconds.min(365 * 86_400) };
        let token = token::generate("brt_");
        let expires_at = baton_store::now_ms() + ttl as i64 * 1000;
        let new = NewRegistrationToken {
            token_hash: &token::digest(&token),
            labels: &r.labels,
            project_id: r.project_id,
            expires_at,
            // Single use unless asked otherwise: a leaked token then registers at most one runner.
            max_uses: r.max_uses.unwrap_or(1).min(i32::MAX as u32) as i32,
        };
        let row = self.svc.inner.tables.create_registration_token(new).await.map_err(|e| e.to_status())?;
        Ok(Response::new(pb::CreateRegistrationTokenResponse { id: row.id, token, expires_at_ms: expires_at }))
    }

    async fn set_runner_paused(
        &self,
        req: Request<pb::SetRunnerPausedRequest>,
    ) -> Result<Response<pb::SetRunnerPausedResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        self.svc.inner.tables.set_runner_paused(r.runner_id, r.paused).await.map_err(|e| e.to_status())?;
        events::announce_runner(&self.svc, r.runner_id, events::RunnerChange::Paused(r.paused)).await;
        Ok(Response::new(pb::SetRunnerPausedResponse {}))
    }

    async fn revoke_runner(
        &self,
        req: Request<pb::RevokeRunnerRequest>,
    ) -> Result<Response<pb::RevokeRunnerResponse>, Status> {
        self.check(&req)?;
        let id = req.into_inner().runner_id;
        self.svc.inner.tables.revoke_runner(id).await.map_err(|e| e.to_status())?;
        events::announce_runner(&self.svc, id, events::RunnerChange::Revoked).await;
        Ok(Response::new(pb::RevokeRunnerResponse {}))
    }

    async fn ensure_runner(
        &self,
        req: Request<pb::EnsureRunnerRequest>,
    ) -> Result<Response<pb::EnsureRunnerResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(invalid("name", "is empty"));
        }
        let secret = token::generate("brs_");
        let digest = token::digest(&secret);
        let capacity = crate::runner_api::clamp_capacity(r.capacity);
        let spec = RunnerSpec { name: &r.name, labels: &r.labels, capacity, secret_hash: &digest };
        let row = self.svc.inner.tables.ensure_runner(spec).await.map_err(|e| e.to_status())?;
        Ok(Response::new(pb::EnsureRunnerResponse { runner_id: row.id, secret }))
    }
}
