//! What the dispatcher publishes (task events) and listens to (wake-ups and cancellations from
//! other nodes' services).

use baton_coord::{Received, topic};
use baton_proto::v1::{Cancel, ServerMessage, TaskRef, server_message};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::Service;

/// Announces a task's change to the project's subscribers. Best effort: readers fall back to SQL.
pub async fn task_changed(svc: &Service, project_id: i64, task_id: i64, status: &str) {
    let payload = serde_json::json!({"type": "task.updated", "data": {"id": task_id, "status": status}});
    let _ = svc.inner.coord.publish(&topic::project(project_id), Bytes::from(payload.to_string())).await;
}

/// Asks every dispatcher to look at the queue.
pub async fn wake_all(svc: &Service) {
    svc.inner.wake.notify_one();
    let _ = svc.inner.coord.publish(topic::DISPATCH, Bytes::new()).await;
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
                let _ = outbox.send(Err(tonic::Status::unauthenticated("this runner was revoked"))).await;
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

/// Forwards cancellations and runner changes to the runners connected here, and wake-ups to the
/// placement loop.
pub async fn listen(svc: Service, shutdown: CancellationToken) {
    let coord = svc.inner.coord.clone();
    let (Ok(mut wakes), Ok(mut cancels), Ok(mut runners)) = (
        coord.subscribe(topic::DISPATCH).await,
        coord.subscribe(topic::CANCEL).await,
        coord.subscribe(topic::RUNNERS).await,
    ) else {
        tracing::warn!("cannot subscribe to coordination topics; relying on periodic sweeps");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            m = wakes.recv() => match m {
                Received::Closed => return,
                _ => svc.inner.wake.notify_one(),
            },
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
    let epoch = svc.inner.registry.with(runner_id, |c| c.held.get(&task_id).copied()).flatten().unwrap_or(0);
    let msg =
        ServerMessage { msg: Some(server_message::Msg::Cancel(Cancel { task: Some(TaskRef { task_id, epoch }) })) };
    tracing::debug!(task_id, epoch, runner_id, "sending cancellation");
    let _ = outbox.send(Ok(msg)).await;
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
