//! Clients that leave in the middle of the stream and come back a second later on another node
//! (or through HAProxy again) from their resume points: a WebSocket client's `resume`, an SSE
//! stream's `Last-Event-ID`, a project client's time. They miss nothing and get nothing twice,
//! and lines through HAProxy arrive while the tasks print (nothing buffers them).

use std::time::{Duration, Instant};

use baton_testkit::Dialect;
use baton_testkit::events::token;

use super::clients::{Route, sse_logs, ws_logs, ws_project};
use super::{Pace, Workload, after, check_changes, check_live, check_logs};
use crate::cluster::Cluster;

async fn clients_resume_on_another_node(dialect: Dialect) {
    let c = Cluster::start(dialect).await;
    let t = token(&c.admin).await;
    let nodes: Vec<String> = c.nodes.iter().map(|n| n.url.clone()).collect();
    let lb = c.http();
    let started = Instant::now();
    let w = Workload::start(&c, Pace::steady()).await;
    let total = w.total();

    let project =
        ws_project("project client", &t, w.pid, &w.tasks, Route { bases: after(&nodes, 0), move_after: Some(10) });
    let ws1 = ws_logs("ws on node-1", &t, &w.tasks, Route { bases: after(&nodes, 0), move_after: Some(total / 3) });
    let ws2 = ws_logs("ws on node-2", &t, &w.tasks, Route { bases: after(&nodes, 1), move_after: Some(total / 2) });
    let ws3 = ws_logs("ws on node-3", &t, &w.tasks, Route::stay(&nodes[2]));
    let ws_lb =
        ws_logs("ws through HAProxy", &t, &w.tasks, Route { bases: vec![lb.clone()], move_after: Some(total / 4) });
    // Each task's SSE stream starts on a node of its own (or on HAProxy, every fourth) and moves
    // on after 300 of its 800 lines.
    let streams: Vec<(i64, Route)> = w
        .tasks
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let bases = if i % 4 == 3 { vec![lb.clone()] } else { after(&nodes, i % 3) };
            (*id, Route { bases, move_after: Some(300) })
        })
        .collect();
    let sse = sse_logs("sse", &t, w.pid, &streams);

    let tasks = w.finish(&c, Duration::from_secs(120)).await;
    eprintln!("{} tasks printed {total} lines in {:?}", tasks.len(), started.elapsed());
    let wait = Duration::from_secs(30);
    let (ws1, ws2, ws3, ws_lb, sse) = (
        ws1.finish(wait).await,
        ws2.finish(wait).await,
        ws3.finish(wait).await,
        ws_lb.finish(wait).await,
        sse.finish(wait).await,
    );
    let project = project.finish(wait).await;
    eprintln!("every client had every line {:?} after the start", started.elapsed());

    check_logs(
        &c,
        &w,
        &[
            ("ws on node-1", &ws1),
            ("ws on node-2", &ws2),
            ("ws on node-3", &ws3),
            ("ws through HAProxy", &ws_lb),
            ("sse", &sse),
        ],
    )
    .await;
    check_changes("project client", &project, &tasks);
    assert_eq!(ws1.nodes, ["node-1", "node-2"], "ws on node-1 resumed on node-2");
    assert_eq!(ws2.nodes, ["node-2", "node-3"], "ws on node-2 resumed on node-3");
    assert_eq!(ws_lb.nodes.len(), 2, "ws through HAProxy came back once: {:?}", ws_lb.nodes);
    assert_eq!(project.nodes, ["node-1", "node-2"], "the project client resumed on node-2");
    // Two connections per stream: the first on one node, the second on the next.
    assert_eq!(sse.nodes.len(), 2 * w.tasks.len(), "one resume per SSE stream: {:?}", sse.nodes);
    for (name, logs) in [
        ("ws on node-1", &ws1),
        ("ws on node-2", &ws2),
        ("ws on node-3", &ws3),
        ("ws through HAProxy", &ws_lb),
        ("sse", &sse),
    ] {
        assert!(logs.broken.is_empty(), "{name} lost connections: {:?}", logs.broken);
        assert_eq!(logs.resyncs, 0, "{name} was told to resync");
    }
    assert!(project.broken.is_empty(), "the project client lost connections: {:?}", project.broken);
    // Through HAProxy, lines arrive while the task prints: nothing buffers the stream.
    let through_lb: Vec<_> = tasks.iter().enumerate().filter(|(i, _)| i % 4 == 3).map(|(_, t)| t.clone()).collect();
    check_live("sse through HAProxy", &sse, &through_lb, Duration::from_secs(3));
    check_live("ws through HAProxy", &ws_lb, &tasks, Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_resume_on_another_node_without_gap_or_repeat() {
    clients_resume_on_another_node(Dialect::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_resume_on_another_node_without_gap_or_repeat_on_mariadb() {
    clients_resume_on_another_node(Dialect::Mysql).await;
}
