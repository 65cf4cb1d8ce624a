//! Publishes go to Redis together. Every publish of the process joins one queue, and a
//! background task sends whatever waits there as one pipeline: one write and one read for a
//! burst of notices instead of a round trip (and two wake-ups of Redis) each. A caller still
//! waits until Redis has its message, and messages go out in the order they were given.

use bytes::Bytes;
use std::sync::Arc;

use super::shared::Shared;
use tokio::sync::{mpsc, oneshot};

/// Publishes per pipeline, at most: a bounded write, and a bounded wait for the callers in it.
const MAX_BATCH: usize = 256;

struct Pending {
    channel: String,
    payload: Bytes,
    /// The outcome: `Err` holds what failed, for the caller's error.
    done: oneshot::Sender<Result<(), String>>,
}

pub(super) struct Publisher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Publisher {
    /// Starts the sending task; it ends when the publisher is dropped.
    pub(super) fn start(conns: Arc<Shared>) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conns, rx));
        Publisher { tx }
    }

    /// Publishes `payload` on `channel` (a full channel name); returns once Redis has it.
    pub(super) async fn publish(&self, channel: String, payload: Bytes) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.tx.send(Pending { channel, payload, done }).map_err(|_| "the publisher stopped".to_owned())?;
        answer.await.unwrap_or_else(|_| Err("the publisher stopped".to_owned()))
    }
}

async fn run(conns: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if batch.len() < MAX_BATCH {
            // Publishers already runnable on this worker go first and join this pipeline (woken
            // by the first one, this task would otherwise run before them). One turn of the
            // scheduler, not a timer: a lone publish waits for nothing that was not ready.
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                let Ok(next) = rx.try_recv() else { break };
                batch.push(next);
            }
        }
        let outcome = send(&conns, &batch).await;
        for p in batch.drain(..) {
            // A caller that stopped waiting does not care.
            let _ = p.done.send(outcome.clone());
        }
    }
}

async fn send(conns: &Shared, batch: &[Pending]) -> Result<(), String> {
    let mut pipe = ::redis::pipe();
    for p in batch {
        pipe.cmd("PUBLISH").arg(&p.channel).arg(p.payload.as_ref()).ignore();
    }
    let pipe = &pipe;
    conns.run(true, |mut c| async move { pipe.query_async::<()>(&mut c).await }).await
}
