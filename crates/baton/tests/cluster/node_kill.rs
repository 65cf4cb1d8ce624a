//! A node SIGKILLed in the middle of the load, and started again three seconds later on the same
//! ports with the same node id. Its runners reconnect through HAProxy to a live node, which adopts
//! the tasks they were running, so even with one attempt per task every task succeeds and every
//! script ran exactly once. The time from the kill to the first task handed to one of its runners
//! again is measured.

use std::time::{Duration, Instant, SystemTime};

use baton_testkit::Dialect;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::Api;
use crate::cluster::{Cluster, view_node};
use crate::load::{Load, Plan, Route};
use crate::verify;

/// The node killed, when, and the runners whose streams it held.
struct Kill {
    node: String,
    at: Instant,
    runners: Vec<i64>,
}

/// For each runner of `kill`, how long after the kill the runners list first showed it on
/// another node (polled every 100 ms for up to 30 s).
async fn watch_moves(api: Api, http: String, kill: Kill) -> Vec<Option<Duration>> {
    let Kill { node: gone, at: since, runners } = kill;
    let mut moved = vec![None; runners.len()];
    while since.elapsed() < Duration::from_secs(30) && moved.iter().any(Option::is_none) {
        if let Ok(r) = api.try_send(reqwest::Method::GET, &http, "/api/v1/runners", None).await {
            let items = r.body["items"].as_array().cloned().unwrap_or_default();
            for (k, id) in runners.iter().enumerate() {
                let node = items.iter().find(|r| r["id"].as_i64() == Some(*id)).and_then(|r| r["node_id"].as_str());
                if moved[k].is_none() && node.is_some_and(|n| n != gone) {
                    moved[k] = Some(since.elapsed());
                    eprintln!("runner {id} on {} {:?} after the kill of {gone}", node.unwrap_or(""), since.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    moved
}

fn time_of(t: &Value, field: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t[field].as_str()?).ok().map(|d| d.with_timezone(&Utc))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_node_loses_nothing_and_runs_nothing_twice() {
    let mut c = Cluster::start(Dialect::Postgres).await;
    let mut load = Load::start(&c, Route::Nodes, Plan::steady(50.0)).await;
    load.wait_submitted(300).await;

    let victim = c.runner_node(0).await.expect("the runners list names the node that holds each runner");
    let mut orphaned = Vec::new();
    for i in 0..c.runners.len() {
        if c.runner_node(i).await.as_deref() == Some(victim.as_str()) {
            orphaned.push(c.runners[i].id);
        }
    }
    // Submissions to the victim end first: the load never has to guess whether a POST that died
    // with the node created its task.
    load.pause(&victim).await;
    let (killed, killed_wall) = (Instant::now(), DateTime::<Utc>::from(SystemTime::now()));
    c.node_mut(&victim).sigkill();
    eprintln!("SIGKILLed {victim}, which held runners {orphaned:?}");
    let kill = Kill { node: victim.clone(), at: killed, runners: orphaned.clone() };
    let watcher = tokio::spawn(watch_moves(c.api.clone(), c.http(), kill));

    tokio::time::sleep(Duration::from_secs(3)).await;
    c.node_mut(&victim).restart().await;
    c.node(&victim).wait_ready_status(200, Duration::from_secs(30)).await;
    c.wait_routed_to(&victim, Duration::from_secs(15)).await;
    eprintln!("{victim} serves again {:?} after the kill", killed.elapsed());
    load.resume(&victim);

    let tasks = load.finish(Duration::from_secs(90)).await;
    verify::exactly_once(&load, &tasks, 1000);
    verify::node_headers(&load);
    assert_eq!(load.failures(), Vec::<String>::new(), "submissions to live nodes failed");

    for i in 0..c.runners.len() {
        c.wait_runner_online(i, Duration::from_secs(20)).await;
    }
    let view = c
        .wait_view("three ready nodes", Duration::from_secs(15), |v| {
            c.nodes.iter().all(|n| view_node(v, &n.id).is_some_and(|e| e["ready"] == true))
        })
        .await;
    eprintln!("cluster after the restart: {view}");

    let moves = watcher.await.unwrap();
    let again = tasks
        .iter()
        .filter(|t| t["runner_id"].as_i64().is_some_and(|r| orphaned.contains(&r)))
        .filter_map(|t| time_of(t, "assigned_at").or_else(|| time_of(t, "started_at")))
        .filter(|at| *at > killed_wall)
        .min();
    let dispatch = again.map(|at| (at - killed_wall).to_std().unwrap_or_default());
    let requeued: usize = c.nodes.iter().map(|n| n.count_in_logs("assignment never reached")).sum();
    eprintln!(
        "SIGKILL of {victim} → its runners seen on another node after {moves:?}; \
         first task handed to one of them again after {dispatch:?}; \
         assignments that died with it and were queued again: {requeued}"
    );
    assert!(moves.iter().all(Option::is_some), "runners {orphaned:?} of the killed node never moved: {moves:?}");
    let dispatch = dispatch.expect("no task was handed to the killed node's runners after the kill");
    assert!(dispatch < Duration::from_secs(10), "its runners were idle for {dispatch:?} after the kill");
}
