//! What only the Redis coordinator has: key prefixes that keep clusters apart, outages (every
//! call fails fast while Redis is down, and subscribers learn they may have missed messages once
//! it is back), unsubscribing unused topics, TLS.

use std::future::Future;
use std::time::{Duration, Instant};

use baton_coord::{Beat, Coordinator, Error, NodeInfo, Queued, Received, Redis, RedisOptions};
use baton_testkit::{PrivateRedis, free_port};
use bytes::Bytes;

use crate::{assert_quiet, connect, next, unique_prefix, within};

const LONG: Duration = Duration::from_secs(30);

fn node(id: &str, instance: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        instance: instance.into(),
        services: vec!["scheduler".into()],
        version: "0.1.0".into(),
        started_at: 1,
        last_seen: 2,
        draining: false,
        ready: true,
        database_pool: 10,
    }
}

/// Asserts `call` fails with `Unavailable` within a few seconds, and returns the message.
async fn unavailable<T: std::fmt::Debug>(what: &str, call: impl Future<Output = baton_coord::Result<T>>) -> String {
    let started = Instant::now();
    let result = within(10, call).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{what} took {:?}", started.elapsed());
    match result {
        Err(Error::Unavailable(message)) => {
            assert!(!message.is_empty());
            message
        }
        Ok(v) => panic!("{what} succeeded while redis was down: {v:?}"),
    }
}

/// How many `PING`s the server has answered, and how many clients are connected to it (this
/// one included).
async fn pings_and_clients(url: &str) -> (u64, usize) {
    let mut c = ::redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let stats: String = ::redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
    let pings = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap());
    let clients: String = ::redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap();
    (pings, clients.lines().count())
}

#[tokio::test]
async fn commands_share_one_connection_checked_once_not_before_each_command() {
    let server = PrivateRedis::start();
    let redis = connect(&server.url(), &unique_prefix()).await;
    let (pings, _) = pings_and_clients(&server.url()).await;

    for round in 0..20 {
        // Commands at once, and one after another.
        let tasks: Vec<[Queued; 1]> = (0..10).map(|i| [Queued { task_id: round * 10 + i, priority: 0 }]).collect();
        for r in futures::future::join_all(tasks.iter().map(|t| redis.enqueue(t))).await {
            r.unwrap();
        }
        redis.publish("t", Bytes::new()).await.unwrap();
        redis.queue_len().await.unwrap();
    }
    assert_eq!(redis.queue_len().await.unwrap(), 200);

    let (after, clients) = pings_and_clients(&server.url()).await;
    assert!(
        after - pings <= 1,
        "{} checks for 241 commands: one connection is checked when it is taken",
        after - pings
    );
    // Commands, pub/sub, and this test's own client.
    assert!(clients <= 3, "{clients} clients: concurrent commands share one connection");
}

#[tokio::test]
async fn prefixes_keep_clusters_apart() {
    let server = PrivateRedis::start();
    let a = connect(&server.url(), &unique_prefix()).await;
    let b = connect(&server.url(), &unique_prefix()).await;
    let mut sub_a = a.subscribe("t").await.unwrap();
    let mut sub_b = b.subscribe("t").await.unwrap();
    a.publish("t", Bytes::from_static(b"for a")).await.unwrap();
    assert_eq!(next(&mut sub_a).await, Received::Message(Bytes::from_static(b"for a")));
    assert_quiet(&mut sub_b).await;

    a.enqueue(&[Queued { task_id: 1, priority: 0 }]).await.unwrap();
    assert_eq!(b.queue_len().await.unwrap(), 0);
    assert!(!b.wait_for_work(Duration::from_millis(300)).await.unwrap(), "a's enqueue does not wake b");

    assert!(a.try_lock("l", LONG).await.unwrap().is_some());
    assert!(b.try_lock("l", LONG).await.unwrap().is_some());

    assert_eq!(a.beat(&node("n", "i1"), LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(b.beat(&node("n", "i2"), LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(a.nodes().await.unwrap(), vec![node("n", "i1")]);
}

#[tokio::test]
async fn calls_fail_fast_while_redis_is_down_and_work_again_after() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix();
    let (one, two) = (connect(&server.url(), &prefix).await, connect(&server.url(), &prefix).await);
    let mut sub = one.subscribe("t").await.unwrap();
    let mut other_node_sub = two.subscribe("t").await.unwrap();
    let lock = one.try_lock("l", LONG).await.unwrap().unwrap();
    let q = Queued { task_id: 7, priority: 1 };

    server.stop();
    unavailable("ping", one.ping()).await;
    let message = unavailable("publish", one.publish("t", Bytes::new())).await;
    assert!(message.contains("publish"), "the message names the operation: {message}");
    unavailable("subscribe", one.subscribe("u")).await;
    unavailable("enqueue", one.enqueue(&[q])).await;
    unavailable("dequeue", one.dequeue(&[7])).await;
    unavailable("queue page", one.queue_page(None, 10)).await;
    unavailable("queue length", one.queue_len()).await;
    unavailable("wait for work", one.wait_for_work(LONG)).await;
    unavailable("lock", one.try_lock("m", LONG)).await;
    unavailable("extend", one.extend(&lock, LONG)).await;
    unavailable("unlock", one.unlock(&lock)).await;
    unavailable("beat", one.beat(&node("n", "i"), LONG)).await;
    unavailable("leave", one.leave("n", "i")).await;
    unavailable("nodes", one.nodes()).await;
    unavailable("counter hit", one.hit("c", LONG)).await;
    unavailable("counter peek", one.peek("c")).await;
    unavailable("counter clear", one.clear("c")).await;

    server.start_again();
    // Every live subscription learns it may have missed messages, then receives new ones.
    assert_eq!(within(10, sub.recv()).await, Received::Lagged(0));
    assert_eq!(within(10, other_node_sub.recv()).await, Received::Lagged(0));
    two.publish("t", Bytes::from_static(b"back")).await.unwrap();
    assert_eq!(next(&mut sub).await, Received::Message(Bytes::from_static(b"back")));
    assert_eq!(next(&mut other_node_sub).await, Received::Message(Bytes::from_static(b"back")));
    assert_quiet(&mut sub).await;

    // The restarted server is empty, and the scripts load again.
    one.ping().await.unwrap();
    assert!(!one.extend(&lock, LONG).await.unwrap(), "the lock died with the server");
    assert!(two.try_lock("l", LONG).await.unwrap().is_some());
    assert_eq!(one.beat(&node("n", "i"), LONG).await.unwrap(), Beat::Recorded);
    let waiter = tokio::spawn(async move { (one.wait_for_work(LONG).await, one) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    two.enqueue(&[q]).await.unwrap();
    let (woken, _one) = within(5, waiter).await.unwrap();
    assert!(woken.unwrap());
    assert_eq!(two.queue_page(None, 10).await.unwrap(), vec![q]);
}

#[tokio::test]
async fn a_counter_is_one_key_under_the_prefix_expiring_with_its_window() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix();
    let c = connect(&server.url(), &prefix).await;
    c.hit("login:user:x", LONG).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}count:login:user:x");
    let value: i64 = redis::cmd("GET").arg(&key).query_async(&mut raw).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await.unwrap();
    assert_eq!(value, 1);
    assert!(ttl > 0 && ttl <= LONG.as_millis() as i64, "the window is the key's time to live: {ttl}");
    // A key that lost its time to live (set by hand, say) gets the window on the next hit.
    redis::cmd("PERSIST").arg(&key).query_async::<i64>(&mut raw).await.unwrap();
    assert!(c.hit("login:user:x", LONG).await.unwrap().resets_in <= LONG);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await.unwrap();
    assert!(ttl > 0, "a counter never lives forever: {ttl}");
}

#[tokio::test]
async fn a_wait_in_progress_fails_when_the_connection_drops() {
    let server = PrivateRedis::start();
    let c = connect(&server.url(), &unique_prefix()).await;
    let waiter = tokio::spawn(async move { c.wait_for_work(LONG).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop();
    let result = within(5, waiter).await.unwrap();
    assert!(matches!(result, Err(Error::Unavailable(_))), "{result:?}");
}

/// A plain connection to `server`, to look at what the coordinator left there.
async fn raw_connection(server: &PrivateRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// The channels under `prefix` that some connection is subscribed to, sorted.
async fn subscribed(mut raw: redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> =
        redis::cmd("PUBSUB").arg("CHANNELS").arg(format!("{prefix}*")).query_async(&mut raw).await.unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn topics_nobody_listens_to_are_unsubscribed() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix();
    let c = connect(&server.url(), &prefix).await;
    let mut raw = raw_connection(&server).await;
    let channels = |raw: &mut redis::aio::MultiplexedConnection| subscribed(raw.clone(), &prefix);
    let work = format!("{prefix}work");
    let topic = format!("{prefix}topic:t");
    assert_eq!(channels(&mut raw).await, vec![work.clone()]);
    let first = c.subscribe("t").await.unwrap();
    let second = c.subscribe("t").await.unwrap();
    assert_eq!(channels(&mut raw).await, vec![topic.clone(), work.clone()]);
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(channels(&mut raw).await, vec![topic.clone(), work.clone()], "one subscriber is left");
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while channels(&mut raw).await != vec![work.clone()] {
        assert!(Instant::now() < deadline, "the unused topic is still subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And subscribing again works.
    let mut again = c.subscribe("t").await.unwrap();
    c.publish("t", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(next(&mut again).await, Received::Message(Bytes::from_static(b"x")));
}

#[tokio::test]
async fn a_burst_of_subscribers_coming_and_going_leaves_exactly_the_topics_listened_to() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix();
    let c = connect(&server.url(), &prefix).await;
    let raw = raw_connection(&server).await;
    // 300 subscriptions at once over 60 topics; those of odd topics leave as soon as they are
    // confirmed, or give up waiting for it (a client gone mid-subscribe), while others still
    // wait: subscribes and unsubscribes of the same topics are carried out together.
    let subs = futures::future::join_all((0..300).map(|i| {
        let c = &c;
        async move {
            let (n, topic) = (i % 60, format!("t{}", i % 60));
            if n % 2 == 1 && i % 4 == 1 {
                // Sends its subscribe, then is dropped before the answer.
                let _ = tokio::time::timeout(Duration::ZERO, c.subscribe(&topic)).await;
                return None;
            }
            let sub = c.subscribe(&topic).await.unwrap();
            (n % 2 == 0).then_some((n, sub))
        }
    }))
    .await;
    let mut kept: Vec<(usize, baton_coord::Subscription)> = subs.into_iter().flatten().collect();
    let mut want: Vec<String> = (0..60).step_by(2).map(|n| format!("{prefix}topic:t{n}")).collect();
    want.push(format!("{prefix}work"));
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let names = subscribed(raw.clone(), &prefix).await;
        if names == want {
            break;
        }
        assert!(Instant::now() < deadline, "subscribed: {names:?}, listened to: {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every kept subscriber hears its topic.
    for n in (0..60).step_by(2) {
        c.publish(&format!("t{n}"), Bytes::from(vec![n as u8])).await.unwrap();
    }
    for (n, sub) in &mut kept {
        assert_eq!(next(sub).await, Received::Message(Bytes::from(vec![*n as u8])), "t{n}");
    }
}

#[tokio::test]
async fn a_flushed_redis_loses_only_its_state() {
    let server = PrivateRedis::start();
    let c = connect(&server.url(), &unique_prefix()).await;
    let mut sub = c.subscribe("t").await.unwrap();
    c.enqueue(&[Queued { task_id: 1, priority: 0 }]).await.unwrap();
    c.beat(&node("n", "i"), LONG).await.unwrap();
    let lock = c.try_lock("l", LONG).await.unwrap().unwrap();
    server.flushall();
    assert_eq!(c.queue_len().await.unwrap(), 0);
    assert!(c.nodes().await.unwrap().is_empty());
    assert!(!c.extend(&lock, LONG).await.unwrap());
    assert!(c.try_lock("l", LONG).await.unwrap().is_some());
    c.publish("t", Bytes::from_static(b"still here")).await.unwrap();
    assert_eq!(next(&mut sub).await, Received::Message(Bytes::from_static(b"still here")));
}

#[tokio::test]
async fn a_version_lost_with_the_data_comes_back_at_a_value_no_node_holds() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix();
    let c = connect(&server.url(), &prefix).await;
    let mut held = vec![c.version("templates").await.unwrap()];
    c.bump("templates").await.unwrap();
    held.push(c.version("templates").await.unwrap());
    let mut raw = raw_connection(&server).await;
    let stored: u64 = redis::cmd("GET").arg(format!("{prefix}version:templates")).query_async(&mut raw).await.unwrap();
    assert_eq!(stored, held[1], "one key under the prefix");
    server.flushall();
    let after = c.version("templates").await.unwrap();
    assert!(!held.contains(&after), "{after} after {held:?}: a node remembering {held:?} would trust it");
    assert!(after < 1 << 53, "exact through Lua's numbers: {after}");
    // A bump of a lost version starts afresh too.
    server.flushall();
    c.bump("templates").await.unwrap();
    let bumped = c.version("templates").await.unwrap();
    assert!(!held.contains(&bumped) && bumped != after, "{bumped}");
}

#[tokio::test]
async fn connecting_to_nothing_fails_quickly_without_showing_the_password() {
    let url = format!("redis://:hunter2@127.0.0.1:{}/", free_port());
    let started = Instant::now();
    let opts = RedisOptions { url, key_prefix: "p:".into(), pool_size: 2 };
    let result = within(10, Redis::connect(opts)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let Err(Error::Unavailable(message)) = result else { panic!("connected to nothing") };
    assert!(!message.contains("hunter2"), "{message}");
    let bad = RedisOptions { url: "http://:hunter2@x".into(), key_prefix: "p:".into(), pool_size: 2 };
    let Err(Error::Unavailable(message)) = Redis::connect(bad).await else { panic!("accepted an http url") };
    assert!(message.contains("ha.redis.url") && !message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn tls_works_and_insecure_skips_the_certificate_check() {
    let server = PrivateRedis::start_tls();
    let url = server.url();
    assert!(url.starts_with("rediss://") && url.ends_with("#insecure"), "{url}");
    let c = connect(&url, &unique_prefix()).await;
    let mut sub = c.subscribe("t").await.unwrap();
    c.publish("t", Bytes::from_static(b"secret")).await.unwrap();
    assert_eq!(next(&mut sub).await, Received::Message(Bytes::from_static(b"secret")));
    c.enqueue(&[Queued { task_id: 1, priority: 0 }]).await.unwrap();
    assert_eq!(c.queue_len().await.unwrap(), 1);

    // Without `#insecure` the self-signed certificate is refused.
    let verified = url.trim_end_matches("#insecure").to_owned();
    let opts = RedisOptions { url: verified, key_prefix: "p:".into(), pool_size: 1 };
    let result = within(10, Redis::connect(opts)).await;
    let Err(Error::Unavailable(message)) = result else { panic!("connected without verifying the certificate") };
    assert!(message.contains("certificate"), "{message}");
}
