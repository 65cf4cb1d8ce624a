//! Redis is coordination only: flushed in the middle of the load, then stopped for ten seconds and
//! started again, the cluster keeps serving (every node stays ready, dispatch falls back to SQL),
//! reports Redis as down and then up again in the cluster view, and still runs every task exactly
//! once.

use std::time::{Duration, Instant};

use baton_testkit::Dialect;

use crate::cluster::Cluster;
use crate::load::{Load, Plan, Route};
use crate::verify;

#[tokio::test(flavor = "multi_thread")]
async fn redis_flushed_and_restarted_loses_nothing_and_runs_nothing_twice() {
    let c = Cluster::start(Dialect::Postgres).await;
    let mut load = Load::start(&c, Route::Nodes, Plan::steady(40.0)).await;

    load.wait_submitted(300).await;
    c.redis.flushall();
    eprintln!("Redis flushed after 300 submissions");

    load.wait_submitted(400).await;
    c.redis.stop();
    let down = Instant::now();
    eprintln!("Redis stopped after 400 submissions");
    let mut seen_down = false;
    while down.elapsed() < Duration::from_secs(10) {
        for n in &c.nodes {
            let status = n.ready_status().await;
            assert_eq!(status, 200, "{} stopped being ready {:?} into the Redis outage", n.id, down.elapsed());
        }
        if !seen_down {
            let view = c.view().await;
            seen_down = view["redis"]["ok"] == false;
            if seen_down {
                eprintln!("the cluster view shows Redis down {:?} into the outage", down.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seen_down, "the cluster view never showed redis ok=false during a 10 s outage: {}", c.view().await);
    c.redis.start_again();
    let up = Instant::now();
    c.wait_view("redis ok=true", Duration::from_secs(20), |v| v["redis"]["ok"] == true).await;
    eprintln!("the cluster view shows Redis up {:?} after its restart", up.elapsed());

    let tasks = load.finish(Duration::from_secs(90)).await;
    verify::exactly_once(&load, &tasks, 1000);
    verify::node_headers(&load);
    assert_eq!(load.failures(), Vec::<String>::new(), "submissions failed while Redis was away");
    for n in &c.nodes {
        assert_eq!(n.ready_status().await, 200, "{} is not ready after Redis came back", n.id);
    }
}
