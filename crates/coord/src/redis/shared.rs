//! One multiplexed connection for all of a node's commands and publishes. The pool checks a
//! connection with a round trip (`UNWATCH` and `PING`) every time one is taken from it: under
//! load that was 2.5 round trips a task, a third of every call Redis served. A multiplexed
//! connection carries any number of concurrent commands by itself (they are pipelined on its
//! socket), so the node takes one from the pool — checked once — and sends everything on it.
//! After a command on it fails, it is forgotten: it may be broken (Redis restarted, an answer
//! that timed out), and the next command takes a connection from the pool again, whose check
//! tells a live one from a dead one. A command that found the shared connection closed (Redis
//! went away while it was idle) goes once more on a checked one, as the pool's check before
//! every command would have let it — when running it twice does no harm (a read, an enqueue,
//! a publish, a heartbeat); a dequeue, a lock or a counted hit, whose first run may have
//! happened before the connection died, fails instead, and its caller falls back as for any
//! other coordination error.

use std::sync::Mutex;

use ::redis::RedisResult;
use ::redis::aio::MultiplexedConnection;
use deadpool_redis::{Pool, PoolError};

pub(super) struct Shared {
    pool: Pool,
    current: Mutex<Option<MultiplexedConnection>>,
}

impl Shared {
    pub(super) fn new(pool: Pool) -> Shared {
        Shared { pool, current: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection to send a command on — the shared one, or a checked one from the pool —
    /// and whether it was the shared one (which may have closed since it was last used).
    async fn get(&self) -> Result<(MultiplexedConnection, bool), PoolError> {
        if let Some(c) = self.lock().as_ref() {
            return Ok((c.clone(), true));
        }
        // Two commands that find none at once each take one; the last to arrive stays shared,
        // and both are live.
        let c = (*self.pool.get().await?).clone();
        *self.lock() = Some(c.clone());
        Ok((c, false))
    }

    /// Forgets the shared connection after a command failed, so the next one is checked.
    fn failed(&self) {
        self.lock().take();
    }

    /// Runs `op` on the shared connection. When it fails the connection is forgotten, and when
    /// `again` allows and the shared connection turned out closed, `op` runs once more on a
    /// checked one. The error is the pool's or Redis' reason.
    pub(super) async fn run<T, F>(&self, again: bool, op: impl Fn(MultiplexedConnection) -> F) -> Result<T, String>
    where
        F: std::future::Future<Output = RedisResult<T>>,
    {
        let (c, was_shared) = self.get().await.map_err(|e| e.to_string())?;
        let e = match op(c).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        self.failed();
        let closed = was_shared && (e.is_connection_dropped() || e.is_io_error()) && !e.is_timeout();
        if !(again && closed) {
            return Err(e.to_string());
        }
        let (c, _) = self.get().await.map_err(|e| e.to_string())?;
        op(c).await.map_err(|e| {
            self.failed();
            e.to_string()
        })
    }
}
