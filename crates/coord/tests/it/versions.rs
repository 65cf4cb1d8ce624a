//! Versions: what a node remembers of SQL is good while the version it read under is current.

use std::collections::HashSet;

use crate::Backend;

both!(a_bump_on_any_node_is_seen_by_every_node, versions_are_apart_by_name_and_cluster, concurrent_bumps_each_move_on);

async fn a_bump_on_any_node_is_seen_by_every_node(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let first = one.version("templates").await.unwrap();
    assert_eq!(two.version("templates").await.unwrap(), first, "reading does not change it");
    assert_eq!(one.version("templates").await.unwrap(), first);
    two.bump("templates").await.unwrap();
    let second = one.version("templates").await.unwrap();
    assert_ne!(second, first, "a bump through another node moves it for this one");
    assert_eq!(two.version("templates").await.unwrap(), second);
    // A bump of a version nobody read yet is fine, and moves it on from wherever it starts.
    one.bump("fresh").await.unwrap();
    let fresh = two.version("fresh").await.unwrap();
    one.bump("fresh").await.unwrap();
    assert_ne!(two.version("fresh").await.unwrap(), fresh);
}

async fn versions_are_apart_by_name_and_cluster(b: Backend) {
    let (one, other_cluster) = (b.node().await, b.isolated().await);
    let a = one.version("a").await.unwrap();
    let theirs = other_cluster.version("a").await.unwrap();
    one.bump("b").await.unwrap();
    other_cluster.bump("b").await.unwrap();
    assert_eq!(one.version("a").await.unwrap(), a, "another name's bump leaves it");
    assert_eq!(other_cluster.version("a").await.unwrap(), theirs);
    one.bump("a").await.unwrap();
    assert_eq!(other_cluster.version("a").await.unwrap(), theirs, "another cluster's bump leaves it");
}

async fn concurrent_bumps_each_move_on(b: Backend) {
    let nodes = [b.node().await, b.node().await, b.node().await];
    let mut seen = HashSet::from([nodes[0].version("v").await.unwrap()]);
    let bumps = nodes.iter().flat_map(|n| (0..20).map(move |_| n.bump("v")));
    for r in futures::future::join_all(bumps).await {
        r.unwrap();
    }
    let last = nodes[1].version("v").await.unwrap();
    assert!(seen.insert(last), "sixty bumps moved it on");
    // Every bump counts: none is lost to another made at the same time.
    assert!(seen.contains(&(last - 60)), "{seen:?}");
}
