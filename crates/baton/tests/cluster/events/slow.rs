//! A client that stops reading a chatty task's log, through HAProxy: when it reads again it finds
//! a gapless prefix and then `{"op":"resync"}` on the same connection (it is not cut off), and
//! resuming from its last line gives it the rest. Meanwhile a client on another node and one on
//! the slow client's own node (which shares its node's subscription to the topic) read the whole
//! log without a resync, while the slow one still stalls. Also the upgrade's checks through
//! HAProxy: a foreign `Origin` is refused with 403 and no credentials with 401.

use std::time::{Duration, SystemTime};

use baton_testkit::Dialect;
use baton_testkit::events::{Connect, Ws, stored, token};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cluster::Cluster;

/// Short lines, a thousand to a chunk: each chunk is small enough to come with its notice, so the
/// lines arrive live (lines read from SQL would wait for the client instead). As events they make
/// about 27 MB, far more than a client's queue (4 MB) and the socket buffers between the node,
/// HAProxy and the client hold (the slow client finds about 6 MB there), yet printed quickly
/// enough that the slow client stalls well under a minute; a pause after each thousand keeps them
/// within what a client that reads at once can take.
const LINES: usize = 300_000;

async fn connect(base: &str, token: &str) -> Ws {
    Ws::connect(Connect { base, token: Some(token), origin: None }).await.expect("connected")
}

/// Reads `task.log` events of `topic` until `task.log.end` or a resync; returns the client, the
/// (seq, text) lines, whether a resync ended the read, and when the read ended.
async fn read_log(mut ws: Ws, topic: String) -> (Ws, Vec<(i64, String)>, bool, SystemTime) {
    let mut got = Vec::new();
    loop {
        let v = ws.next_event().await;
        if v["op"] == "resync" {
            assert_eq!(v["topics"], json!([topic]), "{v}");
            return (ws, got, true, SystemTime::now());
        }
        assert_eq!(v["topic"], topic.as_str(), "{v}");
        match v["type"].as_str() {
            Some("task.log") => {
                for l in v["data"]["lines"].as_array().unwrap() {
                    got.push((l["seq"].as_i64().unwrap(), l["text"].as_str().unwrap().to_owned()));
                }
            }
            Some("task.log.end") => return (ws, got, false, SystemTime::now()),
            _ => panic!("unexpected message {v}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_is_resynced_and_clients_on_other_nodes_are_not_slowed() {
    let c = Cluster::start(Dialect::Postgres).await;
    let t = token(&c.admin).await;
    let lb = c.http();
    let pid = c.admin.project().await;
    let script =
        format!("for i in $(seq 1 {LINES}); do echo line-$i; if [ $((i % 1000)) = 0 ]; then sleep 0.01; fi; done");
    let id = c.admin.submit(pid, c.admin.template(pid, json!({"script": script})).await).await;
    let topic = format!("task:{id}:log");

    // HAProxy balances round robin: the next connection lands on another node.
    let mut slow = connect(&lb, &t).await;
    let slow_node = slow.node.clone().expect("the upgrade names its node");
    let mut quick = connect(&lb, &t).await;
    for _ in 0..5 {
        if quick.node != slow.node {
            break;
        }
        quick = connect(&lb, &t).await;
    }
    let quick_node = quick.node.clone().expect("the upgrade names its node");
    assert_ne!(quick_node, slow_node, "HAProxy put every connection on one node");
    let mut neighbour = connect(&c.node(&slow_node).url, &t).await;
    for ws in [&mut slow, &mut quick, &mut neighbour] {
        ws.subscribe(&[&topic], json!({})).await;
    }
    eprintln!("slow client on {slow_node}, quick clients on {quick_node} and {slow_node}");
    let stalled = std::time::Instant::now();
    let quick = tokio::spawn(read_log(quick, topic.clone()));
    let neighbour = tokio::spawn(read_log(neighbour, topic.clone()));

    let (_, all, resynced, quick_done) = quick.await.unwrap();
    assert!(!resynced, "the client on {quick_node} was told to resync");
    let (_, same, resynced, neighbour_done) = neighbour.await.unwrap();
    assert!(!resynced, "the client beside the slow one on {slow_node} was told to resync");
    let task = c.admin.wait_final(pid, id, Duration::from_secs(60)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let log = stored(&c.admin, pid, id).await;
    assert_eq!(log.len(), LINES);
    assert!(all == log, "the client on {quick_node} got every line once");
    assert!(same == log, "the client on {slow_node} got every line once");
    let finished: SystemTime = DateTime::parse_from_rfc3339(task["finished_at"].as_str().unwrap())
        .map(|d| d.with_timezone(&Utc).into())
        .unwrap();
    let behind = |done: SystemTime| done.duration_since(finished).unwrap_or_default();
    eprintln!(
        "the quick clients had the end {:?} and {:?} after the task finished",
        behind(quick_done),
        behind(neighbour_done)
    );
    for (name, done) in [(&quick_node, quick_done), (&slow_node, neighbour_done)] {
        assert!(behind(done) < Duration::from_secs(15), "the client on {name} was held back");
    }

    // The slow client reads only now (well within the 60 s after which the server closes a client
    // that sends nothing, not even a pong): a gapless prefix, then the resync on the same
    // connection; resuming from its last line gives it the rest.
    eprintln!("the slow client reads again after {:?}", stalled.elapsed());
    let (mut slow, mut got, resynced, _) = read_log(slow, topic.clone()).await;
    assert!(resynced, "the slow client was told to resync ({} lines read)", got.len());
    eprintln!("the slow client read {} of {LINES} lines, then the resync", got.len());
    assert!(got.len() < LINES && got == log[..got.len()], "no gap before the resync");
    slow.subscribe(&[&topic], json!({ topic.clone(): got.last().map_or(0, |l| l.0) })).await;
    let (_, rest, resynced, _) = read_log(slow, topic.clone()).await;
    assert!(!resynced);
    got.extend(rest);
    assert!(got == log, "and nothing lost or repeated after it");

    // The upgrade's checks, through HAProxy (which passes Origin and Host on untouched).
    let evil = Ws::connect(Connect { base: &lb, token: Some(&t), origin: Some("https://evil.example.com") }).await;
    assert_eq!(evil.err(), Some(403), "a foreign origin");
    assert_eq!(Ws::connect(Connect { base: &lb, token: None, origin: None }).await.err(), Some(401), "no credentials");
    let own = Ws::connect(Connect { base: &lb, token: Some(&t), origin: Some(&lb) }).await;
    assert!(own.is_ok(), "a page served through HAProxy may connect");
    let url = format!("{lb}/api/v1/projects/{pid}/tasks/{id}/log/stream");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 401, "SSE without credentials");
}
