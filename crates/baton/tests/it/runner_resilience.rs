//! Remote runners against a server that goes away: a cancel reaches a remote runner at once, and
//! a server SIGKILLed and restarted while runners are busy loses nothing — their scripts finish,
//! are reported after the reconnect, and are recorded exactly once.

use std::time::{Duration, Instant};

use baton_testkit::{TestDatabase, TestServer, free_port};
use serde_json::json;

use crate::child_server::{ChildOptions, ChildServer};
use crate::remote_runners::{RunnerProcess, kill_scripts};

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_reaches_a_remote_runner_at_once() {
    let srv = TestServer::start_without_runner().await;
    let _r = RunnerProcess::start_on(&srv.client, &srv.grpc_url(), "remote", "linux").await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "sleep 30"})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], Duration::from_secs(20)).await;
    let asked = Instant::now();
    c.post(&format!("/api/v1/projects/{pid}/tasks/{id}/cancel"), json!({})).await.expect(202);
    let t = c.wait_final(pid, id, Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert_eq!(t["status"], "cancelled", "{t}");
    assert!(took < Duration::from_millis(1500), "the cancel took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_restart_under_busy_runners_records_each_task_once() {
    let data = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let marks = tempfile::tempdir().unwrap();
    let db = TestDatabase::create().await;
    let opts = ChildOptions {
        http_port: free_port(),
        grpc_port: free_port(),
        no_runner: true,
        lease_seconds: 10,
        env: Vec::new(),
    };
    let grpc = format!("http://127.0.0.1:{}", opts.grpc_port);
    let mut srv = ChildServer::start_with(data.path(), pids.path(), &db, &opts).await;
    let a = RunnerProcess::start_on(&srv.client, &grpc, "a", "linux").await;
    let b = RunnerProcess::start_on(&srv.client, &grpc, "b", "linux").await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let script = format!(
        "echo $$ > {pids}/$BATON_TASK_ID; echo run >> {marks}/$BATON_TASK_ID; echo started; sleep 4; echo done",
        pids = pids.path().display(),
        marks = marks.path().display()
    );
    let tid = c.template(pid, json!({"script": script, "max_attempts": 3})).await;
    let ids = [c.submit(pid, tid).await, c.submit(pid, tid).await];
    for id in ids {
        c.wait_status(pid, id, &["running"], Duration::from_secs(20)).await;
    }

    srv.kill_server();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let srv = ChildServer::start_with(data.path(), pids.path(), &db, &opts).await;
    let c = srv.client.clone();
    a.wait_online(&c).await;
    b.wait_online(&c).await;
    // The same runner processes came back: they say so, so that an assignment that died with the
    // old server is queued again rather than lost (see tests/it/undelivered.rs).
    let hellos = |log: &str| -> Vec<String> {
        log.lines().filter(|l| l.contains("\"runner connected\"")).map(str::to_owned).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while hellos(&srv.log_text()).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hellos = hellos(&srv.log_text());
    assert!(hellos.len() == 2 && hellos.iter().all(|l| l.contains("\"resumed\":true")), "{hellos:#?}");
    for id in ids {
        let t = c.wait_final(pid, id, Duration::from_secs(40)).await;
        assert_eq!((t["status"].as_str(), t["attempt"].as_i64()), (Some("succeeded"), Some(1)), "{t}");
        let texts = c.log_texts(pid, id).await;
        assert_eq!(texts, vec!["started", "done"], "task {id}");
        let runs = std::fs::read_to_string(marks.path().join(id.to_string())).unwrap();
        assert_eq!(runs.lines().count(), 1, "task {id} ran more than once");
    }
    kill_scripts(pids.path());
}
