//! One coordination subscription per topic per node, fanned out in process to every subscriber
//! of the topic on this node (WebSocket and SSE clients alike): no subscriber ever has a Redis
//! subscription of its own. A feed lives as long as one subscriber holds it.
//!
//! A feed says [`Feed::Gap`] whenever notices may have been lost — the subscription was
//! (re)established, coordination reconnected, or the subscriber fell behind — and its
//! subscribers then read SQL, the truth, from where they are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use baton_coord::{Coord, Received};
use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::task::AbortOnDropHandle;

/// Notices a slow subscriber may be behind before it is told of a gap; a task's log has the
/// coordinators' shorter backlog (`baton_coord::topic::LOG_BACKLOG`, which says why).
const BACKLOG: usize = 1024;

/// What a subscriber of a topic receives.
#[derive(Debug, Clone)]
pub enum Feed {
    /// A notice as published.
    Notice(Bytes),
    /// Notices may have been lost: read SQL.
    Gap,
}

/// The feeds of this node, by topic.
#[derive(Debug)]
pub struct Feeds {
    coord: Coord,
    topics: Mutex<HashMap<String, Weak<Topic>>>,
}

/// One topic's coordination subscription and its fan-out.
#[derive(Debug)]
pub struct Topic {
    tx: broadcast::Sender<Feed>,
    _forward: AbortOnDropHandle<()>,
}

/// A subscriber's end of a feed; the topic's subscription lives while one exists.
#[derive(Debug)]
pub struct Subscriber {
    rx: broadcast::Receiver<Feed>,
    _topic: Arc<Topic>,
    fresh: bool,
}

impl Subscriber {
    /// Whether this subscriber opened the topic's feed: a [`Feed::Gap`] follows once its
    /// subscription holds, and SQL read before then would be read again.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// The next notice or gap; `None` when the feed is gone.
    pub async fn next(&mut self) -> Option<Feed> {
        match self.rx.recv().await {
            Ok(f) => Some(f),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Feed::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Subscriber {
    /// What has arrived already, without waiting; `None` when nothing has (or the feed is gone).
    pub fn try_next(&mut self) -> Option<Feed> {
        match self.rx.try_recv() {
            Ok(f) => Some(f),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(Feed::Gap),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => None,
        }
    }
}

impl Feeds {
    pub fn new(coord: Coord) -> Feeds {
        Feeds { coord, topics: Mutex::new(HashMap::new()) }
    }

    /// Subscribes to `topic`, sharing the node's subscription when there is one.
    pub fn subscribe(&self, topic: &str) -> Subscriber {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = topics.get(topic).and_then(Weak::upgrade) {
            return Subscriber { rx: t.tx.subscribe(), _topic: t, fresh: false };
        }
        topics.retain(|_, t| t.strong_count() > 0);
        let backlog = if baton_coord::topic::is_task_log(topic) { baton_coord::topic::LOG_BACKLOG } else { BACKLOG };
        let (tx, rx) = broadcast::channel(backlog);
        let forward = tokio::spawn(forward(self.coord.clone(), topic.to_owned(), tx.clone()));
        let t = Arc::new(Topic { tx, _forward: AbortOnDropHandle::new(forward) });
        topics.insert(topic.to_owned(), Arc::downgrade(&t));
        Subscriber { rx, _topic: t, fresh: true }
    }
}

/// Forwards a topic's coordination messages to its subscribers, subscribing again whenever the
/// subscription fails, until the last subscriber is gone (then this task is aborted).
async fn forward(coord: Coord, topic: String, tx: broadcast::Sender<Feed>) {
    loop {
        match coord.subscribe(&topic).await {
            Ok(mut sub) => {
                // Whatever was published before the subscription took hold is SQL's to tell.
                let _ = tx.send(Feed::Gap);
                loop {
                    match sub.recv().await {
                        Received::Message(b) => {
                            let _ = tx.send(Feed::Notice(b));
                        }
                        Received::Lagged(_) => {
                            let _ = tx.send(Feed::Gap);
                        }
                        Received::Closed => break,
                    }
                }
            }
            Err(e) => tracing::debug!(topic, error = %e, "cannot subscribe to events; subscribers read SQL meanwhile"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
