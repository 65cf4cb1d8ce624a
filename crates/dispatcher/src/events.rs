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

/// Forwards cancellations to the runners connected here, and wake-ups to the placement loop.
pub async fn listen(svc: Service, shutdown: CancellationToken) {
    let coord = svc.inner.coord.clone();
    let (Ok(mut wakes), Ok(mut cancels)) =
        (coord.subscribe(topic::DISPATCH).await, coord.subscribe(topic::CANCEL).await)
    else {
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
