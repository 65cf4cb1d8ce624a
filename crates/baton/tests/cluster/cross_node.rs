//! Effects that cross nodes: a cancel sent through one node stops, within a second, a task whose
//! runner is connected to another; a template changed through one node is what the next task
//! started through another node runs.

use std::time::{Duration, Instant};

use baton_testkit::Dialect;
use serde_json::json;

use crate::cluster::Cluster;

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn cancels_and_template_changes_reach_every_node() {
    let c = Cluster::start(Dialect::Postgres).await;
    let pid = c.admin.project().await;
    let tid = c.admin.template(pid, json!({"script": "echo started; sleep 30"})).await;

    // A long task, and the node its runner is connected to.
    let id = c.admin.submit(pid, tid).await;
    let task = c.admin.wait_status(pid, id, &["running"], Duration::from_secs(15)).await;
    let runner_id = task["runner_id"].as_i64().expect("a running task has a runner");
    let runners = c.runners_view().await;
    let holder = runners
        .iter()
        .find(|r| r["id"].as_i64() == Some(runner_id))
        .and_then(|r| r["node_id"].as_str())
        .expect("the runner is listed with its node")
        .to_owned();
    let other = c.nodes.iter().find(|n| n.id != holder).expect("another node");

    let sent = Instant::now();
    let path = format!("/api/v1/projects/{pid}/tasks/{id}/cancel");
    let reply = c.api.try_send(reqwest::Method::POST, &base(other.http_port), &path, None).await.expect("an answer");
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!(reply.node.as_deref(), Some(other.id.as_str()), "the cancel went through the other node");
    let status_path = format!("/api/v1/projects/{pid}/tasks/{id}");
    loop {
        let t = c.api.get(&base(other.http_port), &status_path, 200).await.body;
        if t["status"] == "cancelled" {
            break;
        }
        assert!(sent.elapsed() < Duration::from_secs(5), "cancel sent through {} never took effect: {t}", other.id);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = sent.elapsed();
    eprintln!("cancel through {} of a task on {holder}'s runner took {took:?}", other.id);
    assert!(took < Duration::from_secs(1), "the cross-node cancel took {took:?}");

    // A template changed through one node; tasks started through each other node run the change.
    for (i, changer) in c.nodes.iter().enumerate() {
        let version = format!("version-{i}");
        let script = format!("echo {version}");
        let path = format!("/api/v1/projects/{pid}/templates/{tid}");
        let reply = c
            .api
            .try_send(reqwest::Method::PATCH, &base(changer.http_port), &path, Some(&json!({"script": script})))
            .await
            .expect("an answer");
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        for starter in c.nodes.iter().filter(|n| n.id != changer.id) {
            let path = format!("/api/v1/projects/{pid}/tasks");
            let body = json!({"template_id": tid});
            let reply = c
                .api
                .try_send(reqwest::Method::POST, &base(starter.http_port), &path, Some(&body))
                .await
                .expect("an answer");
            assert_eq!(reply.status, 201, "{:?}", reply.body);
            let id = reply.body["id"].as_i64().unwrap();
            c.admin.wait_final(pid, id, Duration::from_secs(15)).await;
            assert_eq!(
                c.admin.log_texts(pid, id).await,
                vec![version.clone()],
                "a task started through {} right after {} changed the template",
                starter.id,
                changer.id
            );
        }
    }
}
