//! What the dispatcher publishes (task events) and listens to (wake-ups and cancellations from
//! other nodes' services).

use baton_coord::{Queued, Received, topic};
use baton_core::TaskStatus;
use baton_proto::v1::{Cancel, ServerMessage, TaskRef, server_message};
use baton_store::dispatcher::tasks::Lost;
use baton_store::entity::task;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::Service;

/// Announces a task's change to the project's subscribers, and the end of its log once it is
/// final (every line of it is stored by then: a runner reports the end only after its last log
/// chunk is acknowledged). Best effort: readers fall back to SQL.
pub async fn task_changed(svc: &Service, project_id: i64, task_id: i64, status: &str) {
    row_changed(svc, project_id, task_id, status, None).await;
}

/// Like [`task_changed`], with the row as it was committed when the writer knows it: subscribers
/// then need not read it.
pub async fn row_changed(svc: &Service, project_id: i64, task_id: i64, status: &str, row: Option<&task::Model>) {
    if TaskStatus::parse(status).is_some_and(|s| s.is_final()) {
        return task_ended(svc, project_id, task_id, None, row).await;
    }
    publish(svc, &topic::project(project_id), &task_notice(task_id, row)).await;
}

/// Like [`task_changed`] for a task whose runner reported its (final) end, with the sequence number of
/// its last stored line when this node knows it: a log subscriber that has delivered that line
/// ends without reading SQL (on a busy node, most subscribers of short tasks).
pub async fn task_ended(
    svc: &Service,
    project_id: i64,
    task_id: i64,
    last_seq: Option<i64>,
    row: Option<&task::Model>,
) {
    publish(svc, &topic::project(project_id), &task_notice(task_id, row)).await;
    let end = topic::LogNotice { task: task_id, end: true, last: last_seq, ..Default::default() };
    publish(svc, &topic::task_log(task_id), &end).await;
}

/// Announces lines of a task that are now stored, with the lines themselves when they are few.
pub async fn log_stored(svc: &Service, task_id: i64, lines: &[baton_store::LogLine]) {
    let Some(last) = lines.last().map(|l| l.seq) else { return };
    let size: usize = lines.iter().map(|l| l.text.len()).sum();
    let lines = if size <= topic::NOTICE_TEXT_MAX {
        lines
            .iter()
            .map(|l| topic::NoticeLine {
                seq: l.seq,
                time: l.time_ms,
                stream: l.stream.as_str().to_owned(),
                text: l.text.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let stored_at = Some(baton_store::now_ms());
    let notice = topic::LogNotice { task: task_id, last: Some(last), lines, end: false, stored_at };
    publish(svc, &topic::task_log(task_id), &notice).await;
}

/// A change notice, carrying `row` when it is small enough to travel.
fn task_notice(task_id: i64, row: Option<&task::Model>) -> topic::TaskNotice {
    let row = row
        .filter(|r| r.id == task_id && r.spec.len() + r.error.as_ref().map_or(0, String::len) < topic::NOTICE_ROW_MAX)
        .and_then(|r| serde_json::value::to_raw_value(r).ok());
    topic::TaskNotice { task: task_id, row }
}

async fn publish(svc: &Service, topic: &str, notice: &impl serde::Serialize) {
    if let Ok(payload) = serde_json::to_vec(notice) {
        let _ = svc.inner.coord.publish(topic, Bytes::from(payload)).await;
    }
}

/// Asks this node's placement loop to look at the queue (a runner connected, a slot freed up).
pub fn wake_here(svc: &Service) {
    svc.inner.wake.notify_one();
}

/// Puts a task (queued in SQL) on the coordination queue, which wakes every dispatcher. Best
/// effort: while coordination is down placement reads SQL, and the reconciler adds it later.
pub async fn queued(svc: &Service, task: Queued) {
    if let Err(e) = svc.inner.coord.enqueue(&[task]).await {
        tracing::debug!(task_id = task.task_id, error = %e, "not enqueued; placement finds it in SQL");
    }
    svc.inner.wake.notify_one();
}

/// Like [`queued`] for a task that went back to the queue as a new attempt.
pub async fn requeue(svc: &Service, task_id: i64) {
    match svc.inner.tables.task(task_id).await {
        Ok(t) => queued(svc, Queued { task_id, priority: t.priority }).await,
        // The reconciler will find it.
        Err(e) => tracing::debug!(task_id, error = %e, "cannot read a requeued task"),
    }
}

/// Counts a task that `lose`, `give_up` or `unassign` ended for good (`baton_tasks_finished_total`).
/// Their compare-and-set answers a repeat with `Stale`, so each end is counted once.
pub fn count_end(svc: &Service, outcome: Lost) {
    match outcome {
        Lost::Ended => svc.inner.metrics.task_finished(TaskStatus::Lost),
        Lost::Cancelled => svc.inner.metrics.task_finished(TaskStatus::Cancelled),
        Lost::Requeued | Lost::Stale => {}
    }
}

/// Announces what [`Tables::lose`](baton_store::dispatcher::Tables::lose) or `unassign` did to
/// an attempt, counts a task it ended, and puts a requeued task back on the coordination queue.
pub async fn attempt_ended(svc: &Service, project_id: i64, task_id: i64, outcome: baton_store::Result<Lost>) {
    if let Ok(o) = outcome {
        count_end(svc, o);
    }
    let status = match outcome {
        Ok(Lost::Requeued) => TaskStatus::Queued,
        Ok(Lost::Ended) => TaskStatus::Lost,
        Ok(Lost::Cancelled) => TaskStatus::Cancelled,
        Ok(Lost::Stale) => return,
        Err(e) => {
            tracing::warn!(task_id, error = %e, "cannot end a lost attempt; the lease sweeper will");
            return;
        }
    };
    task_changed(svc, project_id, task_id, status.as_str()).await;
    if status == TaskStatus::Queued {
        requeue(svc, task_id).await;
    }
}

/// Applies a runner's new state (paused or revoked) if its stream is connected here. Every node
/// gets it, because the runner may be connected to any of them.
pub async fn runner_changed(svc: &Service, runner_id: i64, change: RunnerChange) {
    match change {
        RunnerChange::Paused(p) => {
            svc.inner.registry.with(runner_id, |c| c.paused = p);
            if !p {
                svc.inner.wake.notify_one();
            }
        }
        RunnerChange::Revoked => {
            if let Some(outbox) = svc.inner.registry.evict(runner_id) {
                tracing::info!(runner_id, "runner revoked; closing its stream");
                outbox.close(tonic::Status::unauthenticated("this runner was revoked"));
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerChange {
    Paused(bool),
    Revoked,
}

impl RunnerChange {
    fn encode(self, runner_id: i64) -> String {
        match self {
            RunnerChange::Paused(p) => format!("{runner_id} paused {p}"),
            RunnerChange::Revoked => format!("{runner_id} revoked"),
        }
    }

    fn decode(s: &str) -> Option<(i64, RunnerChange)> {
        let mut parts = s.split(' ');
        let id = parts.next()?.parse().ok()?;
        match (parts.next()?, parts.next()) {
            ("paused", Some(p)) => Some((id, RunnerChange::Paused(p == "true"))),
            ("revoked", None) => Some((id, RunnerChange::Revoked)),
            _ => None,
        }
    }
}

/// Tells every dispatcher (this one included) about a runner's new state.
pub async fn announce_runner(svc: &Service, runner_id: i64, change: RunnerChange) {
    runner_changed(svc, runner_id, change).await;
    let _ = svc.inner.coord.publish(topic::RUNNERS, Bytes::from(change.encode(runner_id))).await;
}

/// Wakes the placement loop whenever any node enqueues a task.
pub async fn watch_queue(svc: Service, shutdown: CancellationToken) {
    loop {
        let woken = tokio::select! {
            _ = shutdown.cancelled() => return,
            w = svc.inner.coord.wait_for_work(std::time::Duration::from_secs(5)) => w,
        };
        match woken {
            Ok(true) => svc.inner.wake.notify_one(),
            Ok(false) => {}
            // Down: the placement loop polls SQL meanwhile; try again shortly.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

/// Forwards cancellations and runner changes to the runners connected here.
pub async fn listen(svc: Service, shutdown: CancellationToken) {
    let coord = svc.inner.coord.clone();
    let (Ok(mut cancels), Ok(mut runners)) =
        (coord.subscribe(topic::CANCEL).await, coord.subscribe(topic::RUNNERS).await)
    else {
        tracing::warn!("cannot subscribe to coordination topics; relying on periodic sweeps");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            m = cancels.recv() => match m {
                Received::Message(b) => {
                    if let Some(id) = std::str::from_utf8(&b).ok().and_then(|s| s.parse::<i64>().ok()) {
                        send_cancel(&svc, id).await;
                    }
                }
                Received::Lagged(_) => {} // the periodic redelivery catches up
                Received::Closed => return,
            },
            m = runners.recv() => match m {
                Received::Message(b) => {
                    if let Some((id, change)) = std::str::from_utf8(&b).ok().and_then(RunnerChange::decode) {
                        runner_changed(&svc, id, change).await;
                    }
                }
                Received::Lagged(_) => {}
                Received::Closed => return,
            },
        }
    }
}

/// Sends a cancellation to the runner holding `task_id`, if it is connected here.
pub async fn send_cancel(svc: &Service, task_id: i64) {
    let Some((runner_id, outbox)) = svc.inner.registry.holder(task_id) else { return };
    let epoch = svc.inner.registry.with(runner_id, |c| c.held.get(&task_id).map(|h| h.epoch)).flatten().unwrap_or(0);
    let msg =
        ServerMessage { msg: Some(server_message::Msg::Cancel(Cancel { task: Some(TaskRef { task_id, epoch }) })) };
    tracing::debug!(task_id, epoch, runner_id, "sending cancellation");
    // Never waits (this runs in node-wide loops): a runner that does not take it is cut off, and
    // the cancellation is sent again from SQL wherever it reconnects.
    let _ = outbox.offer(msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_changes_round_trip() {
        for change in [RunnerChange::Paused(true), RunnerChange::Paused(false), RunnerChange::Revoked] {
            assert_eq!(RunnerChange::decode(&change.encode(42)), Some((42, change)));
        }
        assert_eq!(RunnerChange::decode("x revoked"), None);
        assert_eq!(RunnerChange::decode("1 paused"), None);
    }
}
