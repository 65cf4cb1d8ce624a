//! The in-process coordinator: a broadcast channel per topic. Exactly the semantics of the Redis
//! one within a single process, which is all the embedded default has.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::{Coordinator, Result, Subscription};

/// How many messages a slow subscriber may fall behind before it sees `Lagged`.
const TOPIC_CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub struct Local {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl Local {
    pub fn new() -> Local {
        Local::default()
    }
}

#[async_trait]
impl Coordinator for Local {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = topics.get(topic) {
            // A send fails only when nobody listens any more: forget the topic then.
            if tx.send(payload).is_err() {
                topics.remove(topic);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let tx = topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0);
        Ok(Subscription::new(tx.subscribe()))
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

    #[tokio::test]
    async fn a_slow_subscriber_learns_it_lagged() {
        let c = Local::new();
        let mut sub = c.subscribe("t").await.unwrap();
        for _ in 0..TOPIC_CAPACITY + 10 {
            c.publish("t", Bytes::new()).await.unwrap();
        }
        assert_eq!(sub.recv().await, Received::Lagged(10));
    }
}
