//! Pub/sub over one dedicated Redis connection, owned by a background task that also delivers the
//! wake-ups of `wait_for_work`.
//!
//! Subscribers get a local broadcast channel per topic; the task subscribes the topic's Redis
//! channel and forwards each message to it. All SUBSCRIBE and UNSUBSCRIBE commands go through
//! the task, a burst of them at a time (one SUBSCRIBE, then one UNSUBSCRIBE of what nobody
//! listens to by then), so an unsubscribe of a topic nobody listens to any more cannot overtake
//! a new subscriber's subscribe. When the connection drops, the task reconnects with
//! backoff (at most [`MAX_BACKOFF`] between attempts), subscribes every topic that still has
//! subscribers and bumps the reconnection counter, which every subscription reports once as
//! `Received::Lagged(0)` before the messages received after it.
//!
//! The task is always subscribed to the work channel: each message there bumps a counter that
//! `wait_for_work` waits on, so every waiter of the process shares one Redis subscription and
//! nothing polls.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use ::redis::aio::{PubSubSink, PubSubStream};
use ::redis::{Client, Msg, Value};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{CONNECT_TIMEOUT, Keys, RESPONSE_TIMEOUT, Secret};
use crate::{Error, Result, Subscription};

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// A connection that breaks without a reset (a lost network) is only noticed by asking.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long `subscribe` waits for the task, which may be busy reconnecting.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most subscribe and unsubscribe commands carried out in one round trip.
const COMMAND_BATCH: usize = 256;
const DOWN: &str = "the redis pub/sub connection is down (reconnecting); check that redis is running at ha.redis.url";

/// The state the task shares with `Redis` and its subscriptions.
struct Shared {
    keys: Keys,
    secret: Secret,
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    /// Whether the pub/sub connection is established and subscribed.
    up: watch::Sender<bool>,
    /// Bumped after each reconnection.
    reconnects: watch::Sender<u64>,
    /// Bumped by each message on the work channel.
    work: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under this lock is a single map operation: a poisoned lock holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Command {
    Subscribe {
        topic: String,
        done: oneshot::Sender<std::result::Result<(), String>>,
    },
    /// Sent when a topic's last subscriber went away.
    Unsubscribe {
        topic: String,
    },
}

/// The handle `Redis` keeps: it stops the task when dropped.
pub(super) struct PubSub {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Drop for PubSub {
    fn drop(&mut self) {
        // The task holds the topics' senders; once it is gone, subscriptions end with `Closed`.
        self.task.abort();
    }
}

impl PubSub {
    pub(super) fn start(client: Client, keys: Keys, secret: Secret) -> PubSub {
        let shared = Arc::new(Shared {
            keys,
            secret,
            topics: Mutex::default(),
            up: watch::Sender::new(false),
            reconnects: watch::Sender::new(0),
            work: watch::Sender::new(0),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(shared.clone(), client, rx));
        PubSub { shared, commands, task }
    }

    fn down(&self) -> Error {
        Error::Unavailable(DOWN.into())
    }

    /// Waits for the first connection, so a fresh coordinator is ready to use.
    pub(super) async fn wait_until_up(&self, timeout: Duration) -> Result<()> {
        let mut up = self.shared.up.subscribe();
        match tokio::time::timeout(timeout, up.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.down()),
        }
    }

    pub(super) async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        let rx = {
            let mut topics = lock(&self.shared.topics);
            topics
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(crate::topic::backlog(topic)).0)
                .subscribe()
        };
        // Built before the Redis subscription, so a failure below drops it and cleans up, and a
        // reconnection from here on is reported.
        let guard = Unsubscribe {
            topic: topic.to_owned(),
            shared: Arc::downgrade(&self.shared),
            commands: self.commands.clone(),
        };
        let sub = Subscription::reconnecting(rx, self.shared.reconnects.subscribe(), Box::new(guard));
        let (done, confirmed) = oneshot::channel();
        self.commands.send(Command::Subscribe { topic: topic.to_owned(), done }).map_err(|_| self.down())?;
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, confirmed).await {
            Ok(Ok(Ok(()))) => Ok(sub),
            Ok(Ok(Err(message))) => Err(Error::Unavailable(message)),
            Ok(Err(_)) | Err(_) => Err(self.down()),
        }
    }

    /// Fails at once while disconnected (the caller backs off or re-reads SQL), and when the
    /// connection drops during the wait, since a wake-up may be lost then.
    pub(super) async fn wait_for_work(&self, timeout: Duration) -> Result<bool> {
        // Fresh receivers have seen the current values: only later changes count.
        let mut work = self.shared.work.subscribe();
        let mut up = self.shared.up.subscribe();
        if !*up.borrow_and_update() {
            return Err(self.down());
        }
        tokio::select! {
            changed = work.changed() => changed.map(|()| true).map_err(|_| self.down()),
            () = went_down(up) => Err(self.down()),
            () = tokio::time::sleep(timeout) => Ok(false),
        }
    }
}

/// Returns once the connection dropped after `up` was last seen up (never, if the task is gone:
/// `work` reports that). Any change counts, even when it is up again by now: values alternate,
/// so a change means it was down meanwhile and a wake-up may have been lost.
async fn went_down(mut up: watch::Receiver<bool>) {
    if up.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Dropped after a subscription's receiver: when that was the topic's last one, forgets the topic
/// and has the task unsubscribe it.
struct Unsubscribe {
    topic: String,
    shared: Weak<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl fmt::Debug for Unsubscribe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsubscribe").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut topics = lock(&shared.topics);
        if topics.get(&self.topic).is_some_and(|tx| tx.receiver_count() == 0) {
            topics.remove(&self.topic);
            let _ = self.commands.send(Command::Unsubscribe { topic: self.topic.clone() });
        }
    }
}

/// Why `serve` returned.
enum End {
    /// The connection broke: reconnect.
    Lost(String),
    /// Nobody can send commands any more: stop.
    Stop,
}

async fn run(shared: Arc<Shared>, client: Client, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut backoff = MIN_BACKOFF;
    let mut connected_before = false;
    // An outage is logged once as a warning, not once per attempt.
    let mut failures = 0u64;
    loop {
        match open(&shared, &client).await {
            Ok((sink, stream)) => {
                backoff = MIN_BACKOFF;
                failures = 0;
                if connected_before {
                    tracing::info!("redis pub/sub connection restored");
                    shared.reconnects.send_modify(|n| *n = n.wrapping_add(1));
                }
                connected_before = true;
                shared.up.send_replace(true);
                let end = serve(&shared, sink, stream, &mut commands).await;
                shared.up.send_replace(false);
                match end {
                    End::Stop => return,
                    End::Lost(why) => {
                        tracing::warn!(error = %shared.secret.scrub(why), "redis pub/sub connection lost; reconnecting")
                    }
                }
            }
            Err(why) => {
                failures += 1;
                let why = shared.secret.scrub(why);
                if failures == 1 {
                    tracing::warn!(error = %why, "cannot open the redis pub/sub connection; retrying");
                } else {
                    tracing::debug!(error = %why, failures, "cannot open the redis pub/sub connection; retrying");
                }
            }
        }
        if !back_off(backoff, &mut commands).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps `backoff`, refusing subscriptions meanwhile. `false` when the coordinator is gone.
async fn back_off(backoff: Duration, commands: &mut mpsc::UnboundedReceiver<Command>) -> bool {
    let sleep = tokio::time::sleep(backoff);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            command = commands.recv() => match command {
                None => return false,
                Some(Command::Subscribe { done, .. }) => {
                    let _ = done.send(Err(DOWN.into()));
                }
                // Nothing to unsubscribe: the next connection subscribes only live topics.
                Some(Command::Unsubscribe { .. }) => {}
            },
        }
    }
}

/// Connects and subscribes the work channel and every topic that has subscribers.
async fn open(shared: &Shared, client: &Client) -> std::result::Result<(PubSubSink, PubSubStream), String> {
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let (mut sink, stream) = pubsub.split();
    let mut channels = vec![shared.keys.work.clone()];
    channels.extend(lock(&shared.topics).keys().map(|t| shared.keys.topic(t)));
    tokio::time::timeout(RESPONSE_TIMEOUT, sink.subscribe(&channels))
        .await
        .map_err(|_| "subscribing timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok((sink, stream))
}

/// Forwards messages and carries out commands until the connection breaks.
async fn serve(
    shared: &Shared,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> End {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => deliver(shared, &msg),
                None => return End::Lost("the server closed the connection".into()),
            },
            command = commands.recv() => {
                let Some(first) = command else { return End::Stop };
                // Commands that waited meanwhile go with it: one round trip for a burst of
                // followers coming and going (a busy node opens and closes a log topic per task).
                let mut batch = vec![first];
                while batch.len() < COMMAND_BATCH {
                    match commands.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                if let Err(message) = carry_out(shared, &mut sink, batch).await {
                    return End::Lost(message);
                }
            }
            _ = ping.tick() => {
                if let Err(f) = ask(sink.ping::<Value>()).await {
                    return End::Lost(f.message);
                }
            }
        }
    }
}

/// Carries out commands that waited together: one SUBSCRIBE of every topic asked for, then one
/// UNSUBSCRIBE of the topics left that nobody listens to now. In that order the connection ends
/// up subscribed to exactly the topics with subscribers, whatever order the commands came in: a
/// topic subscribed and then left within the batch is unsubscribed, one left and subscribed
/// again stays. `Err` when the connection broke.
async fn carry_out(shared: &Shared, sink: &mut PubSubSink, batch: Vec<Command>) -> std::result::Result<(), String> {
    let mut channels = Vec::new();
    let mut waiting = Vec::new();
    let mut left = std::collections::BTreeSet::new();
    for command in batch {
        match command {
            Command::Subscribe { topic, done } => {
                channels.push(shared.keys.topic(&topic));
                waiting.push(done);
            }
            Command::Unsubscribe { topic } => {
                left.insert(topic);
            }
        }
    }
    if !channels.is_empty() {
        let result = ask(sink.subscribe(&channels)).await;
        let reply = match &result {
            Ok(()) => Ok(()),
            Err(f) => Err(shared.secret.scrub(format!("redis subscribe failed: {}", f.message))),
        };
        for done in waiting {
            let _ = done.send(reply.clone());
        }
        if let Err(Failure { message, broken: true }) = result {
            return Err(message);
        }
    }
    // Someone may have subscribed again since a topic was left.
    let left: Vec<String> = {
        let topics = lock(&shared.topics);
        left.into_iter().filter(|t| !topics.contains_key(t)).map(|t| shared.keys.topic(&t)).collect()
    };
    if !left.is_empty() {
        match ask(sink.unsubscribe(&left)).await {
            Err(Failure { message, broken: true }) => return Err(message),
            Err(f) => {
                tracing::warn!(error = %shared.secret.scrub(f.message), topics = left.len(), "redis unsubscribe failed")
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// A failed request on the pub/sub connection.
struct Failure {
    message: String,
    /// Whether the connection is unusable now; an error reply (say, an ACL denying a channel)
    /// leaves it working.
    broken: bool,
}

/// Awaits a request on the pub/sub connection with the response timeout.
async fn ask<T>(request: impl Future<Output = ::redis::RedisResult<T>>) -> std::result::Result<(), Failure> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            Err(Failure { broken: !matches!(e.kind(), ::redis::ErrorKind::Server(_)), message: e.to_string() })
        }
        Err(_) => Err(Failure { message: "no answer in time".into(), broken: true }),
    }
}

fn deliver(shared: &Shared, msg: &Msg) {
    let channel = msg.get_channel_name();
    if channel == shared.keys.work {
        shared.work.send_modify(|n| *n = n.wrapping_add(1));
        return;
    }
    let Some(topic) = channel.strip_prefix(&shared.keys.topic_prefix) else { return };
    if let Some(tx) = lock(&shared.topics).get(topic) {
        // Fails only when the last subscriber just left; its guard unsubscribes.
        let _ = tx.send(Bytes::copy_from_slice(msg.get_payload_bytes()));
    }
}
