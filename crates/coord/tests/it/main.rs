//! The coordination test suite. Every behavioural test runs twice, against `Local` and against
//! `Redis` (a private redis-server per test, under a unique key prefix), through the `both!`
//! macro; `redis_only` covers what only Redis has: key prefixes, outages, TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_coord::{Coord, Local, Received, Redis, RedisOptions, Subscription};
use baton_testkit::PrivateRedis;

/// Defines, for each named `async fn name(backend: Backend)`, the tests `name::local` and
/// `name::redis`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn local() {
                super::$name(crate::Backend::local()).await
            }

            #[tokio::test]
            async fn redis() {
                super::$name(crate::Backend::redis()).await
            }
        }
    )*};
}

mod counters;
mod locks;
mod nodes;
mod pubsub;
mod queue;
mod redis_only;
mod versions;

/// One coordination backend under test.
pub enum Backend {
    /// In process, every node is the same `Local`.
    Local(Arc<Local>),
    /// Each node is its own `Redis` connected to this server under this prefix.
    Redis { server: PrivateRedis, prefix: String },
}

impl Backend {
    pub fn local() -> Backend {
        Backend::Local(Arc::new(Local::new()))
    }

    pub fn redis() -> Backend {
        Backend::Redis { server: PrivateRedis::start(), prefix: unique_prefix() }
    }

    /// A handle as another node of the same cluster has it.
    pub async fn node(&self) -> Coord {
        match self {
            Backend::Local(local) => local.clone(),
            Backend::Redis { server, prefix } => Arc::new(connect(&server.url(), prefix).await),
        }
    }

    /// A coordinator of its own that nothing else holds (for tests that drop it).
    pub async fn isolated(&self) -> Coord {
        match self {
            Backend::Local(_) => Arc::new(Local::new()),
            Backend::Redis { server, .. } => Arc::new(connect(&server.url(), &unique_prefix()).await),
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Backend::Redis { .. })
    }
}

/// A prefix no other test uses, even on a shared server.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("test{}-{}:", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

pub async fn connect(url: &str, prefix: &str) -> Redis {
    Redis::connect(RedisOptions { url: url.to_owned(), key_prefix: prefix.to_owned(), pool_size: 4 })
        .await
        .expect("connect to the private redis")
}

/// Awaits `f`, failing the test when it takes longer than `secs` seconds.
pub async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("no result within {secs} s"))
}

/// The next thing a subscription receives (failing after 5 s).
pub async fn next(sub: &mut Subscription) -> Received {
    within(5, sub.recv()).await
}

/// Asserts that nothing arrives for a moment.
pub async fn assert_quiet(sub: &mut Subscription) {
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(300), sub.recv()).await {
        panic!("expected nothing, received {r:?}");
    }
}
