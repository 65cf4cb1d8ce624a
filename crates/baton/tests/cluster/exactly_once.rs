//! The baseline: with nothing breaking, a thousand tasks submitted round-robin to the three nodes
//! all run exactly once, on PostgreSQL and on MariaDB, and the cluster view shows a healthy
//! cluster of three and the database's connections.

use std::time::Duration;

use baton_testkit::Dialect;

use crate::cluster::{Cluster, view_node};
use crate::load::{Load, Plan, Route};
use crate::verify;

async fn a_thousand_tasks_run_exactly_once(dialect: Dialect) {
    let c = Cluster::start(dialect).await;
    // The view is built from heartbeats, so a node that just started may take a beat to show.
    let view = c
        .wait_view("three ready nodes", Duration::from_secs(10), |v| {
            c.nodes.iter().all(|n| view_node(v, &n.id).is_some_and(|e| e["ready"] == true && e["draining"] == false))
        })
        .await;
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(3), "{view}");
    assert_eq!(view["database"]["ok"], true, "{view}");
    assert!(view["database"]["dialect"].as_str().is_some_and(|d| !d.is_empty()), "{view}");
    // The server's limit, every node's pool among those open, and what the pools may open.
    let connections = &view["database"]["connections"];
    assert!(connections["limit"].as_u64().is_some_and(|l| l > 0), "{view}");
    assert!(connections["open"].as_u64().is_some_and(|o| o >= 3), "{view}");
    let pools: Vec<u64> =
        c.nodes.iter().map(|n| view_node(&view, &n.id).unwrap()["database_pool"].as_u64().unwrap()).collect();
    assert!(pools.iter().all(|p| *p >= 2), "each node tells its pool: {view}");
    assert_eq!(connections["pools"].as_u64(), Some(pools.iter().sum()), "{view}");
    assert_eq!(view["redis"]["ok"], true, "{view}");

    let mut load = Load::start(&c, Route::Nodes, Plan::full_speed()).await;
    let tasks = load.finish(Duration::from_secs(90)).await;
    verify::exactly_once(&load, &tasks, 1000);
    verify::node_headers(&load);
    assert_eq!(load.failures(), Vec::<String>::new(), "submissions failed with every node up");
    for n in &c.nodes {
        let took = load.served().iter().filter(|s| s.node.as_deref() == Some(n.id.as_str())).count();
        assert!(took > 300, "{} accepted only {took} of the round-robin submissions", n.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_tasks_run_exactly_once_on_postgres() {
    a_thousand_tasks_run_exactly_once(Dialect::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_tasks_run_exactly_once_on_mariadb() {
    a_thousand_tasks_run_exactly_once(Dialect::Mysql).await;
}
