//! Retention: finished tasks beyond the count kept per template, or older than the age kept, are
//! deleted with their logs by the scheduler's sweep; unfinished tasks never are.

use std::time::{Duration, Instant};

use baton_testkit::TestServer;
use serde_json::json;

/// Polls the project's task ids (newest first) until `done` holds (panics after `timeout`).
async fn wait_ids(srv: &TestServer, pid: i64, timeout: Duration, done: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let page = srv.client.get(&format!("/api/v1/projects/{pid}/tasks?limit=100")).await.expect(200);
        let ids: Vec<i64> = page["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
        if done(&ids) {
            return ids;
        }
        assert!(Instant::now() < deadline, "retention did not reach the expected state; tasks left: {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_the_newest_finished_tasks_of_each_template_are_kept() {
    let srv = TestServer::start_with(|c| {
        c.retention.max_tasks_per_template = 2;
        c.retention.sweep_every_seconds = 1;
    })
    .await;
    let c = &srv.client;
    let pid = c.project().await;
    let quick = c.template(pid, json!({"script": "echo kept-or-not"})).await;
    let other = c.template(pid, json!({"script": "echo other"})).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = c.submit(pid, quick).await;
        c.wait_final(pid, id, Duration::from_secs(10)).await;
        ids.push(id);
    }
    let lone = c.submit(pid, other).await;
    c.wait_final(pid, lone, Duration::from_secs(10)).await;

    let left = wait_ids(&srv, pid, Duration::from_secs(10), |ids| ids.len() == 3).await;
    assert_eq!(left, vec![lone, ids[4], ids[3]], "the two newest of the busy template and the other one stay");
    // The deleted ones are gone with their logs.
    let gone = c.get(&format!("/api/v1/projects/{pid}/tasks/{}/log", ids[0])).await;
    assert_eq!(gone.status, 404, "{gone:?}");
    assert_eq!(c.log_texts(pid, ids[4]).await, ["kept-or-not"]);
}

#[tokio::test]
async fn old_finished_tasks_go_but_running_ones_stay() {
    let srv = TestServer::start_with(|c| {
        c.retention.max_age_seconds = 1;
        c.retention.sweep_every_seconds = 1;
    })
    .await;
    let c = &srv.client;
    let pid = c.project().await;
    let quick = c.template(pid, json!({"script": "true"})).await;
    let slow = c.template(pid, json!({"script": "sleep 6"})).await;
    let done = c.submit(pid, quick).await;
    c.wait_final(pid, done, Duration::from_secs(10)).await;
    let running = c.submit(pid, slow).await;
    c.wait_status(pid, running, &["running"], Duration::from_secs(10)).await;

    let left = wait_ids(&srv, pid, Duration::from_secs(10), |ids| !ids.contains(&done)).await;
    assert_eq!(left, vec![running], "the finished task aged out; the running one is untouched");
    assert_eq!(c.task(pid, running).await["status"], "running");
}
