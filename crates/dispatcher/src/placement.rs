//! The placement loop: when woken (a task was queued, a slot freed up) or once a second, it reads
//! the head of the queue from SQL and assigns what fits to the runners connected here. The SQL
//! claim decides; another dispatcher claiming the same task first is normal and harmless.

use std::collections::HashMap;
use std::time::Duration;

use baton_core::TaskStatus;
use baton_core::sealed::secret_aad;
use baton_proto::v1::{Assignment, ServerMessage, TaskRef, server_message};
use baton_store::TaskSpec;
use baton_store::dispatcher::tasks::Finish;
use baton_store::entity::task;
use tokio_util::sync::CancellationToken;

use crate::{Service, events};

/// How many queued tasks one read of the queue returns.
const BATCH: u64 = 64;
/// How many reads one pass may make while it finds nothing to place, so tasks that no connected
/// runner fits do not hide the rest of the queue (bounded, so a huge backlog of such tasks costs
/// a bounded amount of work per pass).
const MAX_PAGES: usize = 32;
/// The longest a queued task waits when every wake-up was missed, and how often pending
/// cancellations are re-sent.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(svc: Service, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ticked = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = svc.inner.wake.notified() => false,
            _ = tick.tick() => true,
        };
        if ticked {
            redeliver_cancels(&svc).await;
        }
        if svc.inner.draining.is_cancelled() {
            continue;
        }
        if let Err(e) = place_all(&svc).await {
            tracing::warn!(error = %e, "placement failed; retrying on the next tick");
        }
    }
}

/// Reads the queue page by page, placing what fits, until no slot is free, the queue ends, or
/// `MAX_PAGES` pages in a row placed nothing. After a full page that placed something the head is
/// read again: placing changed what the head is.
async fn place_all(svc: &Service) -> crate::Result<()> {
    let mut after = None;
    let mut barren = 0;
    while svc.inner.registry.total_free() > 0 && barren < MAX_PAGES {
        let page = svc.inner.tables.queue_page(after, BATCH).await?;
        let Some(last) = page.last().map(|t| (t.priority, t.id)) else { return Ok(()) };
        let full = page.len() as u64 == BATCH;
        let placed = place_page(svc, page).await?;
        if !full {
            // That was the rest of the queue: everything in it has been considered.
            return Ok(());
        }
        if placed > 0 {
            barren = 0;
            after = None;
        } else {
            barren += 1;
            after = Some(last);
        }
    }
    Ok(())
}

/// Places what fits of one page of queued tasks. Returns how many were assigned.
async fn place_page(svc: &Service, head: Vec<task::Model>) -> crate::Result<usize> {
    let inner = &svc.inner;
    let limited = head.iter().any(|t| t.template_max_parallel > 0 || t.project_max_parallel > 0);
    let (mut per_template, mut per_project) =
        if limited { inner.tables.active_counts().await? } else { (HashMap::new(), HashMap::new()) };
    let mut placed = 0;
    for t in head {
        if over_limit(t.template_max_parallel, per_template.get(&t.template_id))
            || over_limit(t.project_max_parallel, per_project.get(&t.project_id))
        {
            continue;
        }
        let spec = match TaskSpec::from_json(&t.spec) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(task_id = t.id, error = %e, "task spec unreadable; leaving it queued");
                continue;
            }
        };
        let Some((runner_id, outbox)) = inner.registry.pick(&spec.labels) else { continue };
        let secrets = open_secrets(svc, t.project_id, &spec.secrets).await;
        let Some(epoch) = inner.tables.claim(t.id, t.epoch, runner_id).await? else { continue };
        let secrets = match secrets {
            Ok(s) => s,
            Err(why) => {
                // Nothing can run it as asked: end it now, saying why, instead of retrying forever.
                inner.registry.with(runner_id, |c| c.held.remove(&t.id));
                let fin =
                    Finish { task_id: t.id, epoch, status: TaskStatus::Failed, exit_code: None, error: Some(why) };
                inner.tables.finish(fin).await?;
                events::task_changed(svc, t.project_id, t.id, TaskStatus::Failed.as_str()).await;
                continue;
            }
        };
        inner.registry.with(runner_id, |c| c.held.insert(t.id, epoch));
        *per_template.entry(t.template_id).or_insert(0) += 1;
        *per_project.entry(t.project_id).or_insert(0) += 1;
        // A first attempt has no lines yet; later ones continue the numbering.
        let first_seq = if t.attempt <= 1 { 1 } else { inner.tables.next_log_seq(t.id).await? };
        let msg = assignment(&t, epoch, spec, first_seq, secrets);
        tracing::debug!(task_id = t.id, epoch, runner_id, "assigned");
        if outbox.send(Ok(msg)).await.is_err() {
            // The stream closed between the pick and the send: give the task back at once.
            inner.registry.with(runner_id, |c| c.held.remove(&t.id));
            inner.tables.lose(t.id, epoch, "runner disconnected before the assignment reached it").await?;
            continue;
        }
        events::task_changed(svc, t.project_id, t.id, TaskStatus::Assigned.as_str()).await;
        placed += 1;
    }
    Ok(placed)
}

fn over_limit(limit: i32, active: Option<&i64>) -> bool {
    limit > 0 && active.copied().unwrap_or(0) >= i64::from(limit)
}

/// The values of the project secrets a task uses, decrypted; the error says which one is missing
/// or cannot be opened.
async fn open_secrets(svc: &Service, project_id: i64, names: &[String]) -> Result<HashMap<String, String>, String> {
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

fn assignment(
    t: &task::Model,
    epoch: i64,
    spec: TaskSpec,
    first_seq: i64,
    secrets: HashMap<String, String>,
) -> ServerMessage {
    ServerMessage {
        msg: Some(server_message::Msg::Assign(Assignment {
            task: Some(TaskRef { task_id: t.id, epoch }),
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

/// Re-sends pending cancellations to the runners connected here, until they report the end.
async fn redeliver_cancels(svc: &Service) {
    let ids = svc.inner.registry.ids();
    match svc.inner.tables.cancel_pending(ids).await {
        Ok(tasks) => {
            for t in tasks {
                events::send_cancel(svc, t.id).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read pending cancellations"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_of_zero_mean_unlimited() {
        assert!(!over_limit(0, Some(&100)));
        assert!(!over_limit(2, Some(&1)));
        assert!(over_limit(2, Some(&2)));
        assert!(!over_limit(1, None));
    }
}
