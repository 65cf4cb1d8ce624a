//! The in-process coordinator: a broadcast channel per topic, and the queue, locks, counters and
//! node records in memory. Exactly the semantics of the Redis one within a single process, which is all
//! the embedded default has.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::{Beat, Coordinator, Count, Error, Lock, NodeInfo, Queued, Result, Subscription, clamp_priority};

#[derive(Debug)]
pub struct Local {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    queue: Mutex<Queue>,
    /// Bumped by every enqueue that added a task; `wait_for_work` waits for a change.
    work: watch::Sender<u64>,
    locks: Mutex<HashMap<String, Held>>,
    nodes: Mutex<HashMap<String, Held<NodeInfo>>>,
    counters: Mutex<Counters>,
    /// Versions by name; they start at 0 and live as long as the process, as does every node's
    /// memory of what they stand for.
    versions: Mutex<HashMap<String, u64>>,
}

/// Open counter windows. Expired ones are dropped when the map has doubled since the last
/// sweep, so keys that are hit once and never again (a flood of made-up user names) cannot
/// pile up, at an amortised constant cost per hit.
#[derive(Debug, Default)]
struct Counters {
    open: HashMap<String, Held<u64>>,
    sweep_at: usize,
}

/// The size below which counters are never swept.
const COUNTERS_MIN_SWEEP: usize = 1024;

impl Counters {
    fn live(&self, key: &str, now: Instant) -> Option<&Held<u64>> {
        self.open.get(key).filter(|h| h.live(now))
    }

    fn sweep_if_grown(&mut self, now: Instant) {
        if self.open.len() >= self.sweep_at.max(COUNTERS_MIN_SWEEP) {
            self.open.retain(|_, h| h.live(now));
            self.sweep_at = 2 * self.open.len();
        }
    }
}

fn count_of(h: &Held<u64>, now: Instant) -> Count {
    Count { n: h.value, resets_in: h.expires.saturating_duration_since(now) }
}

/// The ready queue: the placement order, and each task's (clamped) priority to find its entry.
#[derive(Debug, Default)]
struct Queue {
    /// `(-priority, task_id)`: ascending order is placement order.
    order: BTreeSet<(i64, i64)>,
    priorities: HashMap<i64, i32>,
}

/// A value that lives until `expires` (tokio's clock, so tests may pause time).
#[derive(Debug)]
struct Held<T = String> {
    value: T,
    expires: Instant,
}

impl<T> Held<T> {
    fn live(&self, now: Instant) -> bool {
        self.expires > now
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (every update is a single
    // map or set operation), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn order_key(q: &Queued) -> (i64, i64) {
    (-i64::from(q.priority), q.task_id)
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Default for Local {
    fn default() -> Local {
        Local {
            topics: Mutex::default(),
            queue: Mutex::default(),
            work: watch::Sender::new(0),
            locks: Mutex::default(),
            nodes: Mutex::default(),
            counters: Mutex::default(),
            versions: Mutex::default(),
        }
    }
}

impl Local {
    pub fn new() -> Local {
        Local::default()
    }
}

#[async_trait]
impl Coordinator for Local {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
        let mut topics = lock(&self.topics);
        if let Some(tx) = topics.get(topic) {
            // A send fails only when nobody listens any more: forget the topic then.
            if tx.send(payload).is_err() {
                topics.remove(topic);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        let mut topics = lock(&self.topics);
        let tx = topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(crate::topic::backlog(topic)).0);
        Ok(Subscription::new(tx.subscribe()))
    }

    async fn enqueue(&self, tasks: &[Queued]) -> Result<()> {
        let mut added = false;
        {
            let mut queue = lock(&self.queue);
            for t in tasks {
                if queue.priorities.contains_key(&t.task_id) {
                    continue;
                }
                let t = Queued { task_id: t.task_id, priority: clamp_priority(t.priority) };
                queue.priorities.insert(t.task_id, t.priority);
                queue.order.insert(order_key(&t));
                added = true;
            }
        }
        if added {
            self.work.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    async fn dequeue(&self, task_ids: &[i64]) -> Result<Vec<i64>> {
        let mut queue = lock(&self.queue);
        let mut removed = Vec::new();
        for &id in task_ids {
            if let Some(priority) = queue.priorities.remove(&id) {
                queue.order.remove(&order_key(&Queued { task_id: id, priority }));
                removed.push(id);
            }
        }
        Ok(removed)
    }

    async fn queue_page(&self, after: Option<Queued>, limit: usize) -> Result<Vec<Queued>> {
        let queue = lock(&self.queue);
        let to_queued = |&(p, task_id): &(i64, i64)| Queued { task_id, priority: -(p as i32) };
        Ok(match after {
            None => queue.order.iter().take(limit).map(to_queued).collect(),
            Some(a) => {
                // The same clamping as on enqueue, so a page boundary read back is found again.
                let from = order_key(&Queued { task_id: a.task_id, priority: clamp_priority(a.priority) });
                queue
                    .order
                    .range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
                    .take(limit)
                    .map(to_queued)
                    .collect()
            }
        })
    }

    async fn wait_for_work(&self, timeout: Duration) -> Result<bool> {
        // A fresh receiver has seen the current count: only later enqueues wake it.
        let mut rx = self.work.subscribe();
        match tokio::time::timeout(timeout, rx.changed()).await {
            Ok(Ok(())) => Ok(true),
            // The sender lives as long as `self`, so this cannot happen while we borrow it.
            Ok(Err(_)) => Err(Error::Unavailable("the in-process coordinator is shutting down".into())),
            Err(_) => Ok(false),
        }
    }

    async fn queue_len(&self) -> Result<u64> {
        Ok(lock(&self.queue).order.len() as u64)
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>> {
        let now = Instant::now();
        let mut locks = lock(&self.locks);
        if locks.get(name).is_some_and(|h| h.live(now)) {
            return Ok(None);
        }
        let token = random_token();
        locks.insert(name.to_owned(), Held { value: token.clone(), expires: now + ttl });
        Ok(Some(Lock { name: name.to_owned(), token }))
    }

    async fn extend(&self, l: &Lock, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut locks = lock(&self.locks);
        match locks.get_mut(&l.name) {
            Some(h) if h.live(now) && h.value == l.token => {
                h.expires = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn unlock(&self, l: &Lock) -> Result<()> {
        let now = Instant::now();
        let mut locks = lock(&self.locks);
        if locks.get(&l.name).is_some_and(|h| h.value == l.token || !h.live(now)) {
            locks.remove(&l.name);
        }
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<Count> {
        let now = Instant::now();
        let mut counters = lock(&self.counters);
        counters.sweep_if_grown(now);
        let h = counters.open.entry(key.to_owned()).or_insert(Held { value: 0, expires: now });
        if !h.live(now) {
            *h = Held { value: 0, expires: now + window };
        }
        h.value = h.value.saturating_add(1);
        Ok(count_of(h, now))
    }

    async fn peek(&self, key: &str) -> Result<Count> {
        let now = Instant::now();
        Ok(lock(&self.counters).live(key, now).map(|h| count_of(h, now)).unwrap_or_default())
    }

    async fn clear(&self, key: &str) -> Result<()> {
        lock(&self.counters).open.remove(key);
        Ok(())
    }

    async fn version(&self, name: &str) -> Result<u64> {
        Ok(lock(&self.versions).get(name).copied().unwrap_or(0))
    }

    async fn bump(&self, name: &str) -> Result<()> {
        *lock(&self.versions).entry(name.to_owned()).or_default() += 1;
        Ok(())
    }

    async fn beat(&self, node: &NodeInfo, ttl: Duration) -> Result<Beat> {
        let now = Instant::now();
        let mut nodes = lock(&self.nodes);
        if let Some(h) = nodes.get(&node.id)
            && h.live(now)
            && h.value.instance != node.instance
        {
            return Ok(Beat::Duplicate { other_instance: h.value.instance.clone() });
        }
        nodes.insert(node.id.clone(), Held { value: node.clone(), expires: now + ttl });
        Ok(Beat::Recorded)
    }

    async fn leave(&self, node_id: &str, instance: &str) -> Result<()> {
        let mut nodes = lock(&self.nodes);
        if nodes.get(node_id).is_some_and(|h| h.value.instance == instance) {
            nodes.remove(node_id);
        }
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let now = Instant::now();
        let mut nodes = lock(&self.nodes);
        nodes.retain(|_, h| h.live(now));
        let mut live: Vec<NodeInfo> = nodes.values().map(|h| h.value.clone()).collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Received;

    #[tokio::test]
    async fn subscribers_get_messages_in_order_and_only_their_topic() {
        let c = Local::new();
        let mut a = c.subscribe("a").await.unwrap();
        let mut a2 = c.subscribe("a").await.unwrap();
        let mut b = c.subscribe("b").await.unwrap();
        for i in 0..3u8 {
            c.publish("a", Bytes::from(vec![i])).await.unwrap();
        }
        c.publish("b", Bytes::from_static(b"x")).await.unwrap();
        for sub in [&mut a, &mut a2] {
            for i in 0..3u8 {
                assert_eq!(sub.recv().await, Received::Message(Bytes::from(vec![i])));
            }
        }
        assert_eq!(b.recv().await, Received::Message(Bytes::from_static(b"x")));
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_fine_and_forgets_the_topic() {
        let c = Local::new();
        c.publish("nobody", Bytes::new()).await.unwrap();
        let sub = c.subscribe("t").await.unwrap();
        drop(sub);
        c.publish("t", Bytes::new()).await.unwrap();
        assert!(c.topics.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_counters_are_swept_once_the_map_has_grown() {
        let c = Local::new();
        for i in 0..COUNTERS_MIN_SWEEP - 1 {
            c.hit(&format!("k{i}"), Duration::from_secs(1)).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.counters.lock().unwrap().open.len(), COUNTERS_MIN_SWEEP - 1, "no sweep below the floor");
        c.hit("fresh", Duration::from_secs(1)).await.unwrap();
        c.hit("fresh", Duration::from_secs(1)).await.unwrap();
        let counters = c.counters.lock().unwrap();
        assert_eq!(counters.open.len(), 1, "expired windows stay after a sweep");
        assert_eq!(counters.open["fresh"].value, 2);
    }

    #[tokio::test]
    async fn a_slow_subscriber_learns_it_lagged() {
        let c = Local::new();
        // A log topic has a shorter backlog than the others; both report what was lost.
        for topic in ["t", "task:7:log"] {
            let mut sub = c.subscribe(topic).await.unwrap();
            for _ in 0..crate::topic::backlog(topic) + 10 {
                c.publish(topic, Bytes::new()).await.unwrap();
            }
            assert_eq!(sub.recv().await, Received::Lagged(10), "{topic}");
        }
        assert!(crate::topic::backlog("task:7:log") < crate::topic::backlog("project:7"));
    }
}
