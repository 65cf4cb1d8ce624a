//! The placement loop: when woken (a task was queued, a slot freed up) or once a second, it reads
//! the head of the queue and assigns what fits to the runners connected here. It takes the tasks
//! it wants off the coordination queue before it reads them from SQL, so of several nodes woken
//! by the same enqueue only one reads and claims each task; the SQL claim still decides, so a
//! queue that lies (flushed, rebuilt, unreachable) costs work, never a task run twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use baton_coord::Queued;
use baton_core::TaskStatus;
use baton_store::TaskSpec;
use baton_store::entity::task;
use tokio_util::sync::CancellationToken;

use crate::assign::{self, Choice};
use crate::known::{Choosing, Counts, Known, Needs};
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
    let mut known = Known::default();
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
        if let Err(e) = place_all(&svc, &mut known).await {
            tracing::warn!(error = %e, "placement failed; retrying on the next tick");
        }
    }
}

/// Reads the queue page by page, placing what fits, until no slot is free, the queue ends, or
/// `MAX_PAGES` pages in a row placed nothing. After a full page that placed something, or whose
/// tasks another node took first, the head is read again: it changed.
async fn place_all(svc: &Service, known: &mut Known) -> crate::Result<()> {
    let mut after = None;
    let mut barren = 0;
    while svc.inner.registry.total_free() > 0 && barren < MAX_PAGES {
        let page = read_page(svc, after, known).await?;
        let taken: HashSet<i64> = page.taken.iter().map(|q| q.task_id).collect();
        let Some(last) = page.last else { return Ok(()) };
        let placed = match place_page(svc, page.tasks, page.counts, known).await {
            Ok(p) => {
                // Only what was taken goes back: a page read from SQL took nothing.
                let left: Vec<Queued> = p.left.into_iter().filter(|q| taken.contains(&q.task_id)).collect();
                give_back(svc, &left).await;
                p.sent
            }
            Err(e) => {
                give_back(svc, &page.taken).await;
                return Err(e);
            }
        };
        if !page.full {
            // That was the rest of the queue: everything in it has been considered.
            return Ok(());
        }
        if placed > 0 || page.lost > 0 {
            barren = if placed > 0 { 0 } else { barren + 1 };
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
    /// The page's tasks that are still queued in SQL and that this node took off the queue (all
    /// of them, when the page was read from SQL).
    tasks: Vec<task::Model>,
    /// The running counts per template and project, when choosing what to take needed them.
    counts: Option<Counts>,
    /// What this node took off the coordination queue: it goes back if this node fails.
    taken: Vec<Queued>,
    /// How many tasks this node wanted that another node took first.
    lost: usize,
    /// Where the page ended, as (priority, id): the next page starts after it.
    last: Option<Queued>,
    /// Whether the queue may go on after this page.
    full: bool,
}

/// Reads a page of the coordination queue and takes off it the tasks this node wants (see
/// [`Known::wanted`]), then reads those from SQL. While coordination is down, reads the page from
/// SQL instead and takes nothing: the claims decide alone.
async fn read_page(svc: &Service, after: Option<Queued>, known: &mut Known) -> crate::Result<Page> {
    let inner = &svc.inner;
    let Ok(mut entries) = inner.coord.queue_page(after, BATCH as usize).await else {
        let tasks = inner.tables.queue_page(after.map(|q| (q.priority, q.task_id)), BATCH).await?;
        let last = tasks.last().map(|t| Queued { task_id: t.id, priority: t.priority });
        let full = tasks.len() as u64 == BATCH;
        return Ok(Page { tasks, counts: None, taken: Vec::new(), lost: 0, last, full });
    };
    let (last, full) = (entries.last().copied(), entries.len() as u64 == BATCH);
    stagger(&mut entries, inner.registry.total_free());
    let counts = if known.any_limited(&entries) { Some(inner.tables.active_counts().await?) } else { None };
    let wanted = known.wanted(&entries, &inner.registry, counts.as_ref());
    // A failed take may or may not have removed them: claim them anyway (SQL decides) and put
    // them back if they are not placed.
    let mine: HashSet<i64> =
        inner.coord.dequeue(&wanted).await.unwrap_or_else(|_| wanted.clone()).into_iter().collect();
    let lost = wanted.len() - mine.len();
    if lost > 0 {
        inner.metrics.takes_lost(lost);
        // Another node took them: nothing to remember here.
        wanted.iter().filter(|id| !mine.contains(id)).for_each(|id| known.forget(*id));
    }
    let taken: Vec<Queued> = entries.into_iter().filter(|e| mine.contains(&e.task_id)).collect();
    let ids: Vec<i64> = taken.iter().map(|q| q.task_id).collect();
    let mut rows: HashMap<i64, task::Model> = match inner.tables.tasks_by_ids(&ids).await {
        Ok(rows) => rows.into_iter().map(|t| (t.id, t)).collect(),
        Err(e) => {
            give_back(svc, &taken).await;
            return Err(e.into());
        }
    };
    // The ones no longer queued (claimed, cancelled or deleted since) stay off the queue, and
    // are forgotten.
    let queued = TaskStatus::Queued.as_str();
    let mut tasks = Vec::with_capacity(taken.len());
    for q in &taken {
        match rows.remove(&q.task_id) {
            Some(t) if t.status == queued => tasks.push(t),
            _ => known.forget(q.task_id),
        }
    }
    Ok(Page { tasks, counts, taken, lost, last, full })
}

/// What [`place_page`] did.
struct Placed {
    /// How many tasks it assigned.
    sent: usize,
    /// The tasks it could not place (no runner here fits them now, or this node began draining).
    left: Vec<Queued>,
}

/// Places what fits of one page of queued tasks. A runner is chosen for every task first
/// (counting the slots chosen so far), then all are claimed in one statement, then each claimed
/// one is sent. Learns what each task needs on the way.
async fn place_page(
    svc: &Service,
    head: Vec<task::Model>,
    counts: Option<Counts>,
    known: &mut Known,
) -> crate::Result<Placed> {
    let inner = &svc.inner;
    let limited = head.iter().any(|t| t.template_max_parallel > 0 || t.project_max_parallel > 0);
    let mut choosing = Choosing::new(match counts {
        Some(counts) => counts,
        None if limited => inner.tables.active_counts().await?,
        None => Counts::default(),
    });
    let mut chosen = Vec::new();
    let mut left = Vec::new();
    for t in head {
        let spec = TaskSpec::from_json(&t.spec);
        let needs = Needs::of(&t, spec.as_ref().ok().map(|s| s.labels.as_slice()));
        let entry = Queued { task_id: t.id, priority: t.priority };
        let picked = choosing.choose(&inner.registry, &needs);
        known.learn(t.id, needs);
        let spec = match spec {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(task_id = t.id, error = %e, "task spec unreadable; leaving it queued");
                left.push(entry);
                continue;
            }
        };
        let Some((runner_id, session, outbox)) = picked else {
            left.push(entry);
            continue;
        };
        let secrets = assign::open_secrets(svc, t.project_id, &spec.secrets).await;
        chosen.push(Choice { t, spec, runner_id, session, outbox, secrets });
    }
    // Checked right before the claims: a drain that began during this pass sends the runners
    // away, and assignments claimed after that would chase streams that are closing.
    if chosen.is_empty() || svc.is_draining() {
        left.extend(chosen.iter().map(|c| Queued { task_id: c.t.id, priority: c.t.priority }));
        return Ok(Placed { sent: 0, left });
    }
    let claims: Vec<(&task::Model, i64)> = chosen.iter().map(|c| (&c.t, c.runner_id)).collect();
    let rows = inner.tables.claim_rows(&claims).await?;
    let mut sent = Vec::new();
    for (choice, row) in chosen.into_iter().zip(rows) {
        known.forget(choice.t.id);
        let Some(row) = row else {
            inner.metrics.claim_lost();
            continue;
        };
        // Claimed: whatever happens to one, the others are still sent. One that cannot be is
        // `assigned` to a runner that does not hold it, which `settle` puts back on the queue.
        let task_id = row.id;
        match assign::send(svc, choice, row).await {
            Ok(row) => sent.extend(row),
            Err(e) => {
                tracing::warn!(task_id, error = %e, "cannot hand a claimed task to its runner; it goes back to the queue shortly")
            }
        }
    }
    // Side by side, so the notices leave together (one pipeline to Redis); before anything
    // else, so each is on its way before its runner can report the start.
    let assigned = TaskStatus::Assigned.as_str();
    futures::future::join_all(
        sent.iter().map(|row| events::row_changed(svc, row.project_id, row.id, assigned, Some(row))),
    )
    .await;
    Ok(Placed { sent: sent.len(), left })
}

/// Puts back on the queue the tasks this node took off it but did not place, which wakes every
/// node: another may have the runner they need. This node knows them now, and leaves them on the
/// queue until its runners can take them ([`Known::wanted`]), so a task goes back at most once
/// per node a minute. Best effort: the reconciler puts back whatever is queued in SQL.
async fn give_back(svc: &Service, left: &[Queued]) {
    if left.is_empty() {
        return;
    }
    match svc.inner.coord.enqueue(left).await {
        Ok(()) => svc.inner.metrics.queue_returns(left.len()),
        Err(e) => tracing::debug!(error = %e, "cannot put tasks back on the queue; the reconciler will"),
    }
}

/// Every dispatcher with free slots is woken by the same enqueue and reads the same head of the
/// queue: taking it in the same order, they would collide on every task (a lost take is a wasted
/// round trip to Redis). Each starts instead at a random place among the tasks it has room for —
/// the first `free` of the page, so no task is passed over for a later one — and goes round.
fn stagger<T>(head: &mut [T], free: usize) {
    let k = head.len().min(free);
    if k > 1 {
        head[..k].rotate_left(rand::random_range(0..k));
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
}
