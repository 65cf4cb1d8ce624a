//! The safety net for assignments that never reached their runner. Placement and the hello of a
//! reconnecting runner settle almost all of them at once; what remains is an assignment made by a
//! node whose stream to the runner had already died unnoticed (the runner was connected
//! elsewhere by then), and its claim committed after the new stream's hello was reconciled. Such
//! a task stays `assigned` to a runner that is alive and heartbeating but will never start it.
//!
//! A runner holds exactly the tasks of its current stream: those it reported in its hello and
//! those assigned over that stream, all of which are in the session's `held`. So a task SQL says
//! is assigned to a runner whose current stream is here, and which that stream does not hold,
//! never reached the runner: it goes back to the queue as it was. Only assignments older than
//! [`AFTER`] are judged, so one being made right now is never mistaken for one.

use std::time::Duration;

use crate::{Service, events};

/// How old an assignment must be before it is judged.
pub const AFTER: Duration = Duration::from_secs(10);
/// How often this node looks.
pub const EVERY: Duration = Duration::from_secs(5);

/// Queues again every task assigned, longer than [`AFTER`] ago, to a runner whose current stream
/// is on this node but does not hold it. Returns how many.
pub async fn undelivered(svc: &Service) -> crate::Result<usize> {
    let inner = &svc.inner;
    let ids = inner.registry.ids();
    if ids.is_empty() {
        return Ok(0);
    }
    let cutoff = baton_store::now_ms() - AFTER.as_millis() as i64;
    let tasks = inner.tables.assigned_before(&ids, cutoff).await?;
    if tasks.is_empty() {
        return Ok(0);
    }
    // Read after the tasks: a runner that moved to another node meanwhile is that node's to judge.
    let here = inner.tables.runners_on_node(&ids, &inner.opts.node_id).await?;
    let mut settled = 0;
    for t in tasks {
        let Some(runner_id) = t.runner_id.filter(|r| here.contains(r)) else { continue };
        let held = inner.registry.with(runner_id, |c| c.held.get(&t.id).is_some_and(|h| h.epoch == t.epoch));
        if held != Some(false) {
            continue; // held by its stream, or the runner left this node meanwhile
        }
        tracing::warn!(
            task_id = t.id,
            epoch = t.epoch,
            runner_id,
            "an assignment never reached its runner; queued again"
        );
        let outcome = inner.tables.unassign(t.id, t.epoch).await;
        settled += usize::from(matches!(outcome, Ok(baton_store::dispatcher::tasks::Lost::Requeued)));
        events::attempt_ended(svc, t.project_id, t.id, outcome).await;
    }
    Ok(settled)
}
