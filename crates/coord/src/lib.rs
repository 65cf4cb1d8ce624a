//! Coordination between services and nodes: pub/sub of task events, log lines, cancellations and
//! dispatch wake-ups; the ready queue; locks; node heartbeats; expiring counters. Coordination is only ever a hint:
//! SQL decides every state change, so a lost message, a flushed queue or a lock held twice costs
//! latency or duplicated (idempotent) work, never correctness.
//!
//! [`Coordinator`] is the interface; [`Local`] is the in-process implementation of the embedded
//! default, and the Redis implementation serves clusters. One shared test suite runs against both.

mod guard;
mod local;
pub mod membership;
mod redis;
pub mod topic;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

pub use crate::redis::{Redis, RedisOptions};
pub use guard::Guarded;
pub use local::Local;
pub use membership::{DrainRequest, Membership};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("coordination backend unavailable: {0}")]
    Unavailable(String),
}

impl baton_core::Coded for Error {
    fn code(&self) -> baton_core::ErrorCode {
        baton_core::ErrorCode::Unavailable
    }
}

/// A shared coordinator.
pub type Coord = Arc<dyn Coordinator>;

/// One entry of the ready queue. Placement order: higher `priority` first, then lower `task_id`
/// (FIFO within a priority, since ids grow). Priorities are clamped into
/// `-MAX_PRIORITY..=MAX_PRIORITY` when enqueued, by every implementation alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Queued {
    pub task_id: i64,
    pub priority: i32,
}

/// The largest priority the queue keeps apart; larger ones are clamped to it (and smaller ones to
/// its negation). The Redis queue packs priority and task id into one exact `f64` score, which
/// leaves 12 bits for the priority; the API allows only -1000..=1000 anyway.
pub const MAX_PRIORITY: i32 = 2047;

/// Clamps a priority into the range the queue keeps apart.
pub(crate) fn clamp_priority(priority: i32) -> i32 {
    priority.clamp(-MAX_PRIORITY, MAX_PRIORITY)
}

/// A lock held by this process until [`Coordinator::unlock`] or its time to live runs out. The
/// token proves ownership: unlocking or extending with another token does nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub name: String,
    pub token: String,
}

/// A fixed-window counter as [`Coordinator::hit`] and [`Coordinator::peek`] report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Hits since the window began; 0 when no window is open.
    pub n: u64,
    /// Until the window ends and the count starts again from 0; zero when no window is open.
    pub resets_in: Duration,
}

/// What a node says about itself in its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The configured `ha.node_id`.
    pub id: String,
    /// Random per process: two live processes with the same `id` have different instances.
    pub instance: String,
    /// `gateway`, `scheduler`, `dispatcher`.
    pub services: Vec<String>,
    pub version: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds of this heartbeat.
    pub last_seen: i64,
    pub draining: bool,
    pub ready: bool,
    /// The most database connections its pool may open (its `database.max_connections`); 0
    /// when it did not say (a node of an earlier version).
    #[serde(default)]
    pub database_pool: u32,
}

/// What [`Coordinator::beat`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    Recorded,
    /// Another live process uses the same node id (its instance is given); this beat was not
    /// recorded. Two nodes with one id is a configuration error to report loudly.
    Duplicate {
        other_instance: String,
    },
}

#[async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    // --- pub/sub ---

    /// Delivers `payload` to every current subscriber of `topic`, on every node. Best effort.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()>;

    /// Receives what is published on `topic` from now on. After the backend was unreachable, a
    /// subscription yields `Received::Lagged` once: whatever was published meanwhile is lost and
    /// the subscriber re-reads the state from SQL.
    async fn subscribe(&self, topic: &str) -> Result<Subscription>;

    // --- the ready queue: which tasks are queued in SQL, in placement order ---

    /// Adds tasks (idempotent: adding a present task changes nothing).
    async fn enqueue(&self, tasks: &[Queued]) -> Result<()>;

    /// Removes tasks (claimed, cancelled or gone); absent ones are ignored. Returns the ones that
    /// were present, in the order given: of callers that dequeue the same task at the same time,
    /// exactly one gets it back, so a dispatcher that dequeues a task before claiming it is the
    /// only one to try (the claim in SQL still decides).
    async fn dequeue(&self, task_ids: &[i64]) -> Result<Vec<i64>>;

    /// Up to `limit` entries in placement order, starting after `after` (exclusive) or at the head.
    async fn queue_page(&self, after: Option<Queued>, limit: usize) -> Result<Vec<Queued>>;

    /// Waits until a task is enqueued (on any node) after this call began, or `timeout` passes.
    /// `true` when woken by an enqueue. A blocking wait, not a polling loop.
    async fn wait_for_work(&self, timeout: Duration) -> Result<bool>;

    /// How many tasks the queue holds.
    async fn queue_len(&self) -> Result<u64>;

    // --- locks ---

    /// Takes `name` for `ttl` if nobody holds it.
    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>>;

    /// Extends a lock this process holds; `false` when it expired or someone else holds it now.
    async fn extend(&self, lock: &Lock, ttl: Duration) -> Result<bool>;

    /// Releases a lock if `lock.token` still holds it.
    async fn unlock(&self, lock: &Lock) -> Result<()>;

    // --- counters ---
    //
    // Fixed-window counters, e.g. of failed logins per user name, shared by every node. The first
    // hit of a key opens a window of the given length; later hits count into it whatever window
    // they pass; when it ends the key is gone and the next hit opens a new one. Fixed rather than
    // sliding windows: one atomic increment per hit, and a `resets_in` that is an honest
    // `Retry-After`.

    /// Counts one hit of `key` and returns the count including it. Opens a window of `window`
    /// when none is open.
    async fn hit(&self, key: &str, window: Duration) -> Result<Count>;

    /// The count of `key` without changing it (`n == 0` when no window is open).
    async fn peek(&self, key: &str) -> Result<Count>;

    /// Ends the window of `key` at once: the count is 0 again.
    async fn clear(&self, key: &str) -> Result<()>;

    // --- versions ---
    //
    // A version stands for the state of something kept in SQL that nodes remember (the templates
    // tasks start from). A writer bumps it after its change commits and before it answers; a
    // reader takes it before it reads SQL and uses what it remembers only while the version is
    // still the one it read under. Values are opaque: a version that was lost (a Redis without
    // persistence restarted) comes back at a random value, not at one a node may still hold.

    /// The current version of `name`.
    async fn version(&self, name: &str) -> Result<u64>;

    /// Moves `name` on to a version it has not had.
    async fn bump(&self, name: &str) -> Result<()>;

    // --- nodes ---

    /// Records this node as alive for `ttl`.
    async fn beat(&self, node: &NodeInfo, ttl: Duration) -> Result<Beat>;

    /// Forgets this node at once (a clean shutdown), if `instance` is still the recorded one.
    async fn leave(&self, node_id: &str, instance: &str) -> Result<()>;

    /// The nodes whose heartbeat has not expired, by id.
    async fn nodes(&self) -> Result<Vec<NodeInfo>>;

    // --- health ---

    /// Checks the backend answers.
    async fn ping(&self) -> Result<()>;

    /// Whether the backend answered lately. Only [`Guarded`] tracks it; others say `true`.
    fn healthy(&self) -> bool {
        true
    }

    /// Changes of [`Coordinator::healthy`]. Others than [`Guarded`] never change: their receiver
    /// reports a closed channel.
    fn health(&self) -> watch::Receiver<bool> {
        watch::channel(true).1
    }

    /// Which implementation this is, for status pages.
    fn kind(&self) -> &'static str;
}

/// Messages of one topic, in publish order.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Bytes>,
    /// Counts the backend's reconnections; a change means messages may have been lost meanwhile.
    /// `None` for backends that cannot lose messages that way (and once the counter is gone).
    reconnects: Option<watch::Receiver<u64>>,
    /// Dropped after `rx` (fields drop in declaration order), so it can tell whether this was the
    /// topic's last subscriber and stop listening to the backend.
    _guard: Option<Box<dyn std::fmt::Debug + Send + Sync>>,
}

/// What a subscriber receives.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Message(Bytes),
    /// The subscriber fell behind (or the backend was unreachable) and `n` messages were
    /// dropped (0 when unknown): re-read the state from SQL.
    Lagged(u64),
    /// The coordinator is gone.
    Closed,
}

impl Subscription {
    pub fn new(rx: broadcast::Receiver<Bytes>) -> Subscription {
        Subscription { rx, reconnects: None, _guard: None }
    }

    /// A subscription to a backend that may reconnect: each change of `reconnects` is reported as
    /// one `Received::Lagged(0)`, before any message that arrived after it. `guard` is dropped
    /// after the receiver.
    pub(crate) fn reconnecting(
        rx: broadcast::Receiver<Bytes>,
        reconnects: watch::Receiver<u64>,
        guard: Box<dyn std::fmt::Debug + Send + Sync>,
    ) -> Subscription {
        Subscription { rx, reconnects: Some(reconnects), _guard: Some(guard) }
    }

    pub async fn recv(&mut self) -> Received {
        if let Some(reconnects) = &mut self.reconnects {
            // Biased: a reconnection is reported before the messages received after it.
            let changed = tokio::select! {
                biased;
                changed = reconnects.changed() => changed,
                m = self.rx.recv() => return Self::received(m),
            };
            match changed {
                Ok(()) => return Received::Lagged(0),
                // The backend is gone: only what is still buffered remains, then `Closed`.
                Err(_) => self.reconnects = None,
            }
        }
        Self::received(self.rx.recv().await)
    }

    fn received(m: std::result::Result<Bytes, broadcast::error::RecvError>) -> Received {
        match m {
            Ok(m) => Received::Message(m),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}
