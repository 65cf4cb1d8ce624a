//! The services apart: `baton dispatcher`, `baton scheduler` and `baton gateway` processes join
//! the cluster of three full nodes; the gateway alone serves the API, its tasks run, its schedules
//! fire, and every process answers the probes and shows in the cluster view with its services.

use std::time::Duration;

use baton_testkit::Dialect;
use serde_json::json;

use crate::cluster::{Cluster, view_node};
use crate::node::Node;

#[tokio::test(flavor = "multi_thread")]
async fn services_started_apart_join_the_same_cluster() {
    let c = Cluster::start(Dialect::Postgres).await;
    let (shared, root) = (c.nodes[0].shared(), c.dir.path());
    let dispatcher = Node::start_as(root, "dispatcher-x", &shared, &["dispatcher"], &[]).await;
    let dispatcher_url = format!("http://127.0.0.1:{}", dispatcher.cluster_port);
    let scheduler = Node::start_as(
        root,
        "scheduler-x",
        &shared,
        &["scheduler"],
        &[("BATON_CLUSTER_DISPATCHER_URL", dispatcher_url.clone())],
    )
    .await;
    let scheduler_url = format!("http://127.0.0.1:{}", scheduler.cluster_port);
    let gateway = Node::start_as(
        root,
        "gateway-x",
        &shared,
        &["gateway"],
        &[("BATON_CLUSTER_DISPATCHER_URL", dispatcher_url), ("BATON_CLUSTER_SCHEDULER_URL", scheduler_url)],
    )
    .await;

    let view = c
        .wait_view("the three single-service processes", Duration::from_secs(15), |v| {
            [("gateway-x", "gateway"), ("dispatcher-x", "dispatcher"), ("scheduler-x", "scheduler")]
                .iter()
                .all(|(id, svc)| view_node(v, id).is_some_and(|n| n["services"] == json!([svc]) && n["ready"] == true))
        })
        .await;
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(6), "{view}");
    for p in [&gateway, &dispatcher, &scheduler] {
        let r = c.api.get(&p.url, "/api/ready", 200).await;
        assert_eq!(r.node.as_deref(), Some(p.id.as_str()), "probes name the process");
    }

    // The API of the gateway-only process: a task runs, a one-shot schedule fires.
    let pid = c.admin.project().await;
    let tid = c.admin.template(pid, json!({"script": "echo apart"})).await;
    let path = format!("/api/v1/projects/{pid}/tasks");
    let reply = c
        .api
        .try_send(reqwest::Method::POST, &gateway.url, &path, Some(&json!({"template_id": tid})))
        .await
        .expect("an answer");
    assert_eq!((reply.status, reply.node.as_deref()), (201, Some("gateway-x")), "{:?}", reply.body);
    let id = reply.body["id"].as_i64().unwrap();
    assert_eq!(c.admin.wait_final(pid, id, Duration::from_secs(15)).await["status"], "succeeded");

    let run_at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let body = json!({"template_id": tid, "run_at": run_at.to_rfc3339()});
    let path = format!("/api/v1/projects/{pid}/schedules");
    let reply = c.api.try_send(reqwest::Method::POST, &gateway.url, &path, Some(&body)).await.expect("an answer");
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let sid = reply.body["id"].as_i64().unwrap();
    let fires_path = format!("/api/v1/projects/{pid}/schedules/{sid}/fires");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let fires = c.api.get(&gateway.url, &fires_path, 200).await.body;
        if fires["items"].as_array().is_some_and(|f| f.len() == 1 && f[0]["status"] == "fired") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the one-shot never fired: {fires}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
