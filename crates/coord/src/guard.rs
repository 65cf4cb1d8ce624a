//! A coordinator wrapper that fails fast while its backend is down. Without it every publish on
//! the hot path would wait for a connect timeout during a Redis outage; with it, callers learn at
//! once that coordination is unavailable and fall back to SQL (the degraded mode), and a probe
//! brings coordination back as soon as the backend answers again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Beat, Coord, Coordinator, Count, Error, Lock, NodeInfo, Queued, Result, Subscription};

/// How long one call may take before the backend counts as down.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the backend is probed, up or down.
const PROBE_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Guarded {
    inner: Coord,
    healthy: watch::Sender<bool>,
}

impl Guarded {
    /// Wraps `inner`; call [`Guarded::probe`] in a task to detect recovery.
    pub fn new(inner: Coord) -> Arc<Guarded> {
        Arc::new(Guarded { inner, healthy: watch::channel(true).0 })
    }

    fn set(&self, up: bool, why: &str) {
        let changed = self.healthy.send_if_modified(|h| std::mem::replace(h, up) != up);
        if changed && up {
            tracing::info!(backend = self.inner.kind(), "coordination is back; leaving degraded mode");
        } else if changed {
            tracing::warn!(
                backend = self.inner.kind(),
                error = why,
                "coordination unreachable; dispatching from SQL until it returns"
            );
        }
    }

    /// Pings the backend until `shutdown`, keeping the health flag true to what it answers.
    pub async fn probe(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match tokio::time::timeout(CALL_TIMEOUT, self.inner.ping()).await {
                Ok(Ok(())) => self.set(true, ""),
                Ok(Err(e)) => self.set(false, &e.to_string()),
                Err(_) => self.set(false, "no answer to ping"),
            }
        }
    }

    async fn call<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        if !*self.healthy.borrow() {
            return Err(Error::Unavailable("coordination backend is down".into()));
        }
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.set(false, &e.to_string());
                Err(e)
            }
            Err(_) => {
                self.set(false, "no answer");
                Err(Error::Unavailable(format!("no answer within {CALL_TIMEOUT:?}")))
            }
        }
    }
}

#[async_trait]
impl Coordinator for Guarded {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
        self.call(self.inner.publish(topic, payload)).await
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        // A subscription outlives outages by itself (it reports `Lagged` after one): always pass.
        self.inner.subscribe(topic).await
    }

    async fn enqueue(&self, tasks: &[Queued]) -> Result<()> {
        self.call(self.inner.enqueue(tasks)).await
    }

    async fn dequeue(&self, task_ids: &[i64]) -> Result<Vec<i64>> {
        self.call(self.inner.dequeue(task_ids)).await
    }

    async fn queue_page(&self, after: Option<Queued>, limit: usize) -> Result<Vec<Queued>> {
        self.call(self.inner.queue_page(after, limit)).await
    }

    async fn wait_for_work(&self, timeout: Duration) -> Result<bool> {
        if !*self.healthy.borrow() {
            // Down: wait for the backend to return (or the timeout) instead of failing in a loop.
            let mut health = self.healthy.subscribe();
            let _ = tokio::time::timeout(timeout, health.wait_for(|up| *up)).await;
            return Ok(false);
        }
        // Not `call`: this one waits on purpose, longer than a call may take.
        match self.inner.wait_for_work(timeout).await {
            Ok(woken) => Ok(woken),
            Err(e) => {
                self.set(false, &e.to_string());
                Err(e)
            }
        }
    }

    async fn queue_len(&self) -> Result<u64> {
        self.call(self.inner.queue_len()).await
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>> {
        self.call(self.inner.try_lock(name, ttl)).await
    }

    async fn extend(&self, lock: &Lock, ttl: Duration) -> Result<bool> {
        self.call(self.inner.extend(lock, ttl)).await
    }

    async fn unlock(&self, lock: &Lock) -> Result<()> {
        self.call(self.inner.unlock(lock)).await
    }

    // Counters fail fast like everything else while the backend is down. Their users must not
    // treat that as "no count" (failing open) nor as "over the limit" (locking everyone out):
    // the gateway's login throttle keeps counting in process until coordination returns.
    async fn hit(&self, key: &str, window: Duration) -> Result<Count> {
        self.call(self.inner.hit(key, window)).await
    }

    async fn peek(&self, key: &str) -> Result<Count> {
        self.call(self.inner.peek(key)).await
    }

    async fn clear(&self, key: &str) -> Result<()> {
        self.call(self.inner.clear(key)).await
    }

    async fn version(&self, name: &str) -> Result<u64> {
        self.call(self.inner.version(name)).await
    }

    async fn bump(&self, name: &str) -> Result<()> {
        self.call(self.inner.bump(name)).await
    }

    async fn beat(&self, node: &NodeInfo, ttl: Duration) -> Result<Beat> {
        self.call(self.inner.beat(node, ttl)).await
    }

    async fn leave(&self, node_id: &str, instance: &str) -> Result<()> {
        self.call(self.inner.leave(node_id, instance)).await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.call(self.inner.nodes()).await
    }

    async fn ping(&self) -> Result<()> {
        self.call(self.inner.ping()).await
    }

    fn healthy(&self) -> bool {
        *self.healthy.borrow()
    }

    fn health(&self) -> watch::Receiver<bool> {
        self.healthy.subscribe()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;
    use crate::Local;

    /// The in-process coordinator behind a switch that makes every call fail, counting the calls
    /// that reach it.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: Local,
        down: AtomicBool,
        calls: AtomicU32,
    }

    impl Flaky {
        fn gate(&self) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) { Err(Error::Unavailable("down".into())) } else { Ok(()) }
        }
    }

    #[async_trait]
    impl Coordinator for Flaky {
        async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
            self.gate()?;
            self.inner.publish(topic, payload).await
        }
        async fn subscribe(&self, topic: &str) -> Result<Subscription> {
            self.inner.subscribe(topic).await
        }
        async fn enqueue(&self, tasks: &[Queued]) -> Result<()> {
            self.gate()?;
            self.inner.enqueue(tasks).await
        }
        async fn dequeue(&self, task_ids: &[i64]) -> Result<Vec<i64>> {
            self.gate()?;
            self.inner.dequeue(task_ids).await
        }
        async fn queue_page(&self, after: Option<Queued>, limit: usize) -> Result<Vec<Queued>> {
            self.gate()?;
            self.inner.queue_page(after, limit).await
        }
        async fn wait_for_work(&self, timeout: Duration) -> Result<bool> {
            self.gate()?;
            self.inner.wait_for_work(timeout).await
        }
        async fn queue_len(&self) -> Result<u64> {
            self.gate()?;
            self.inner.queue_len().await
        }
        async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>> {
            self.gate()?;
            self.inner.try_lock(name, ttl).await
        }
        async fn extend(&self, lock: &Lock, ttl: Duration) -> Result<bool> {
            self.gate()?;
            self.inner.extend(lock, ttl).await
        }
        async fn unlock(&self, lock: &Lock) -> Result<()> {
            self.gate()?;
            self.inner.unlock(lock).await
        }
        async fn hit(&self, key: &str, window: Duration) -> Result<Count> {
            self.gate()?;
            self.inner.hit(key, window).await
        }
        async fn peek(&self, key: &str) -> Result<Count> {
            self.gate()?;
            self.inner.peek(key).await
        }
        async fn clear(&self, key: &str) -> Result<()> {
            self.gate()?;
            self.inner.clear(key).await
        }
        async fn version(&self, name: &str) -> Result<u64> {
            self.gate()?;
            self.inner.version(name).await
        }
        async fn bump(&self, name: &str) -> Result<()> {
            self.gate()?;
            self.inner.bump(name).await
        }
        async fn beat(&self, node: &NodeInfo, ttl: Duration) -> Result<Beat> {
            self.gate()?;
            self.inner.beat(node, ttl).await
        }
        async fn leave(&self, node_id: &str, instance: &str) -> Result<()> {
            self.gate()?;
            self.inner.leave(node_id, instance).await
        }
        async fn nodes(&self) -> Result<Vec<NodeInfo>> {
            self.gate()?;
            self.inner.nodes().await
        }
        async fn ping(&self) -> Result<()> {
            self.gate()
        }
        fn kind(&self) -> &'static str {
            "flaky"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_makes_calls_fail_fast_until_the_probe_sees_the_backend_again() {
        let flaky = Arc::new(Flaky::default());
        let guarded = Guarded::new(flaky.clone());
        let stop = CancellationToken::new();
        tokio::spawn(guarded.clone().probe(stop.clone()));
        let q = Queued { task_id: 1, priority: 0 };
        guarded.enqueue(&[q]).await.unwrap();
        assert!(guarded.healthy());

        flaky.down.store(true, Ordering::SeqCst);
        assert!(guarded.enqueue(&[q]).await.is_err());
        assert!(!guarded.healthy(), "one failure marks the backend down");
        let reached = flaky.calls.load(Ordering::SeqCst);
        for _ in 0..10 {
            assert!(guarded.queue_page(None, 10).await.is_err());
        }
        // Only the probe (every 500 ms of paused time) may have reached it meanwhile.
        assert!(flaky.calls.load(Ordering::SeqCst) - reached <= 1, "calls while down must not reach the backend");

        // Waiting for work while down waits (no busy loop) and returns when it comes back.
        let mut health = guarded.health();
        flaky.down.store(false, Ordering::SeqCst);
        assert!(!guarded.wait_for_work(Duration::from_secs(5)).await.unwrap(), "no work came, only the backend");
        health.wait_for(|up| *up).await.unwrap();
        assert!(guarded.healthy());
        assert_eq!(guarded.queue_page(None, 10).await.unwrap(), vec![q]);
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn counters_fail_fast_while_down_and_count_again_after() {
        let flaky = Arc::new(Flaky::default());
        let guarded = Guarded::new(flaky.clone());
        let window = Duration::from_secs(60);
        assert_eq!(guarded.hit("k", window).await.unwrap().n, 1);
        flaky.down.store(true, Ordering::SeqCst);
        assert!(guarded.hit("k", window).await.is_err());
        let reached = flaky.calls.load(Ordering::SeqCst);
        assert!(guarded.peek("k").await.is_err() && guarded.clear("k").await.is_err());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), reached, "calls while down must not reach the backend");
        flaky.down.store(false, Ordering::SeqCst);
        let stop = CancellationToken::new();
        tokio::spawn(guarded.clone().probe(stop.clone()));
        guarded.health().wait_for(|up| *up).await.unwrap();
        assert_eq!(guarded.hit("k", window).await.unwrap().n, 2, "the count kept in the backend goes on");
        stop.cancel();
    }
}
