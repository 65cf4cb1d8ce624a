//! Coordination between services and nodes: pub/sub of task events, log lines, cancellations and
//! dispatch wake-ups. Coordination is only ever a hint: SQL decides every state change, so a lost
//! message costs latency (the periodic SQL sweep catches up), never correctness.
//!
//! [`Coordinator`] is the interface; [`Local`] is the in-process implementation of the embedded
//! default. A Redis implementation joins it for clusters.

mod local;
pub mod topic;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

pub use local::Local;

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

#[async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// Delivers `payload` to every current subscriber of `topic`, on every node. Best effort.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()>;

    /// Receives what is published on `topic` from now on.
    async fn subscribe(&self, topic: &str) -> Result<Subscription>;

    /// Which implementation this is, for status pages.
    fn kind(&self) -> &'static str;
}

/// Messages of one topic, in publish order.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Bytes>,
}

/// What a subscriber receives.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Message(Bytes),
    /// The subscriber fell behind and `n` messages were dropped: re-read the state from SQL.
    Lagged(u64),
    /// The coordinator is gone.
    Closed,
}

impl Subscription {
    pub fn new(rx: broadcast::Receiver<Bytes>) -> Subscription {
        Subscription { rx }
    }

    pub async fn recv(&mut self) -> Received {
        match self.rx.recv().await {
            Ok(m) => Received::Message(m),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}
