//! The messages waiting for one runner's stream, and the way to cut off a runner that stopped
//! reading them. Runners are outside the trust boundary, and a stuck one must not stall anything
//! shared: the node-wide loops (placement, cancel delivery, revocations, drain) only ever
//! [`offer`](Outbox::offer), which never waits; the runner's own session waits at most
//! [`PATIENCE`] for room. A stream whose queue holds messages that nobody takes for
//! [`PATIENCE`] is closed (see [`Outbox::stalled`]), and its runner's tasks then follow the
//! normal lease rules.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_proto::v1::ServerMessage;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How long a runner may leave its queue untouched, and how long its session waits for room.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// Room beyond the runner's capacity: a healthy runner never fills its queue, because
/// assignments are bounded by its free slots and everything else is small and rare.
const SLACK: usize = 256;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The stream has ended (the runner went away, or was cut off).
    Closed,
    /// The queue was full: the runner stopped reading, and is now cut off.
    Stuck,
}

/// The sending side of one runner's stream; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<ServerMessage>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Fires when the stream is cut off; the stream then ends with `why`.
    closed: CancellationToken,
    why: Mutex<Option<Status>>,
    /// How many messages the stream has handed to the transport.
    taken: AtomicU64,
}

/// What gRPC sends to the runner: the queued messages, and the reason if it is cut off.
pub type OutStream = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

impl Outbox {
    /// An outbox for a runner that runs `capacity` tasks at once, and the stream that drains it.
    pub fn new(capacity: usize) -> (Outbox, OutStream) {
        let (tx, rx) = mpsc::channel(capacity + SLACK);
        let shared = Arc::new(Shared::default());
        let stream = futures::stream::unfold((rx, shared.clone(), false), |(mut rx, shared, done)| async move {
            if done {
                return None;
            }
            let next = tokio::select! {
                biased;
                _ = shared.closed.cancelled() => None,
                m = rx.recv() => m,
            };
            match next {
                Some(m) => {
                    shared.taken.fetch_add(1, Ordering::Relaxed);
                    Some((Ok(m), (rx, shared, false)))
                }
                None => {
                    let why = shared.why.lock().unwrap_or_else(|e| e.into_inner()).take();
                    why.map(|s| (Err(s), (rx, shared, true)))
                }
            }
        });
        (Outbox { tx, shared }, Box::pin(stream))
    }

    /// Queues `msg` without waiting. A full queue means the runner stopped reading: it is cut
    /// off on the spot, so that no shared loop ever waits for it.
    pub fn offer(&self, msg: ServerMessage) -> Result<(), Refused> {
        if self.is_closed() {
            return Err(Refused::Closed);
        }
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Closed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(Status::unavailable("this runner stopped reading its stream; reconnect"));
                Err(Refused::Stuck)
            }
        }
    }

    /// Queues `msg`, waiting at most [`PATIENCE`] for room; a runner that leaves no room for
    /// that long is cut off.
    pub async fn send(&self, msg: ServerMessage) -> Result<(), Refused> {
        tokio::select! {
            _ = self.shared.closed.cancelled() => Err(Refused::Closed),
            sent = tokio::time::timeout(PATIENCE, self.tx.send(msg)) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Refused::Closed),
                Err(_) => {
                    self.close(Status::unavailable("this runner stopped reading its stream; reconnect"));
                    Err(Refused::Stuck)
                }
            },
        }
    }

    /// Ends the stream with `why` after nothing more (queued messages are dropped). The first
    /// reason given wins.
    pub fn close(&self, why: Status) {
        {
            let mut slot = self.shared.why.lock().unwrap_or_else(|e| e.into_inner());
            if self.shared.closed.is_cancelled() {
                return;
            }
            *slot = Some(why);
        }
        self.shared.closed.cancel();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled() || self.tx.is_closed()
    }

    /// Resolves when the stream is cut off.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await
    }

    /// A watch on whether the runner takes its messages; see [`Watch::stalled`].
    pub fn watch(&self) -> Watch {
        Watch { taken: self.taken(), since: None }
    }

    fn taken(&self) -> u64 {
        self.shared.taken.load(Ordering::Relaxed)
    }

    fn pending(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Tells, when asked now and then, whether messages have waited untaken for [`PATIENCE`].
#[derive(Debug)]
pub struct Watch {
    taken: u64,
    /// Since when messages are queued and none was taken.
    since: Option<tokio::time::Instant>,
}

impl Watch {
    pub fn stalled(&mut self, outbox: &Outbox) -> bool {
        let taken = outbox.taken();
        if outbox.pending() == 0 || taken != self.taken {
            self.taken = taken;
            self.since = None;
            return false;
        }
        self.since.get_or_insert_with(tokio::time::Instant::now).elapsed() >= PATIENCE
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn msg() -> ServerMessage {
        ServerMessage { msg: None }
    }

    #[tokio::test]
    async fn a_full_queue_cuts_the_runner_off_without_waiting() {
        let (outbox, mut stream) = Outbox::new(0);
        for _ in 0..SLACK {
            assert_eq!(outbox.offer(msg()), Ok(()));
        }
        assert_eq!(outbox.offer(msg()), Err(Refused::Stuck));
        assert_eq!(outbox.offer(msg()), Err(Refused::Closed));
        // The stream ends with the reason at once, dropping what was queued.
        let end = stream.next().await.expect("an item").expect_err("the reason");
        assert_eq!(end.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_session_waits_for_room_only_so_long() {
        let (outbox, _stream) = Outbox::new(0);
        for _ in 0..SLACK {
            outbox.offer(msg()).unwrap();
        }
        let started = tokio::time::Instant::now();
        assert_eq!(outbox.send(msg()).await, Err(Refused::Stuck));
        assert_eq!(started.elapsed(), PATIENCE);
        assert!(outbox.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn untaken_messages_stall_only_after_patience() {
        let (outbox, mut stream) = Outbox::new(4);
        let mut watch = outbox.watch();
        assert!(!watch.stalled(&outbox), "nothing queued");
        outbox.offer(msg()).unwrap();
        outbox.offer(msg()).unwrap();
        assert!(!watch.stalled(&outbox));
        tokio::time::advance(PATIENCE / 2).await;
        stream.next().await.unwrap().unwrap();
        assert!(!watch.stalled(&outbox), "a message was taken");
        tokio::time::advance(PATIENCE / 2).await;
        assert!(!watch.stalled(&outbox), "the clock restarted at the last take");
        tokio::time::advance(PATIENCE).await;
        assert!(watch.stalled(&outbox));
    }

    #[tokio::test]
    async fn the_first_reason_wins() {
        let (outbox, mut stream) = Outbox::new(1);
        outbox.close(Status::unauthenticated("revoked"));
        outbox.close(Status::unavailable("later"));
        let end = stream.next().await.unwrap().unwrap_err();
        assert_eq!(end.message(), "revoked");
    }
}
