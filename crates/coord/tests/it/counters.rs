//! Counters: fixed windows shared by every node, opened by the first hit and gone when they end.

use std::time::Duration;

use crate::Backend;

both!(
    hits_on_any_node_count_into_one_window,
    a_window_ends_and_the_next_hit_opens_a_new_one,
    clearing_starts_the_count_again,
    keys_count_apart,
);

const LONG: Duration = Duration::from_secs(60);

async fn hits_on_any_node_count_into_one_window(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    assert_eq!(one.peek("login").await.unwrap().n, 0, "no window yet");
    assert_eq!(one.peek("login").await.unwrap().resets_in, Duration::ZERO);
    let first = one.hit("login", LONG).await.unwrap();
    assert_eq!(first.n, 1);
    assert!(first.resets_in > LONG - Duration::from_secs(5) && first.resets_in <= LONG, "{first:?}");
    assert_eq!(two.hit("login", LONG).await.unwrap().n, 2);
    // A later hit with another window length neither restarts nor stretches the window.
    let third = one.hit("login", Duration::from_secs(3600)).await.unwrap();
    assert_eq!(third.n, 3);
    assert!(third.resets_in <= LONG, "the first hit's window holds: {third:?}");
    let peeked = two.peek("login").await.unwrap();
    assert_eq!(peeked.n, 3, "peek does not count");
    assert!(peeked.resets_in > Duration::ZERO && peeked.resets_in <= LONG, "{peeked:?}");
    assert_eq!(one.peek("login").await.unwrap().n, 3);
}

async fn a_window_ends_and_the_next_hit_opens_a_new_one(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let short = Duration::from_millis(300);
    one.hit("k", short).await.unwrap();
    two.hit("k", short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(two.peek("k").await.unwrap().n, 0, "the window ended");
    let fresh = one.hit("k", LONG).await.unwrap();
    assert_eq!(fresh.n, 1, "a new window starts from one");
    assert!(fresh.resets_in > LONG - Duration::from_secs(5), "the new window has the new length: {fresh:?}");
}

async fn clearing_starts_the_count_again(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    for _ in 0..3 {
        one.hit("user", LONG).await.unwrap();
    }
    two.clear("user").await.unwrap();
    assert_eq!(one.peek("user").await.unwrap().n, 0);
    assert_eq!(one.hit("user", LONG).await.unwrap().n, 1);
    // Clearing a key nobody counted is fine.
    two.clear("never").await.unwrap();
}

async fn keys_count_apart(b: Backend) {
    let (one, other_cluster) = (b.node().await, b.isolated().await);
    one.hit("a", LONG).await.unwrap();
    one.hit("a", LONG).await.unwrap();
    assert_eq!(one.hit("b", LONG).await.unwrap().n, 1);
    assert_eq!(one.peek("a").await.unwrap().n, 2);
    assert_eq!(other_cluster.peek("a").await.unwrap().n, 0, "another prefix is another cluster");
}
