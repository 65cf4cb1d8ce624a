//! The node under some clients is SIGKILLed while they stream (it also holds a runner's stream,
//! so that runner moves and re-sends what was not acknowledged): those clients reconnect to
//! another node from their resume points and end with the complete logs; clients on the other
//! nodes never notice.

use std::time::{Duration, Instant};

use baton_testkit::Dialect;
use baton_testkit::events::token;

use super::clients::{Logs, Route, sse_logs, ws_logs, ws_project};
use super::{Pace, Workload, after, check_changes, check_logs};
use crate::cluster::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn clients_of_a_sigkilled_node_resume_elsewhere_and_others_notice_nothing() {
    let mut c = Cluster::start(Dialect::Postgres).await;
    let t = token(&c.admin).await;
    let nodes: Vec<String> = c.nodes.iter().map(|n| n.url.clone()).collect();
    let lb = c.http();
    let victim = c.runner_node(0).await.expect("the runners list names the node of each runner");
    let v = c.nodes.iter().position(|n| n.id == victim).unwrap();
    let started = Instant::now();
    let w = Workload::start(&c, Pace::steady()).await;
    let total = w.total();

    // A client of each kind on every node; each goes on to the next node when its own dies.
    let project =
        ws_project("project client", &t, w.pid, &w.tasks, Route { bases: after(&nodes, v), move_after: None });
    let ws: Vec<_> = (0..3)
        .map(|k| {
            ws_logs(&format!("ws on node-{}", k + 1), &t, &w.tasks, Route { bases: after(&nodes, k), move_after: None })
        })
        .collect();
    let ws_lb = ws_logs("ws through HAProxy", &t, &w.tasks, Route::stay(&lb));
    let streams: Vec<(i64, Route)> = w
        .tasks
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (*id, Route { bases: if i % 4 == 3 { vec![lb.clone()] } else { after(&nodes, i % 3) }, move_after: None })
        })
        .collect();
    let sse = sse_logs("sse", &t, w.pid, &streams);

    ws[v].wait_seen(total / 4, Duration::from_secs(60)).await;
    c.node_mut(&victim).sigkill();
    eprintln!("SIGKILLed {victim} {:?} after the start, at {} lines", started.elapsed(), ws[v].seen());

    let tasks = w.finish(&c, Duration::from_secs(120)).await;
    eprintln!("{} tasks printed {total} lines in {:?}", tasks.len(), started.elapsed());
    let wait = Duration::from_secs(30);
    let mut logs: Vec<(String, Logs)> = Vec::new();
    for (k, client) in ws.into_iter().enumerate() {
        logs.push((format!("ws on node-{}", k + 1), client.finish(wait).await));
    }
    logs.push(("ws through HAProxy".into(), ws_lb.finish(wait).await));
    logs.push(("sse".into(), sse.finish(wait).await));
    let project = project.finish(wait).await;
    eprintln!("every client had every line {:?} after the start", started.elapsed());

    let named: Vec<(&str, &Logs)> = logs.iter().map(|(n, l)| (n.as_str(), l)).collect();
    check_logs(&c, &w, &named).await;
    check_changes("project client", &project, &tasks);
    for (name, l) in &named {
        assert_eq!(l.resyncs, 0, "{name} was told to resync");
    }
    // Each WebSocket client and each SSE stream: broken if, and only if, it was on the victim.
    let mut connections: Vec<(String, &[String], bool)> = Vec::new();
    for (name, l) in &named[..4] {
        connections.push((name.to_string(), &l.nodes, !l.broken.is_empty()));
    }
    let sse = &named[4].1;
    for (task, nodes) in &sse.streams {
        let broken = sse.broken.iter().any(|b| b.starts_with(&format!("task {task}:")));
        connections.push((format!("task {task}'s SSE stream"), nodes, broken));
    }
    connections.push(("the project client".into(), &project.nodes, !project.broken.is_empty()));
    for (name, nodes, broken) in connections {
        if nodes[0] == victim {
            assert!(broken, "{name} was on {victim} yet saw nothing break");
            assert!(nodes[1..].iter().all(|n| *n != victim) && nodes.len() > 1, "{name} went on to: {nodes:?}");
        } else {
            assert!(!broken && nodes.len() == 1, "{name}, not on {victim}, was disturbed: connected to {nodes:?}");
        }
    }
    assert_eq!(logs[v].1.nodes[0], victim, "ws on {victim} started there");
    assert_eq!(project.nodes[0], victim, "the project client started on {victim}");
}
