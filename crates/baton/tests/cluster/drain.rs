//! A rolling restart of one node under load, all submissions through HAProxy as clients would
//! send them: drain it (it turns not-ready, HAProxy drops it, its runners move to other nodes),
//! SIGTERM it (it exits cleanly once its work is done), start it again, undrain it, and it takes
//! requests again. No submission fails, no task fails, every script runs exactly once.

use std::time::{Duration, Instant};

use baton_testkit::Dialect;
use serde_json::json;

use crate::cluster::{Cluster, view_node};
use crate::load::{Load, Plan, Route};
use crate::verify;

/// Submissions after this many wait until the restarted node is back, so some are left for it.
const HELD_FROM: usize = 700;

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_node_restarts_without_a_failed_request_or_task() {
    let mut c = Cluster::start(Dialect::Postgres).await;
    let mut load = Load::start(&c, Route::Haproxy, Plan::steady(50.0)).await;
    load.hold(HELD_FROM);
    load.wait_submitted(300).await;

    let victim = c.runner_node(0).await.expect("the runners list names the node that holds each runner");
    let drain = format!("/api/v1/cluster/nodes/{victim}/drain");
    let r = c.api.post_idempotent(&c.http(), &drain, &json!({"draining": true}), 200).await;
    assert_eq!((&r.body["id"], &r.body["draining"]), (&json!(victim), &json!(true)), "{}", r.body);
    let drained = Instant::now();
    c.node(&victim).wait_ready_status(503, Duration::from_secs(5)).await;
    c.wait_view("the node draining", Duration::from_secs(10), |v| {
        view_node(v, &victim).is_some_and(|n| n["draining"] == true)
    })
    .await;

    // Told to reconnect elsewhere, its runners land on the other nodes.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let on_victim: Vec<_> = c
            .runners_view()
            .await
            .into_iter()
            .filter(|r| r["node_id"] == json!(victim) && r["online"] == true)
            .map(|r| r["name"].clone())
            .collect();
        if on_victim.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "runners {on_victim:?} still on draining {victim} after 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("runners left draining {victim} within {:?}", drained.elapsed());
    c.wait_not_routed_to(&victim, Duration::from_secs(10)).await;

    c.node(&victim).sigterm();
    let st = c.node_mut(&victim).wait_exit(Duration::from_secs(40)).await;
    assert!(st.success(), "drained {victim} did not exit cleanly on SIGTERM: {st}");
    eprintln!("{victim} exited {:?} after the drain", drained.elapsed());

    c.node_mut(&victim).restart().await;
    let r = c.api.post_idempotent(&c.http(), &drain, &json!({"draining": false}), 200).await;
    assert_eq!((&r.body["id"], &r.body["draining"]), (&json!(victim), &json!(false)), "{}", r.body);
    c.node(&victim).wait_ready_status(200, Duration::from_secs(15)).await;
    c.wait_view("the node back, ready and not draining", Duration::from_secs(15), |v| {
        view_node(v, &victim).is_some_and(|n| n["draining"] == false && n["ready"] == true)
    })
    .await;
    c.wait_routed_to(&victim, Duration::from_secs(15)).await;
    load.release();

    let tasks = load.finish(Duration::from_secs(90)).await;
    verify::exactly_once(&load, &tasks, 1000);
    verify::node_headers(&load);
    assert_eq!(load.failures(), Vec::<String>::new(), "submissions through HAProxy failed during the restart");
    let back = load.served().iter().filter(|s| s.index >= HELD_FROM && s.node.as_deref() == Some(&victim)).count();
    assert!(back > 0, "the restarted {victim} took none of the last {} submissions", 1000 - HELD_FROM);
    eprintln!("the restarted {victim} accepted {back} of the last {} submissions", 1000 - HELD_FROM);
}
