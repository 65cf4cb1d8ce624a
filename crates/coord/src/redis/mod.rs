//! The Redis coordinator, for clusters: every node connects to one Redis, and this is all they
//! share besides SQL. Commands share one multiplexed connection, checked when it is taken from a
//! small pool and given up after a failure ([`shared`]); pub/sub (and with it the wake-ups of
//! `wait_for_work`) runs on one dedicated connection owned by a background task ([`pubsub`]);
//! publishes that wait together go out as one pipeline ([`publisher`]). Every key
//! and every channel starts with the configured prefix, so several clusters (or tests) can share
//! one Redis:
//!
//! | key / channel            | what                                                     |
//! |--------------------------|----------------------------------------------------------|
//! | `{prefix}queue`          | sorted set of queued task ids ([`queue`] explains scores)  |
//! | `{prefix}work`           | channel: "a task was enqueued"                            |
//! | `{prefix}topic:{topic}`  | channel of a pub/sub topic                                |
//! | `{prefix}lock:{name}`    | a lock's random token, with the lock's time to live        |
//! | `{prefix}count:{key}`    | a counter, with its window as time to live ([`counters`])  |
//! | `{prefix}version:{name}` | a version's integer, from a random start ([`versions`])    |
//! | `{prefix}node:{id}`      | a node's `NodeInfo` JSON, with the heartbeat's time to live |
//! | `{prefix}nodes`          | set of node ids that may still have a record               |
//!
//! The Lua scripts ([`locks`], [`nodes`], [`counters`], [`versions`]) read keys they build from the prefix, so this needs a
//! single Redis (or a primary with replicas), not Redis Cluster.

mod counters;
mod locks;
mod nodes;
mod publisher;
mod pubsub;
mod queue;
mod shared;
mod versions;

use std::fmt;
use std::time::Duration;

use ::redis::AsyncConnectionConfig;
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_redis::{Manager, Pool, Runtime};

/// The connection a command goes over.
type Conn = ::redis::aio::MultiplexedConnection;

use crate::{Beat, Coordinator, Count, Error, Lock, NodeInfo, Queued, Result, Subscription};

/// How long to wait for a TCP (and TLS) connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long to wait for Redis to answer a command: an outage must surface as an error within a
/// few seconds, never as a hang.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long to wait for a free pooled connection.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how to reach Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS (`rediss://…#insecure`
    /// skips the certificate check).
    pub url: String,
    /// Starts every key and channel, e.g. `baton:`; distinct prefixes keep clusters apart.
    pub key_prefix: String,
    /// Pooled connections for commands (pub/sub has its own).
    pub pool_size: usize,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = Secret::of(&self.url);
        f.debug_struct("RedisOptions")
            .field("url", &secret.scrub(self.url.clone()))
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// The names of every key and channel, built once from the prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    queue: String,
    work: String,
    topic_prefix: String,
    lock_prefix: String,
    counter_prefix: String,
    version_prefix: String,
    node_prefix: String,
    nodes: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            queue: format!("{prefix}queue"),
            work: format!("{prefix}work"),
            topic_prefix: format!("{prefix}topic:"),
            lock_prefix: format!("{prefix}lock:"),
            counter_prefix: format!("{prefix}count:"),
            version_prefix: format!("{prefix}version:"),
            node_prefix: format!("{prefix}node:"),
            nodes: format!("{prefix}nodes"),
        }
    }

    fn topic(&self, topic: &str) -> String {
        format!("{}{topic}", self.topic_prefix)
    }

    fn lock(&self, name: &str) -> String {
        format!("{}{name}", self.lock_prefix)
    }

    fn counter(&self, key: &str) -> String {
        format!("{}{key}", self.counter_prefix)
    }

    fn version(&self, name: &str) -> String {
        format!("{}{name}", self.version_prefix)
    }

    fn node(&self, id: &str) -> String {
        format!("{}{id}", self.node_prefix)
    }
}

/// The password of the Redis URL, kept only to scrub it from messages: Redis errors do not
/// normally repeat it, but a message that reaches a log or a status page must never hold it.
#[derive(Clone, Default)]
struct Secret(Vec<String>);

impl Secret {
    fn of(url: &str) -> Secret {
        let Some((_, rest)) = url.split_once("://") else { return Secret::default() };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let Some((userinfo, _)) = authority.rsplit_once('@') else { return Secret::default() };
        let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
        let mut forms: Vec<String> =
            [password.to_owned(), percent_decode(password)].into_iter().filter(|p| !p.is_empty()).collect();
        forms.dedup();
        Secret(forms)
    }

    fn scrub(&self, mut message: String) -> String {
        for form in &self.0 {
            message = message.replace(form.as_str(), "***");
        }
        message
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Coordination through one Redis shared by all nodes.
pub struct Redis {
    conns: std::sync::Arc<shared::Shared>,
    keys: Keys,
    secret: Secret,
    pubsub: pubsub::PubSub,
    publisher: publisher::Publisher,
    scripts: Scripts,
}

/// The Lua scripts, hashed once; `redis::Script` loads them again after a restart or flush.
struct Scripts {
    enqueue: ::redis::Script,
    extend: ::redis::Script,
    unlock: ::redis::Script,
    hit: ::redis::Script,
    peek: ::redis::Script,
    version: ::redis::Script,
    bump: ::redis::Script,
    beat: ::redis::Script,
    leave: ::redis::Script,
    nodes: ::redis::Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            enqueue: ::redis::Script::new(queue::ENQUEUE),
            extend: ::redis::Script::new(locks::EXTEND),
            unlock: ::redis::Script::new(locks::UNLOCK),
            hit: ::redis::Script::new(counters::HIT),
            peek: ::redis::Script::new(counters::PEEK),
            version: ::redis::Script::new(versions::READ),
            bump: ::redis::Script::new(versions::BUMP),
            beat: ::redis::Script::new(nodes::BEAT),
            leave: ::redis::Script::new(nodes::LEAVE),
            nodes: ::redis::Script::new(nodes::LIVE),
        }
    }
}

impl fmt::Debug for Redis {
    // The pool's own `Debug` would print the connection info, password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis").field("key_prefix", &self.keys.prefix).finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects the pool and the pub/sub connection. Fails when Redis does not answer within a
    /// few seconds, so a misconfigured cluster stops at start instead of limping along.
    pub async fn connect(opts: RedisOptions) -> Result<Redis> {
        let secret = Secret::of(&opts.url);
        let invalid = |e: ::redis::RedisError| {
            Error::Unavailable(
                secret.scrub(format!("invalid ha.redis.url: {e}; expected redis://host:port or rediss://…")),
            )
        };
        if opts.url.starts_with("rediss://") || opts.url.starts_with("valkeys://") {
            install_tls_provider();
        }
        // TCP_NODELAY (off by default in redis): with Nagle's algorithm a command written while
        // an earlier one is unacknowledged waits until it is, and the shared connection carries
        // every caller's commands at once.
        let info = ::redis::IntoConnectionInfo::into_connection_info(opts.url.as_str())
            .map_err(invalid)?
            .set_tcp_settings(::redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = ::redis::Client::open(info.clone()).map_err(invalid)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let manager = Manager::new_with_config(info, config).map_err(invalid)?;
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(RESPONSE_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot build the redis connection pool: {e}")))?;
        let keys = Keys::new(&opts.key_prefix);
        let pubsub = pubsub::PubSub::start(client, keys.clone(), secret.clone());
        let conns = std::sync::Arc::new(shared::Shared::new(pool));
        let publisher = publisher::Publisher::start(conns.clone());
        let redis = Redis { conns, keys, secret, pubsub, publisher, scripts: Scripts::new() };
        redis.ping().await?;
        redis.pubsub.wait_until_up(CONNECT_TIMEOUT * 2).await?;
        Ok(redis)
    }

    /// The message of a failed command: which operation, and Redis' reason.
    fn unavailable(&self, what: &str, e: impl fmt::Display) -> Error {
        Error::Unavailable(
            self.secret.scrub(format!("redis {what} failed: {e}; check that redis is running at ha.redis.url")),
        )
    }

    /// Runs `op` on the shared connection, and once more on a checked one when the shared one
    /// turned out closed ([`shared`]): for commands that may run twice.
    async fn with<T, F>(&self, what: &str, op: impl Fn(Conn) -> F) -> Result<T>
    where
        F: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        self.run(what, true, op).await
    }

    /// Runs `op` once: for commands whose second run would answer differently if the first ran
    /// (a dequeue, a lock, a counted hit), which a connection that died under them leaves unknown.
    async fn once<T, F>(&self, what: &str, op: impl Fn(Conn) -> F) -> Result<T>
    where
        F: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        self.run(what, false, op).await
    }

    async fn run<T, F>(&self, what: &str, again: bool, op: impl Fn(Conn) -> F) -> Result<T>
    where
        F: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        self.conns.run(again, op).await.map_err(|e| self.unavailable(what, e))
    }
}

/// rustls needs a process-wide crypto provider when more than one could be chosen; install the
/// one this crate builds with unless the process already picked one.
fn install_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: either provider works.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A time to live in milliseconds as Redis takes it: at least 1 (0 is an error) and at most a
/// century (larger values overflow Redis' clock arithmetic).
fn ttl_millis(ttl: Duration) -> u64 {
    const CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).clamp(1, CENTURY_MS)
}

#[async_trait]
impl Coordinator for Redis {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
        self.publisher.publish(self.keys.topic(topic), payload).await.map_err(|e| self.unavailable("publish", e))
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        self.pubsub.subscribe(topic).await
    }

    async fn enqueue(&self, tasks: &[Queued]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.with(
            "enqueue",
            |mut c| async move { queue::enqueue(&mut c, &self.keys, &self.scripts.enqueue, tasks).await },
        )
        .await
    }

    async fn dequeue(&self, task_ids: &[i64]) -> Result<Vec<i64>> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.once("dequeue", |mut c| async move { queue::dequeue(&mut c, &self.keys, task_ids).await }).await
    }

    async fn queue_page(&self, after: Option<Queued>, limit: usize) -> Result<Vec<Queued>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.with("queue page", |mut c| async move { queue::page(&mut c, &self.keys, after, limit).await }).await
    }

    async fn wait_for_work(&self, timeout: Duration) -> Result<bool> {
        self.pubsub.wait_for_work(timeout).await
    }

    async fn queue_len(&self) -> Result<u64> {
        self.with("queue length", |mut c| async move {
            ::redis::cmd("ZCARD").arg(&self.keys.queue).query_async::<u64>(&mut c).await
        })
        .await
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>> {
        self.once("lock", |mut c| async move { locks::try_lock(&mut c, &self.keys, name, ttl).await }).await
    }

    async fn extend(&self, lock: &Lock, ttl: Duration) -> Result<bool> {
        self.with("lock extension", |mut c| async move {
            locks::extend(&mut c, &self.keys, &self.scripts.extend, lock, ttl).await
        })
        .await
    }

    async fn unlock(&self, lock: &Lock) -> Result<()> {
        self.with("unlock", |mut c| async move { locks::unlock(&mut c, &self.keys, &self.scripts.unlock, lock).await })
            .await
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<Count> {
        self.once(
            "counter",
            |mut c| async move { counters::hit(&mut c, &self.keys, &self.scripts.hit, key, window).await },
        )
        .await
    }

    async fn peek(&self, key: &str) -> Result<Count> {
        self.with("counter", |mut c| async move { counters::peek(&mut c, &self.keys, &self.scripts.peek, key).await })
            .await
    }

    async fn clear(&self, key: &str) -> Result<()> {
        self.with("counter", |mut c| async move { counters::clear(&mut c, &self.keys, key).await }).await
    }

    async fn version(&self, name: &str) -> Result<u64> {
        self.with(
            "version",
            |mut c| async move { versions::read(&mut c, &self.keys, &self.scripts.version, name).await },
        )
        .await
    }

    async fn bump(&self, name: &str) -> Result<()> {
        self.with(
            "version bump",
            |mut c| async move { versions::bump(&mut c, &self.keys, &self.scripts.bump, name).await },
        )
        .await
    }

    async fn beat(&self, node: &NodeInfo, ttl: Duration) -> Result<Beat> {
        self.with(
            "heartbeat",
            |mut c| async move { nodes::beat(&mut c, &self.keys, &self.scripts.beat, node, ttl).await },
        )
        .await
    }

    async fn leave(&self, node_id: &str, instance: &str) -> Result<()> {
        self.with("leave", |mut c| async move {
            nodes::leave(&mut c, &self.keys, &self.scripts.leave, node_id, instance).await
        })
        .await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.with("node list", |mut c| async move { nodes::live(&mut c, &self.keys, &self.scripts.nodes).await }).await
    }

    async fn ping(&self) -> Result<()> {
        self.with("ping", |mut c| async move { ::redis::cmd("PING").query_async::<String>(&mut c).await.map(drop) })
            .await
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_scrubbed_in_every_spelling() {
        let s = Secret::of("redis://user:p%40ss@host:6379/0");
        assert_eq!(s.scrub("auth p%40ss / p@ss failed".into()), "auth *** / *** failed");
        let s = Secret::of("rediss://:hunter2@host/#insecure");
        assert_eq!(s.scrub("x hunter2 y".into()), "x *** y");
        assert!(Secret::of("redis://host:6379").0.is_empty());
        assert!(Secret::of("not a url").0.is_empty());
    }

    #[test]
    fn options_do_not_print_the_password() {
        let opts = RedisOptions { url: "redis://:hunter2@h".into(), key_prefix: "p:".into(), pool_size: 4 };
        assert!(!format!("{opts:?}").contains("hunter2"));
    }

    #[test]
    fn connecting_can_run_in_a_spawned_task() {
        fn assert_send<T: Send>(_: &T) {}
        let opts = RedisOptions { url: "redis://h".into(), key_prefix: String::new(), pool_size: 1 };
        assert_send(&Redis::connect(opts));
    }

    #[test]
    fn ttls_stay_in_the_range_redis_accepts() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_millis(Duration::MAX), 100 * 365 * 24 * 3600 * 1000);
    }
}
