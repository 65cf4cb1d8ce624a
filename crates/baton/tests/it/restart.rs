//! Restarts: graceful and crashed, in process and as real processes killed with signals. Tasks and
//! logs survive, queued work is picked up, running work of a dead server ends `lost` (or runs
//! again while attempts are left), and a drain lets running scripts finish.

use std::time::{Duration, Instant};

use baton_testkit::TestServer;
use nix::sys::signal::Signal;
use serde_json::json;

use crate::child_server::ChildServer;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn tasks_and_logs_survive_a_graceful_restart() {
    let mut srv = TestServer::start().await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "seq 1 1500; echo to-stderr >&2; exit 4"})).await;
    let id = c.submit(pid, tid).await;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "failed", "{task}");
    let lines = c.log_lines(pid, id).await;
    assert_eq!(lines.len(), 1501, "before the restart");
    srv.shutdown().await;
    let srv = srv.restart().await;
    let c = &srv.client;
    assert_eq!(c.task(pid, id).await, task, "the task changed across a restart");
    assert_eq!(c.log_lines(pid, id).await, lines, "the log changed across a restart");
    // And the restarted server still runs tasks of the old template.
    let next = c.submit(pid, tid).await;
    assert_eq!(c.wait_final(pid, next, WAIT).await["exit_code"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_tasks_are_picked_up_after_a_restart() {
    let srv = TestServer::start().await.restart_without_runner().await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo picked up"})).await;
    let id = c.submit(pid, tid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued = c.task(pid, id).await;
    assert_eq!(queued["status"], "queued", "without a runner: {queued}");
    let srv = srv.restart().await;
    let c = &srv.client;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["epoch"], 1, "{task}");
    assert_eq!(c.log_texts(pid, id).await, ["picked up"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_running_during_a_crash_ends_lost_when_no_attempt_is_left() {
    let mut srv = TestServer::start().await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo begin; sleep 5; echo end", "max_attempts": 1})).await;
    let id = c.submit(pid, tid).await;
    let running = c.wait_status(pid, id, &["running"], WAIT).await;
    srv.crash();
    let srv = srv.restart().await;
    let c = &srv.client;
    let t0 = Instant::now();
    let task = c.wait_final(pid, id, WAIT).await;
    assert!(t0.elapsed() <= Duration::from_secs(15), "the lost task ended only after {:?}", t0.elapsed());
    assert_eq!(task["status"], "lost", "{task}");
    assert!(task["error"].as_str().is_some_and(|e| !e.is_empty()), "a lost task needs a reason: {task}");
    assert!(task["finished_at"].is_string(), "{task}");
    assert!(
        task["epoch"].as_i64().unwrap() > running["epoch"].as_i64().unwrap(),
        "the old epoch is not fenced: {task}"
    );
    assert_eq!(task["attempt"], 1, "{task}");
    // Wait past the crashed attempt's end: its late result must not change the task.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = c.task(pid, id).await;
    assert_eq!(later, task, "the crashed attempt changed the task afterwards");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_running_during_a_crash_gets_another_attempt() {
    let mut srv = TestServer::start().await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let script =
        r#"echo "attempt $BATON_ATTEMPT"; if [ "$BATON_ATTEMPT" = 1 ]; then sleep 5; exit 7; fi; echo second-ok"#;
    let tid = c.template(pid, json!({"script": script, "max_attempts": 2})).await;
    let id = c.submit(pid, tid).await;
    let first = c.wait_status(pid, id, &["running"], WAIT).await;
    assert_eq!(first["attempt"], 1, "{first}");
    srv.crash();
    let srv = srv.restart().await;
    let c = &srv.client;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["attempt"], 2, "{task}");
    assert_eq!(task["exit_code"], 0, "{task}");
    assert!(task["epoch"].as_i64().unwrap() > first["epoch"].as_i64().unwrap(), "{task} after {first}");
    let lines = c.log_lines(pid, id).await;
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(texts.ends_with(&["attempt 2", "second-ok"]), "{texts:?}");
    // The second attempt's lines continue the first one's numbering: no gap, no duplicate.
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=lines.len() as i64).collect::<Vec<_>>(), "{lines:?}");
    // The first attempt's late end (exit 7 after its sleep) must not overwrite the result.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = c.task(pid, id).await;
    assert_eq!(later, task, "the crashed attempt changed the task afterwards");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_shutdown_lets_a_running_task_finish() {
    let mut srv = TestServer::start().await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo begin; sleep 1; echo end"})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    srv.shutdown().await;
    let returned = chrono::Utc::now();
    let srv = srv.restart_without_runner().await;
    let c = &srv.client;
    let task = c.task(pid, id).await;
    assert_eq!(task["status"], "succeeded", "not recorded before shutdown() returned: {task}");
    let finished = chrono::DateTime::parse_from_rfc3339(task["finished_at"].as_str().unwrap()).unwrap();
    assert!(finished <= returned, "finished at {finished}, after shutdown returned at {returned}");
    assert_eq!(c.log_texts(pid, id).await, ["begin", "end"]);
}

/// The task script writes its process group id under `pid_dir` so the guard can kill it.
const PID_PREFIX: &str = r#"echo $$ > "$PIDS/$BATON_TASK_ID-$BATON_ATTEMPT"; "#;

async fn child_template(srv: &ChildServer, pid: i64, script: &str) -> i64 {
    let body = json!({"script": format!("{PID_PREFIX}{script}"), "env": {"PIDS": srv.pid_dir.display().to_string()}});
    srv.client.template(pid, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_server_process_leaves_no_task_running_forever() {
    let data = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let db = baton_testkit::TestDatabase::create().await;
    let mut srv = ChildServer::start(data.path(), pids.path(), &db).await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = child_template(&srv, pid, "echo begin; sleep 30").await;
    let id = c.submit(pid, tid).await;
    let running = c.wait_status(pid, id, &["running"], WAIT).await;
    srv.signal(Signal::SIGKILL);
    let status = srv.wait_exit(Duration::from_secs(10)).await;
    assert!(!status.success(), "SIGKILL should not look like a clean exit: {status}");

    let srv2 = ChildServer::start(srv.data_dir(), pids.path(), &db).await;
    let c = &srv2.client;
    let t0 = Instant::now();
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "lost", "{task}");
    assert!(t0.elapsed() <= Duration::from_secs(15), "lost only after {:?}", t0.elapsed());
    assert!(task["error"].as_str().is_some_and(|e| !e.is_empty()), "{task}");
    assert!(task["epoch"].as_i64().unwrap() > running["epoch"].as_i64().unwrap(), "{task}");
    let next_tid = child_template(&srv2, pid, "echo after restart").await;
    let next = c.submit(pid, next_tid).await;
    let done = c.wait_final(pid, next, WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done}; log:\n{}", srv2.log_text());
    assert_eq!(c.log_texts(pid, next).await, ["after restart"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_a_real_server_process_and_the_task_succeeds() {
    let data = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let db = baton_testkit::TestDatabase::create().await;
    let mut srv = ChildServer::start(data.path(), pids.path(), &db).await;
    let c = srv.client.clone();
    let pid = c.project().await;
    let tid = child_template(&srv, pid, "echo begin; sleep 1; echo end").await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "SIGTERM exit status {status}; log:\n{}", srv.log_text());

    let srv2 = ChildServer::start(srv.data_dir(), pids.path(), &db).await;
    let c = &srv2.client;
    let task = c.task(pid, id).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["attempt"], 1, "{task}");
    assert_eq!(c.log_texts(pid, id).await, ["begin", "end"]);
}

/// A remote runner's stream never ends by itself: shutting down ends it (the runner reconnects
/// on its own), so a node with remote runners stops as promptly as one without.
#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_shutdown_ends_remote_runner_streams() {
    let mut srv = TestServer::start_without_runner().await;
    let c = srv.client.clone();
    let remote = crate::remote_runners::RunnerProcess::start_on(&c, &srv.grpc_url(), "remote", "remote").await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo started; sleep 30", "labels": ["remote"]})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), srv.shutdown())
        .await
        .expect("the server did not stop while a remote runner was connected");
    eprintln!("stopped in {:?}", started.elapsed());
    drop(remote);
}
