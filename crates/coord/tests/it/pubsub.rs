//! Publish/subscribe: order, topic isolation, delivery across nodes, unsubscribing, closing.

use baton_coord::Received;
use bytes::Bytes;

use crate::{Backend, assert_quiet, next};

both!(
    messages_arrive_in_order_on_their_topic_only,
    messages_published_side_by_side_all_arrive_each_callers_in_order,
    only_messages_published_after_subscribing_arrive,
    publishing_without_subscribers_is_fine,
    a_topic_can_be_subscribed_again_after_its_last_subscriber_left,
    dropping_the_coordinator_closes_subscriptions,
);

async fn messages_arrive_in_order_on_their_topic_only(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let mut a1 = one.subscribe("a").await.unwrap();
    let mut a2 = two.subscribe("a").await.unwrap();
    let mut other = one.subscribe("b").await.unwrap();
    for i in 0..50u8 {
        two.publish("a", Bytes::from(vec![i])).await.unwrap();
    }
    one.publish("b", Bytes::from_static(b"x")).await.unwrap();
    for sub in [&mut a1, &mut a2] {
        for i in 0..50u8 {
            assert_eq!(next(sub).await, Received::Message(Bytes::from(vec![i])));
        }
    }
    assert_eq!(next(&mut other).await, Received::Message(Bytes::from_static(b"x")));
    assert_quiet(&mut a1).await;
    assert_quiet(&mut other).await;
}

/// Callers publishing at once (their messages go to Redis together) each see theirs arrive,
/// all of them, in the order each caller published them.
async fn messages_published_side_by_side_all_arrive_each_callers_in_order(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let mut sub = one.subscribe("a").await.unwrap();
    let mut other = one.subscribe("b").await.unwrap();
    let (callers, each) = (8u8, 40u8);
    futures::future::join_all((0..callers).map(|c| {
        let two = two.clone();
        async move {
            for i in 0..each {
                let topic = if i % 10 == 9 { "b" } else { "a" };
                two.publish(topic, Bytes::from(vec![c, i])).await.unwrap();
            }
        }
    }))
    .await;
    let mut seen = vec![Vec::new(); usize::from(callers)];
    for _ in 0..u32::from(callers) * u32::from(each - each / 10) {
        let Received::Message(m) = next(&mut sub).await else { panic!("a message") };
        seen[usize::from(m[0])].push(m[1]);
    }
    let expected: Vec<u8> = (0..each).filter(|i| i % 10 != 9).collect();
    for (c, got) in seen.iter().enumerate() {
        assert_eq!(got, &expected, "caller {c}'s messages, in its order");
    }
    for _ in 0..u32::from(callers) * u32::from(each / 10) {
        assert!(matches!(next(&mut other).await, Received::Message(m) if m[1] % 10 == 9));
    }
    assert_quiet(&mut sub).await;
    assert_quiet(&mut other).await;
}

async fn only_messages_published_after_subscribing_arrive(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    one.publish("t", Bytes::from_static(b"before")).await.unwrap();
    let mut sub = two.subscribe("t").await.unwrap();
    one.publish("t", Bytes::from_static(b"after")).await.unwrap();
    assert_eq!(next(&mut sub).await, Received::Message(Bytes::from_static(b"after")));
    assert_quiet(&mut sub).await;
}

async fn publishing_without_subscribers_is_fine(b: Backend) {
    let c = b.node().await;
    c.publish("nobody", Bytes::from_static(b"x")).await.unwrap();
    drop(c.subscribe("gone").await.unwrap());
    c.publish("gone", Bytes::new()).await.unwrap();
}

async fn a_topic_can_be_subscribed_again_after_its_last_subscriber_left(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    for round in 0..3u8 {
        let mut sub = one.subscribe("t").await.unwrap();
        let mut sub2 = one.subscribe("t").await.unwrap();
        two.publish("t", Bytes::from(vec![round])).await.unwrap();
        assert_eq!(next(&mut sub).await, Received::Message(Bytes::from(vec![round])));
        assert_eq!(next(&mut sub2).await, Received::Message(Bytes::from(vec![round])));
        drop(sub);
        drop(sub2);
    }
}

async fn dropping_the_coordinator_closes_subscriptions(b: Backend) {
    let c = b.isolated().await;
    let mut sub = c.subscribe("t").await.unwrap();
    c.publish("t", Bytes::from_static(b"last")).await.unwrap();
    assert_eq!(next(&mut sub).await, Received::Message(Bytes::from_static(b"last")));
    drop(c);
    assert_eq!(next(&mut sub).await, Received::Closed);
}
