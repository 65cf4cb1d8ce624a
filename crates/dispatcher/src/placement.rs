//! The placement loop: when woken (a task was queued, a slot freed up) or once a second, it reads
//! the head of the queue from SQL and assigns what fits to the runners connected here. The SQL
//! claim decides; another dispatcher claiming the same task first is normal and harmless.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baton_coord::Queued;
use baton_core::TaskStatus;
use baton_core::sealed::secret_aad;
use baton_proto::v1::{Assignment, ServerMessage, TaskRef, server_message};
use baton_store::TaskSpec;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::entity::task;
use tokio_util::sync::CancellationToken;

use crate::registry::{Held, Outbox};
use crate::{Service, events, settle};

/// How many queued tasks one read of the queue returns.
const BATCH: u64 = 64;
/// How many reads one pass may make while it finds nothing to place, so tasks that no connected
/// runner fits do not hide the rest of the queue (bounded, so a huge backlog of such tasks costs
/// a bounded amount of work per pass).
const MAX_PAGES: usize = 32;
/// The longest a queued task waits when every wake-up was missed, and how often pending
/// cancellations are re-sent.
const TICK: Duration = Duration::from_secs(1);
/// The same while coordination is down and placement reads the queue from SQL.
const DEGRADED_TICK: Duration = Duration::from_millis(250);

pub async fn run(svc: Service, shutdown: CancellationToken) {
    // Due times, not "when the sleep ran out": under steady load wake-ups come more often than a
    // tick, and the periodic duties must not starve.
    let (mut redeliver_at, mut settle_at) = (Instant::now() + TICK, Instant::now() + settle::EVERY);
    loop {
        // Without coordination no wake-up crosses nodes: look at the queue more often instead.
        let tick = if svc.inner.coord.healthy() { TICK } else { DEGRADED_TICK };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = svc.inner.wake.notified() => {}
            _ = tokio::time::sleep(tick) => {}
        }
        if Instant::now() >= redeliver_at {
            redeliver_at = Instant::now() + TICK;
            redeliver_cancels(&svc).await;
        }
        if Instant::now() >= settle_at {
            settle_at = Instant::now() + settle::EVERY;
            if let Err(e) = settle::undelivered(&svc).await {
                tracing::warn!(error = %e, "cannot check for undelivered assignments; trying again later");
            }
        }
        if svc.is_draining() {
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
        let page = queue_page(svc, after).await?;
        let Some(last) = page.last else { return Ok(()) };
        let placed = place_page(svc, page.tasks).await?;
        if !page.full {
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

/// One page of the queue in placement order.
struct Page {
    /// The page's tasks that are still queued in SQL.
    tasks: Vec<task::Model>,
    /// Where the page ended, as (priority, id): the next page starts after it.
    last: Option<Queued>,
    /// Whether the queue may go on after this page.
    full: bool,
}

/// Reads a page from the coordination queue, or from SQL while coordination is down. Entries
/// the queue holds for tasks that are no longer queued (claimed elsewhere, cancelled, deleted)
/// are dropped from it on the way.
async fn queue_page(svc: &Service, after: Option<Queued>) -> crate::Result<Page> {
    let inner = &svc.inner;
    let Ok(entries) = inner.coord.queue_page(after, BATCH as usize).await else {
        let tasks = inner.tables.queue_page(after.map(|q| (q.priority, q.task_id)), BATCH).await?;
        let last = tasks.last().map(|t| Queued { task_id: t.id, priority: t.priority });
        let full = tasks.len() as u64 == BATCH;
        return Ok(Page { tasks, last, full });
    };
    let ids: Vec<i64> = entries.iter().map(|q| q.task_id).collect();
    let mut rows: HashMap<i64, task::Model> =
        inner.tables.tasks_by_ids(&ids).await?.into_iter().map(|t| (t.id, t)).collect();
    let mut tasks = Vec::with_capacity(entries.len());
    let mut stale = Vec::new();
    for q in &entries {
        match rows.remove(&q.task_id) {
            Some(t) if t.status == TaskStatus::Queued.as_str() => tasks.push(t),
            _ => stale.push(q.task_id),
        }
    }
    if !stale.is_empty() {
        let _ = inner.coord.dequeue(&stale).await;
    }
    Ok(Page { tasks, last: entries.last().copied(), full: entries.len() as u64 == BATCH })
}

/// A queued task and the runner of this node chosen for it, before the claim.
struct Choice {
    t: task::Model,
    spec: TaskSpec,
    runner_id: i64,
    session: u64,
    outbox: Outbox,
    secrets: Result<HashMap<String, String>, String>,
}

/// Places what fits of one page of queued tasks. Returns how many were assigned. A runner is
/// chosen for every task first (counting the slots chosen so far), then all are claimed in one
/// statement, then each claimed one is sent.
async fn place_page(svc: &Service, mut head: Vec<task::Model>) -> crate::Result<usize> {
    let inner = &svc.inner;
    stagger(&mut head, inner.registry.total_free());
    let limited = head.iter().any(|t| t.template_max_parallel > 0 || t.project_max_parallel > 0);
    let (mut per_template, mut per_project) =
        if limited { inner.tables.active_counts().await? } else { (HashMap::new(), HashMap::new()) };
    let mut taken = HashMap::new();
    let mut chosen = Vec::new();
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
        let Some((runner_id, session, outbox)) = inner.registry.pick(t.project_id, &spec.labels, &taken) else {
            continue;
        };
        *taken.entry(runner_id).or_insert(0) += 1;
        // Counted as running from here: a claim lost below only makes the rest of this pass
        // more careful than it had to be, never less.
        *per_template.entry(t.template_id).or_insert(0) += 1;
        *per_project.entry(t.project_id).or_insert(0) += 1;
        let secrets = open_secrets(svc, t.project_id, &spec.secrets).await;
        chosen.push(Choice { t, spec, runner_id, session, outbox, secrets });
    }
    // Checked right before the claims: a drain that began during this pass sends the runners
    // away, and assignments claimed after that would chase streams that are closing.
    if chosen.is_empty() || svc.is_draining() {
        return Ok(0);
    }
    let claims: Vec<(&task::Model, i64)> = chosen.iter().map(|c| (&c.t, c.runner_id)).collect();
    let rows = inner.tables.claim_rows(&claims).await?;
    let mut sent = Vec::new();
    let mut claimed = Vec::new();
    for (choice, row) in chosen.into_iter().zip(rows) {
        let Some(row) = row else {
            inner.metrics.claim_lost();
            continue;
        };
        claimed.push(choice.t.id);
        sent.extend(send(svc, choice, row).await?);
    }
    // Side by side, so the notices leave together (one pipeline to Redis); before anything
    // else, so each is on its way before its runner can report the start.
    let assigned = TaskStatus::Assigned.as_str();
    futures::future::join_all(
        sent.iter().map(|row| events::row_changed(svc, row.project_id, row.id, assigned, Some(row))),
    )
    .await;
    if !claimed.is_empty() {
        // Best effort: an entry left behind is dropped by the next read of the queue.
        let _ = inner.coord.dequeue(&claimed).await;
    }
    Ok(sent.len())
}

/// Hands a claimed task (`row`, as the claim left it) to its runner, and returns the row to
/// announce. `None` when it could not be: its secrets cannot be opened (it is ended, saying
/// why), or the runner's stream is gone (it goes back to the queue).
async fn send(svc: &Service, c: Choice, row: task::Model) -> crate::Result<Option<task::Model>> {
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
    let msg = assignment(t, epoch, c.spec, first_seq, secrets);
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

/// Every dispatcher with free slots is woken by the same enqueue and reads the same head of the
/// queue: claiming it in the same order, they would collide on every task (a lost claim is a
/// wasted UPDATE). Each starts instead at a random place among the tasks it has room for — the
/// first `free` of the page, so no task is passed over for a later one — and goes round.
fn stagger<T>(head: &mut [T], free: usize) {
    let k = head.len().min(free);
    if k > 1 {
        head[..k].rotate_left(rand::random_range(0..k));
    }
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
    fn staggering_reorders_only_what_fits() {
        let mut starts = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut ids: Vec<i64> = (1..=10).collect();
            stagger(&mut ids, 4);
            let mut first: Vec<i64> = ids[..4].to_vec();
            first.sort_unstable();
            assert_eq!(first, [1, 2, 3, 4], "the tasks that fit are the head's: {ids:?}");
            assert_eq!(ids[4..], [5, 6, 7, 8, 9, 10], "the rest keep their order");
            starts.insert(ids[0]);
        }
        assert!(starts.len() > 1, "the starting point varies");
        let mut one = [1, 2, 3];
        stagger(&mut one, 1);
        assert_eq!(one, [1, 2, 3], "one free slot takes the head");
    }

    #[test]
    fn limits_of_zero_mean_unlimited() {
        assert!(!over_limit(0, Some(&100)));
        assert!(!over_limit(2, Some(&1)));
        assert!(over_limit(2, Some(&2)));
        assert!(!over_limit(1, None));
    }
}
