//! Handing a claimed task to the runner chosen for it: the assignment message with the task's
//! script, environment and opened secrets, offered to the runner's stream without waiting.

use std::collections::HashMap;

use baton_core::TaskStatus;
use baton_core::sealed::secret_aad;
use baton_proto::v1::{Assignment, ServerMessage, TaskRef, server_message};
use baton_store::TaskSpec;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::entity::task;

use crate::registry::{Held, Outbox};
use crate::{Service, events};

/// A queued task and the runner of this node chosen for it, before the claim.
pub struct Choice {
    pub t: task::Model,
    pub spec: TaskSpec,
    pub runner_id: i64,
    pub session: u64,
    pub outbox: Outbox,
    pub secrets: Result<HashMap<String, String>, String>,
}

/// Hands a claimed task (`row`, as the claim left it) to its runner, and returns the row to
/// announce. `None` when it could not be: its secrets cannot be opened (it is ended, saying
/// why), or the runner's stream is gone (it goes back to the queue).
pub async fn send(svc: &Service, c: Choice, row: task::Model) -> crate::Result<Option<task::Model>> {
    let inner = &svc.inner;
    let (t, runner_id, epoch) = (&c.t, c.runner_id, row.epoch);
    let secrets = match c.secrets {
        Ok(s) => s,
        Err(why) => {
            // Nothing can run it as asked: end it now, saying why, instead of retrying forever.
            let fence = Fence { task_id: t.id, epoch, runner_id };
            // The runner was picked from this node's registry: its stream is here.
            let node_id = Some(inner.opts.node_id.clone());
            let fin = Finish { fence, status: TaskStatus::Failed, exit_code: None, error: Some(why), node_id };
            let ended = inner.tables.report_finished(fin).await?;
            if ended.is_some() {
                inner.metrics.task_finished(TaskStatus::Failed);
            }
            let row = ended.and_then(|a| a.row);
            events::row_changed(svc, t.project_id, t.id, TaskStatus::Failed.as_str(), row.as_ref()).await;
            return Ok(None);
        }
    };
    // A first attempt has no lines yet; later ones continue the numbering.
    let first_seq = if t.attempt <= 1 { 1 } else { inner.tables.next_log_seq(t.id).await? };
    let msg = assignment(t, TaskRef { task_id: t.id, epoch }, first_seq, (c.spec, secrets));
    let last_seq = Some(first_seq - 1);
    let held = Held { epoch, project_id: t.project_id, awaiting_start: Held::first_start(t), last_seq };
    let registered = inner.registry.with_session(runner_id, c.session, |r| r.held.insert(t.id, held)).is_some();
    tracing::debug!(task_id = t.id, epoch, runner_id, "assigned");
    // Offered, never awaited: one runner that stopped reading must not stall placement for
    // every other runner of this node. It is cut off instead.
    if !registered || c.outbox.offer(msg).is_err() {
        // The stream ended, was replaced since the pick, or its runner was cut off: the
        // runner never gets this assignment, so the task goes back to the queue as it was.
        inner.registry.with_session(runner_id, c.session, |r| r.held.remove(&t.id));
        let outcome = inner.tables.unassign(t.id, epoch).await;
        events::attempt_ended(svc, t.project_id, t.id, outcome).await;
        return Ok(None);
    }
    Ok(Some(row))
}

/// The values of the project secrets a task uses, decrypted; the error says which one is missing
/// or cannot be opened.
pub async fn open_secrets(svc: &Service, project_id: i64, names: &[String]) -> Result<HashMap<String, String>, String> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let rows =
        svc.inner.tables.project_secrets(project_id).await.map_err(|e| format!("cannot read project secrets: {e}"))?;
    let mut out = HashMap::new();
    for name in names {
        let row = rows
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| format!("secret {name:?} no longer exists in the project"))?;
        let value = svc
            .inner
            .opts
            .seal_key
            .open(&row.sealed, &secret_aad(project_id, name))
            .map_err(|e| format!("secret {name:?}: {e}"))?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// The message that hands `t` at `at` to a runner: what to run (`spec`, with the opened
/// `secrets`), numbering its lines from `first_seq`.
fn assignment(
    t: &task::Model,
    at: TaskRef,
    first_seq: i64,
    (spec, secrets): (TaskSpec, HashMap<String, String>),
) -> ServerMessage {
    ServerMessage {
        msg: Some(server_message::Msg::Assign(Assignment {
            task: Some(at),
            project_id: t.project_id,
            template_id: t.template_id,
            attempt: t.attempt as u32,
            script: spec.script,
            shell: spec.shell,
            env: spec.env.into_iter().collect(),
            timeout_seconds: spec.timeout_seconds,
            first_seq,
            secrets,
        })),
    }
}
