//! Redis only rings the doorbell: flushed while clients stream, then down for ten seconds and
//! started again (empty), no client loses a line, gets one twice or is cut off. While Redis is
//! down the lines keep coming, read from SQL by each node's followers.

use std::time::{Duration, Instant};

use baton_testkit::Dialect;
use baton_testkit::events::token;

use super::clients::{Route, sse_logs, ws_logs, ws_project};
use super::{Pace, Workload, after, check_changes, check_logs};
use crate::cluster::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn clients_get_every_line_once_through_a_redis_flush_and_outage() {
    let c = Cluster::start(Dialect::Postgres).await;
    let t = token(&c.admin).await;
    let nodes: Vec<String> = c.nodes.iter().map(|n| n.url.clone()).collect();
    let lb = c.http();
    let started = Instant::now();
    let w = Workload::start(&c, Pace::steady()).await;
    let total = w.total();

    let project = ws_project("project client", &t, w.pid, &w.tasks, Route::stay(&nodes[1]));
    let ws: Vec<_> =
        (0..3).map(|k| ws_logs(&format!("ws on node-{}", k + 1), &t, &w.tasks, Route::stay(&nodes[k]))).collect();
    let ws_lb = ws_logs("ws through HAProxy", &t, &w.tasks, Route::stay(&lb));
    let streams: Vec<(i64, Route)> = w
        .tasks
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let bases = if i % 4 == 3 { vec![lb.clone()] } else { after(&nodes, (i + 1) % 3) };
            (*id, Route { bases, move_after: None })
        })
        .collect();
    let sse = sse_logs("sse", &t, w.pid, &streams);

    ws[0].wait_seen(total / 10, Duration::from_secs(60)).await;
    c.redis.flushall();
    eprintln!("Redis flushed {:?} after the start, at {} lines", started.elapsed(), ws[0].seen());

    ws[0].wait_seen(total / 5, Duration::from_secs(60)).await;
    c.redis.stop();
    let down = ws.iter().map(|w| w.seen()).chain([ws_lb.seen(), sse.seen()]).collect::<Vec<_>>();
    eprintln!("Redis stopped {:?} after the start, at {down:?} lines", started.elapsed());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let up = ws.iter().map(|w| w.seen()).chain([ws_lb.seen(), sse.seen()]).collect::<Vec<_>>();
    c.redis.start_again();
    eprintln!("Redis started again {:?} after the start, at {up:?} lines", started.elapsed());
    // Every client went on receiving while Redis was down.
    for (k, (d, u)) in down.iter().zip(&up).enumerate() {
        assert!(u > d, "client {k} got nothing while Redis was down ({d} lines before, {u} after)");
    }

    let tasks = w.finish(&c, Duration::from_secs(120)).await;
    eprintln!("{} tasks printed {total} lines in {:?}", tasks.len(), started.elapsed());
    let wait = Duration::from_secs(30);
    let mut logs = Vec::new();
    for (k, client) in ws.into_iter().enumerate() {
        logs.push((format!("ws on node-{}", k + 1), client.finish(wait).await));
    }
    logs.push(("ws through HAProxy".into(), ws_lb.finish(wait).await));
    logs.push(("sse".into(), sse.finish(wait).await));
    let project = project.finish(wait).await;
    eprintln!("every client had every line {:?} after the start", started.elapsed());

    let named: Vec<(&str, &super::clients::Logs)> = logs.iter().map(|(n, l)| (n.as_str(), l)).collect();
    check_logs(&c, &w, &named).await;
    check_changes("project client", &project, &tasks);
    for (name, l) in &named {
        assert!(l.broken.is_empty(), "{name} lost connections: {:?}", l.broken);
        assert_eq!(l.resyncs, 0, "{name} was told to resync");
    }
    assert!(project.broken.is_empty(), "the project client lost connections: {:?}", project.broken);
}
