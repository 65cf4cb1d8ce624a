//! Node heartbeats: recording, duplicate node ids, leaving, expiry.

use std::time::Duration;

use baton_coord::{Beat, NodeInfo};

use crate::Backend;

both!(
    beats_record_nodes_listed_by_id,
    a_second_instance_of_a_node_id_is_a_duplicate_until_the_first_expires,
    leave_forgets_only_the_own_instance,
    nodes_expire_without_beats,
);

const LONG: Duration = Duration::from_secs(30);

fn node(id: &str, instance: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        instance: instance.into(),
        services: vec!["gateway".into(), "dispatcher".into()],
        version: "0.1.0".into(),
        started_at: 1_700_000_000_000,
        last_seen: 1_700_000_000_000,
        draining: false,
        ready: true,
        database_pool: 10,
    }
}

async fn beats_record_nodes_listed_by_id(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    assert!(one.nodes().await.unwrap().is_empty());
    let (n2, n1) = (node("node-b", "i2"), node("node-a", "i1"));
    assert_eq!(two.beat(&n2, LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(one.beat(&n1, LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(two.nodes().await.unwrap(), vec![n1.clone(), n2.clone()]);
    // Beating again replaces the record.
    let later = NodeInfo { last_seen: n1.last_seen + 5000, draining: true, ready: false, ..n1.clone() };
    assert_eq!(one.beat(&later, LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(two.nodes().await.unwrap(), vec![later, n2]);
}

async fn a_second_instance_of_a_node_id_is_a_duplicate_until_the_first_expires(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let first = node("n", "first");
    assert_eq!(one.beat(&first, Duration::from_secs(1)).await.unwrap(), Beat::Recorded);
    let second = node("n", "second");
    assert_eq!(two.beat(&second, LONG).await.unwrap(), Beat::Duplicate { other_instance: "first".into() });
    assert_eq!(one.nodes().await.unwrap(), vec![first.clone()], "the duplicate's beat was not recorded");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(two.beat(&second, LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(one.beat(&first, LONG).await.unwrap(), Beat::Duplicate { other_instance: "second".into() });
    assert_eq!(one.nodes().await.unwrap(), vec![second]);
}

async fn leave_forgets_only_the_own_instance(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let n = node("n", "mine");
    one.beat(&n, LONG).await.unwrap();
    two.leave("n", "someone-else").await.unwrap();
    assert_eq!(two.nodes().await.unwrap(), vec![n.clone()]);
    one.leave("n", "mine").await.unwrap();
    assert!(two.nodes().await.unwrap().is_empty());
    // Leaving twice, or as a node never seen, is fine; the id is free again.
    one.leave("n", "mine").await.unwrap();
    one.leave("ghost", "x").await.unwrap();
    assert_eq!(two.beat(&node("n", "new"), LONG).await.unwrap(), Beat::Recorded);
}

async fn nodes_expire_without_beats(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let (short, long) = (node("short", "i1"), node("long", "i2"));
    one.beat(&short, Duration::from_secs(1)).await.unwrap();
    two.beat(&long, LONG).await.unwrap();
    assert_eq!(one.nodes().await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(one.nodes().await.unwrap(), vec![long]);
    // An expired node that beats again is back.
    assert_eq!(one.beat(&short, LONG).await.unwrap(), Beat::Recorded);
    assert_eq!(two.nodes().await.unwrap().len(), 2);
}
