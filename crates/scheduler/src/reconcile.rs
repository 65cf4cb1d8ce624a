//! The queue reconciler: puts every task queued in SQL on the coordination queue. Enqueueing is
//! idempotent, so it needs no diff and may run on every node at once. Entries the queue holds for
//! tasks that are no longer queued are dropped by the dispatcher that takes them.

use std::time::Duration;

use baton_coord::{Coord, Queued};
use baton_store::Store;
use tokio_util::sync::CancellationToken;

/// Queued tasks read (and enqueued) per step.
const PAGE: u64 = 1000;

pub async fn run(store: Store, coord: Coord, every: Duration, shutdown: CancellationToken) {
    // `None` once the coordinator can no longer report changes (the in-process one never does).
    let mut health = Some(coord.health());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            // Coming back from an outage: refill at once what was queued meanwhile.
            up = recovered(&mut health) => {
                if !up {
                    continue;
                }
            }
        }
        if !coord.healthy() {
            continue;
        }
        match reconcile(&store, &coord).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(queued = n, "coordination queue reconciled"),
            Err(e) => tracing::debug!(error = %e, "queue reconcile failed; retrying"),
        }
    }
}

/// Waits for the next change of health; `true` when coordination came back.
async fn recovered(health: &mut Option<tokio::sync::watch::Receiver<bool>>) -> bool {
    let Some(rx) = health else { return std::future::pending().await };
    if rx.changed().await.is_err() {
        *health = None;
        return false;
    }
    *rx.borrow_and_update()
}

/// Enqueues every queued task; returns how many there were.
pub async fn reconcile(store: &Store, coord: &Coord) -> Result<usize, String> {
    let mut after = 0;
    let mut total = 0;
    loop {
        let page = store.queued_tasks(after, PAGE).await.map_err(|e| e.to_string())?;
        let Some(&(last, _)) = page.last() else { return Ok(total) };
        let entries: Vec<Queued> = page.iter().map(|&(task_id, priority)| Queued { task_id, priority }).collect();
        coord.enqueue(&entries).await.map_err(|e| e.to_string())?;
        total += entries.len();
        if (page.len() as u64) < PAGE {
            return Ok(total);
        }
        after = last;
    }
}
