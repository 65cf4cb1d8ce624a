//! `GET /metrics` on a live node after real work: tasks submitted, run, failed and cancelled, an
//! event WebSocket and an SSE stream, requests that found nothing. Values and label sets are
//! checked, and no label ever holds a path or an id. A process without the gateway serves its
//! metrics beside its probes.

use std::time::Duration;

use baton_testkit::events::{self, Connect, Ws, token};
use baton_testkit::{Scrape, TestServer};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
/// An id no test creates: it must never show in a label.
const ABSENT_ID: &str = "987654321";

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_counts_what_the_node_did() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let base = srv.url.as_str();
    // The local runner connects as the server starts.
    Scrape::until(base, WAIT, |s| s.value("baton_runners_connected", &[]) == 1.0).await;

    let t = token(c).await;
    let pid = c.project().await;
    let mut ws = Ws::connect(Connect { base, token: Some(&t), origin: None }).await.unwrap();
    ws.subscribe(&[&format!("project:{pid}")], json!({})).await;
    assert_eq!(ws.next().await["op"], "subscribed");

    let ok = c.template(pid, json!({"script": "echo fine"})).await;
    let bad = c.template(pid, json!({"script": "echo no; exit 3"})).await;
    // No runner has this label: the task waits in the queue until it is cancelled.
    let stuck = c.template(pid, json!({"script": "true", "labels": ["nobody-has-this"]})).await;
    let mut ran = Vec::new();
    for tid in [ok, ok, bad] {
        ran.push(c.submit(pid, tid).await);
    }
    let waiting = c.submit(pid, stuck).await;
    for id in &ran {
        c.wait_final(pid, *id, WAIT).await;
    }
    // Counted from SQL every 5 s by the dispatcher: the whole cluster's queue.
    Scrape::until(base, WAIT, |s| s.value("baton_queue_depth", &[]) == 1.0).await;
    c.post(&format!("/api/v1/projects/{pid}/tasks/{waiting}/cancel"), json!({})).await.expect(202);

    // Events went out on the WebSocket while it was open.
    // (The first may already be `task.updated`: a follower that reads a task after it changed sends
    // its newest version only.)
    let first = ws.next_event().await;
    assert!(first["type"].as_str().is_some_and(|t| t.starts_with("task.")), "{first}");
    let open =
        Scrape::until(base, WAIT, |s| s.value("baton_events_delivered_total", &[("transport", "ws")]) > 0.0).await;
    assert_eq!(open.value("baton_ws_connections", &[]), 1.0);
    ws.close().await;

    // A finished task's log as SSE: its line and the end.
    let stream = format!("{base}/api/v1/projects/{pid}/tasks/{}/log/stream", ran[0]);
    let (_, frames) = events::read(&stream, &t, None, 100).await;
    assert_eq!(frames.len(), 2, "{frames:?}");

    // Nothing found: on a route (its template is the label), and on no route at all.
    c.get(&format!("/api/v1/projects/{pid}/tasks/{ABSENT_ID}")).await.expect(404);
    c.get(&format!("/no/such/path/{ABSENT_ID}")).await.expect(404);

    let s = Scrape::until(base, WAIT, |s| {
        s.value("baton_queue_depth", &[]) == 0.0 && s.value("baton_ws_connections", &[]) == 0.0
    })
    .await;
    assert_eq!(s.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(s.value("baton_tasks_submitted_total", &[]), 4.0);
    for (status, n) in [("succeeded", 2.0), ("failed", 1.0), ("cancelled", 1.0), ("timed_out", 0.0), ("lost", 0.0)] {
        assert_eq!(s.get("baton_tasks_finished_total", &[("status", status)]), Some(n), "{status}");
    }
    // Three scripts started (the cancelled task never did), each within the 20 s bucket's reach.
    assert_eq!(s.value("baton_dispatch_latency_seconds_count", &[]), 3.0);
    assert_eq!(s.value("baton_dispatch_latency_seconds_bucket", &[("le", "30")]), 3.0);
    assert!(s.value("baton_events_delivered_total", &[("transport", "sse")]) >= 2.0);
    assert_eq!(s.value("baton_runners_connected", &[]), 1.0);
    assert_eq!(s.value("baton_runner_slots_free", &[]), 4.0, "the local runner's slots, all free again");
    assert_eq!(s.value("baton_database_up", &[]), 1.0);
    assert_eq!(s.value("baton_coordination_up", &[]), 1.0);
    assert_eq!((s.value("baton_ready", &[]), s.value("baton_draining", &[])), (1.0, 0.0));
    let version = baton_core::VERSION;
    assert_eq!(s.get("baton_build_info", &[("version", version), ("node", &srv.node_id())]), Some(1.0));
    assert!(s.value("process_cpu_seconds_total", &[]) > 0.0);
    assert!(s.value("process_resident_memory_bytes", &[]) > 1e6);
    // The store counted what the tasks cost: reads, writes and the transactions of their reports.
    for kind in ["select", "insert", "update", "transaction"] {
        assert!(s.value("baton_sql_statements_total", &[("kind", kind)]) > 0.0, "{kind}");
    }

    let requests = "baton_http_requests_total";
    let tasks = "/api/v1/projects/{pid}/tasks";
    assert_eq!(s.value(requests, &[("route", tasks), ("method", "POST"), ("status", "201")]), 4.0);
    let one = "/api/v1/projects/{pid}/tasks/{id}";
    assert_eq!(s.value(requests, &[("route", one), ("method", "GET"), ("status", "404")]), 1.0);
    assert_eq!(s.value(requests, &[("route", "unmatched"), ("method", "GET"), ("status", "404")]), 1.0);
    let upgrade = [("route", "/api/v1/ws"), ("method", "GET"), ("status", "101")];
    assert_eq!(s.value(requests, &upgrade), 1.0);
    let timed = [("route", one), ("method", "GET")];
    assert!(s.value("baton_http_request_duration_seconds_count", &timed) >= 1.0);

    // Route labels are templates of the route table (or `unmatched`), never paths or ids.
    let known: Vec<&str> = baton_gateway::ROUTES.iter().map(|(_, path)| *path).collect();
    for name in [requests, "baton_http_request_duration_seconds_count"] {
        for route in s.label_values(name, "route") {
            assert!(route == "unmatched" || known.contains(&route.as_str()), "{name}: route label {route:?}");
        }
    }
    assert!(!s.text.contains(ABSENT_ID), "an id in a label:\n{}", s.text);
    assert!(!s.text.contains(&format!("/projects/{pid}/")), "a path in a label:\n{}", s.text);

    // A drained node says so, and is not ready.
    let drain = format!("/api/v1/cluster/nodes/{}/drain", srv.node_id());
    c.post(&drain, json!({"draining": true})).await.expect(200);
    Scrape::until(base, WAIT, |s| s.value("baton_draining", &[]) == 1.0 && s.value("baton_ready", &[]) == 0.0).await;
}

/// A dispatcher running apart has no gateway; it serves `/metrics` beside its probes, with the
/// dispatcher's metrics and without the gateway's.
#[tokio::test(flavor = "multi_thread")]
async fn a_process_without_the_gateway_serves_its_metrics_beside_its_probes() {
    let srv = TestServer::start_without_runner().await;
    let data = tempfile::tempdir().unwrap();
    let cfg = baton_testkit::test_config(data.path(), srv.database_url());
    let services = baton::server::Services { gateway: false, scheduler: false, dispatcher: true };
    let opts = baton::server::StartOptions { no_runner: true, services };
    let dispatcher = baton::server::start(cfg, opts).await.unwrap();
    let base = format!("http://{}", dispatcher.http_addr);
    reqwest::get(format!("{base}/api/ready")).await.unwrap().error_for_status().unwrap();

    let s = Scrape::until(&base, WAIT, |s| s.get("baton_database_up", &[]) == Some(1.0)).await;
    assert_eq!(s.get("baton_queue_depth", &[]), Some(0.0));
    assert_eq!(s.get("baton_runners_connected", &[]), Some(0.0));
    assert_eq!(s.get("baton_tasks_submitted_total", &[]), Some(0.0));
    assert_eq!(s.get("baton_ws_connections", &[]), None, "no gateway here");
    let ready = [("route", "/api/ready"), ("method", "GET"), ("status", "200")];
    assert_eq!(s.value("baton_http_requests_total", &ready), 1.0);
    assert!(s.value("process_cpu_seconds_total", &[]) > 0.0);
    dispatcher.shutdown().await.unwrap();
}
