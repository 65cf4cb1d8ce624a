//! A WebSocket client's bounded queue of messages (bounded in bytes: a message may carry a
//! thousand log lines). A client too slow to keep up is never cut off and never sees a gap: when
//! its queue is full, the backlog is dropped, the topics that lost
//! events are marked stale (their followers stop: nothing more of them is queued), and the
//! connection tells the client to resync them, after which it resubscribes from its resume points.
//!
//! Only live events overflow: what a follower catches up on from SQL (a resume, a gap) waits for
//! room instead, since a read can be paused where a live event cannot — a client resuming after
//! a resync would otherwise be resynced again whenever it reads slower than the node reads SQL.
//! Reads fill at most half the queue, so the live events of the client's other topics (and of
//! the same topic once caught up) still find room while a read is paced.
//!
//! Every subscription has a generation: events are queued only from the topic's current one, so
//! a follower of an earlier subscription — one being stopped while its topic is resynced or
//! unsubscribed — can never slip an event in after the gap.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::Gone;

/// The queue of one client.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    /// Rung when the queue empties or a subscription ends: readers waiting for room look again.
    room: Notify,
    /// One follower at a time reads SQL for this client (see `Sink::turn`).
    reads: Arc<Semaphore>,
    /// The most bytes of events queued.
    cap: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Queued messages, serialized, with the topic of each event (`None` for answers to the
    /// client's ops).
    items: VecDeque<(Option<String>, String)>,
    /// Bytes of the events in `items`.
    bytes: usize,
    /// Topics whose events were dropped, to be resynced.
    stale: BTreeSet<String>,
    /// The current subscription of each topic.
    generations: std::collections::HashMap<String, u64>,
    next_generation: u64,
    closed: bool,
}

/// What the connection sends next.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub messages: Vec<String>,
    /// How many of the messages are events (the rest answer the client's ops).
    pub events: usize,
    /// Topics the client must resync (their subscriptions are over).
    pub resync: Vec<String>,
}

impl Outbox {
    pub fn new(cap: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            room: Notify::new(),
            reads: Arc::new(Semaphore::new(1)),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a subscription of `topic`; its follower queues with the generation returned.
    pub fn subscribe(&self, topic: &str) -> u64 {
        let mut s = self.lock();
        s.next_generation += 1;
        let g = s.next_generation;
        s.generations.insert(topic.to_owned(), g);
        s.stale.remove(topic);
        drop(s);
        self.room.notify_waiters();
        g
    }

    /// Ends the subscription of `topic`: nothing of it is queued any more.
    pub fn unsubscribe(&self, topic: &str) {
        self.lock().generations.remove(topic);
        self.room.notify_waiters();
    }

    /// Queues an event of `topic` from its subscription `generation`, unless that subscription is
    /// over, the topic is stale or the queue is closed. A full queue drops its backlog and makes
    /// every topic in it stale, this one too.
    pub fn event(&self, topic: &str, generation: u64, message: String) -> Result<(), Gone> {
        let mut s = self.lock();
        s.open(topic, generation)?;
        if !fits(&s, &message, self.cap) {
            let dropped: Vec<String> = s.items.iter().filter_map(|(t, _)| t.clone()).collect();
            s.items.retain(|(t, _)| t.is_none());
            s.bytes = 0;
            s.stale.extend(dropped);
            s.stale.insert(topic.to_owned());
            drop(s);
            self.ready.notify_one();
            // Readers of the topics just made stale stop waiting.
            self.room.notify_waiters();
            return Err(Gone);
        }
        self.push(s, topic, message);
        Ok(())
    }

    /// Queues an event read from SQL: like [`Outbox::event`], but a queue more than half full
    /// makes it wait until the connection has taken the queue, instead of dropping anything.
    pub async fn event_when_room(&self, topic: &str, generation: u64, message: String) -> Result<(), Gone> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the look below: a `take` between the two still wakes it.
            room.as_mut().enable();
            {
                let s = self.lock();
                s.open(topic, generation)?;
                if fits(&s, &message, self.cap / 2) {
                    self.push(s, topic, message);
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// Waits for the turn to read SQL; `Gone` once the connection is closing.
    pub async fn turn(&self) -> Result<OwnedSemaphorePermit, Gone> {
        self.reads.clone().acquire_owned().await.map_err(|_| Gone)
    }

    fn push(&self, mut s: std::sync::MutexGuard<'_, State>, topic: &str, message: String) {
        s.bytes += message.len();
        s.items.push_back((Some(topic.to_owned()), message));
        drop(s);
        self.ready.notify_one();
    }

    /// Queues an answer to the client (never dropped: the client's own requests bound them).
    pub fn answer(&self, message: Value) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        s.items.push_back((None, message.to_string()));
        drop(s);
        self.ready.notify_one();
    }

    /// Takes everything queued, and the topics to resync, whose subscriptions are over.
    pub fn take(&self) -> Batch {
        let mut s = self.lock();
        let events = s.items.iter().filter(|(topic, _)| topic.is_some()).count();
        let messages = s.items.drain(..).map(|(_, m)| m).collect();
        s.bytes = 0;
        let resync: Vec<String> = std::mem::take(&mut s.stale).into_iter().collect();
        for t in &resync {
            s.generations.remove(t);
        }
        drop(s);
        self.room.notify_waiters();
        Batch { messages, events, resync }
    }

    /// Waits until something is queued or stale.
    pub async fn ready(&self) {
        loop {
            let notified = self.ready.notified();
            {
                let s = self.lock();
                if !s.items.is_empty() || !s.stale.is_empty() || s.closed {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Refuses everything from now on (the connection is closing).
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.room.notify_waiters();
        self.reads.close();
    }
}

/// Whether `message` fits in a queue filled to at most `bound` bytes (one larger than the bound
/// goes, alone).
fn fits(s: &State, message: &str, bound: usize) -> bool {
    s.bytes == 0 || s.bytes + message.len() <= bound
}

impl State {
    /// Whether events of `topic` from subscription `generation` may still be queued.
    fn open(&self, topic: &str, generation: u64) -> Result<(), Gone> {
        if self.closed || self.stale.contains(topic) || self.generations.get(topic) != Some(&generation) {
            return Err(Gone);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_overflow_drops_the_backlog_and_asks_to_resync_every_topic_in_it() {
        // Three one-byte events fit.
        let o = Outbox::new(3);
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|t| o.subscribe(t));
        o.event("a", a, json!(1).to_string()).unwrap();
        o.answer(json!("op"));
        o.event("b", b, json!(2).to_string()).unwrap();
        o.event("a", a, json!(3).to_string()).unwrap();
        assert_eq!(o.event("c", c, json!(4).to_string()), Err(Gone), "full");
        assert_eq!(o.event("a", a, json!(5).to_string()), Err(Gone), "a stale topic takes nothing more");
        o.event("d", d, json!(6).to_string()).unwrap();
        let batch = o.take();
        assert_eq!(batch.messages, ["\"op\"", "6"], "answers stay, the backlog goes");
        assert_eq!(batch.events, 1, "the answer is no event");
        assert_eq!(batch.resync, ["a", "b", "c"]);
        assert_eq!(o.event("a", a, json!(7).to_string()), Err(Gone), "the resynced subscription is over");
        let again = o.subscribe("a");
        o.event("a", again, json!(8).to_string()).unwrap();
        assert_eq!(
            o.event("a", a, json!(9).to_string()),
            Err(Gone),
            "an older subscription's follower slips nothing in"
        );
        assert_eq!(o.take().messages, ["8"], "resubscribed after the resync");
        o.unsubscribe("d");
        assert_eq!(o.event("d", d, json!(10).to_string()), Err(Gone));
        // One event larger than the bound still goes, alone.
        let big = o.subscribe("big");
        o.event("big", big, json!("a long message").to_string()).unwrap();
    }

    #[tokio::test]
    async fn a_read_waits_for_room_instead_of_dropping_anything() {
        // Six bytes: reads fill at most three of them.
        let o = std::sync::Arc::new(Outbox::new(6));
        let (a, b) = (o.subscribe("a"), o.subscribe("b"));
        for n in [1, 2, 3] {
            o.event("a", a, json!(n).to_string()).unwrap();
        }
        let read = tokio::spawn({
            let o = o.clone();
            async move {
                o.event_when_room("a", a, json!(45).to_string()).await?;
                o.event_when_room("a", a, json!(6).to_string()).await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!read.is_finished(), "two bytes more do not fit in half of six");
        // A live event of another topic still finds room while the read waits.
        o.event("b", b, json!(7).to_string()).unwrap();
        assert_eq!(o.take().messages, ["1", "2", "3", "7"], "nothing was dropped");
        assert_eq!(read.await.unwrap(), Ok(()));
        let batch = o.take();
        assert_eq!(batch.messages, ["45", "6"]);
        assert!(batch.resync.is_empty(), "and nothing is to be resynced");
    }

    #[tokio::test]
    async fn a_waiting_read_stops_when_its_subscription_ends() {
        let o = std::sync::Arc::new(Outbox::new(1));
        let waiting = |topic: &'static str, generation: u64| {
            let o = o.clone();
            tokio::spawn(async move { o.event_when_room(topic, generation, json!(9).to_string()).await })
        };
        let [a, b, c] = ["a", "b", "c"].map(|t| o.subscribe(t));
        o.event("a", a, json!(1).to_string()).unwrap();
        let (on_a, on_b, on_c) = (waiting("a", a), waiting("b", b), waiting("c", c));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        o.unsubscribe("b");
        assert_eq!(on_b.await.unwrap(), Err(Gone), "an unsubscribed topic");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!on_a.is_finished() && !on_c.is_finished(), "the others still wait");
        // A live event overflows: the backlog's topic is stale, its waiting read is over.
        assert_eq!(o.event("c", c, json!(2).to_string()), Err(Gone));
        assert_eq!(on_a.await.unwrap(), Err(Gone), "a stale topic");
        assert_eq!(on_c.await.unwrap(), Err(Gone), "the overflowing topic");
        let d = o.subscribe("d");
        o.event("d", d, json!(3).to_string()).unwrap();
        let on_d = waiting("d", d);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        o.close();
        assert_eq!(on_d.await.unwrap(), Err(Gone), "a closing connection");
    }

    #[tokio::test]
    async fn followers_read_in_turns_until_the_connection_closes() {
        let o = std::sync::Arc::new(Outbox::new(8));
        let first = o.turn().await.unwrap();
        let next = tokio::spawn({
            let o = o.clone();
            async move { o.turn().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!next.is_finished(), "one read at a time");
        drop(first);
        assert_eq!(next.await.unwrap(), Ok(()));
        let held = o.turn().await.unwrap();
        let waiting = tokio::spawn({
            let o = o.clone();
            async move { o.turn().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        o.close();
        assert_eq!(waiting.await.unwrap(), Err(Gone), "a closing connection ends the wait");
        drop(held);
    }

    #[tokio::test]
    async fn ready_wakes_for_events_and_closing() {
        let o = std::sync::Arc::new(Outbox::new(2));
        let waiter = tokio::spawn({
            let o = o.clone();
            async move { o.ready().await }
        });
        let a = o.subscribe("a");
        o.event("a", a, json!(1).to_string()).unwrap();
        waiter.await.unwrap();
        o.take();
        o.close();
        o.ready().await;
        assert_eq!(o.event("a", a, json!(2).to_string()), Err(Gone));
    }
}
