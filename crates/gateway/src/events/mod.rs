//! Live events to people (DESIGN.md, "Events to people"; API.md's WebSocket section and the
//! `log/stream` route). SQL stays the truth for events too, and coordination only rings the
//! doorbell: every subscriber keeps its own position (a log's last sequence number, the highest
//! version of each task) and reads SQL whenever a notice reveals a gap, a notice may have been
//! lost, or coordination is down — so every line reaches every subscriber once and in order,
//! whatever node the subscriber and the runner are on.
//!
//! `feed.rs` keeps one coordination subscription per topic per node; `follow.rs` follows one
//! topic for one subscriber; `outbox.rs` is a WebSocket client's bounded queue; `topic.rs` names
//! the topics and who may read them. The WebSocket and SSE routes are `routes/ws.rs` and
//! `routes/sse.rs`.

pub mod feed;
pub mod follow;
pub mod outbox;
pub mod topic;

use serde_json::Value;

/// Something a subscriber is told.
#[derive(Debug, Clone)]
pub enum Event {
    /// Consecutive log lines, as the log API renders them; `last` is the last one's sequence;
    /// `stored_at` when they arrived live (when they were stored, Unix ms).
    Log { lines: Vec<Value>, last: i64, stored_at: Option<i64> },
    /// The task has ended and every line of its log was sent.
    LogEnd,
    /// A task as `GET` returns it, as JSON text; `created` for its first version.
    Task { task: Box<serde_json::value::RawValue>, version: i64, created: bool },
    /// A runner as `GET /runners/{id}` returns it.
    Runner(Value),
    /// A node as the cluster view shows it.
    Node(Value),
}

/// The subscriber is gone (disconnected, unsubscribed, or told to resync): stop following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Where a follower delivers: a WebSocket client's queue, or an SSE response.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Delivers a live event: one that cannot wait (a slow WebSocket client is resynced).
    async fn deliver(&self, topic: &str, event: Event) -> Result<(), Gone>;

    /// Delivers an event read from SQL, waiting for room as long as the subscriber needs: the
    /// read can pause where a live event cannot. Pages are read and delivered during a [`Turn`].
    async fn deliver_read(&self, topic: &str, event: Event) -> Result<(), Gone> {
        self.deliver(topic, event).await
    }

    /// Waits for this subscriber's turn to read SQL: its followers read one at a time, so what
    /// a stalled client makes the node hold is its queue, the batch being written to it and one
    /// page (at most 500 lines), not a page per topic.
    async fn turn(&self) -> Result<Turn, Gone> {
        Ok(Turn { _permit: None })
    }
}

/// A follower's turn to read SQL and deliver what it read; the next one's begins when it drops.
#[derive(Debug)]
pub struct Turn {
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Turn {
    /// The turn that `permit` grants, until it drops.
    pub fn held(permit: tokio::sync::OwnedSemaphorePermit) -> Turn {
        Turn { _permit: Some(permit) }
    }
}

/// Tells every node that who may read what has changed (a member's role, a user, a token, a
/// project): WebSocket connections check their subscriptions again at once. Best effort: they
/// also check every half minute. Every node forgets the callers it remembers (this one before
/// it answers).
pub async fn rights_changed(state: &crate::AppState) {
    state.callers.forget();
    let _ = state.coord.publish(crate::routes::MEMBERS_TOPIC, bytes::Bytes::new()).await;
}
