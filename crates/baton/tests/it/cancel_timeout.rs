//! Cancelling tasks (queued, running, finished) and timeouts: the whole process group dies,
//! SIGTERM comes first and SIGKILL after the grace, and the bounds of the design hold.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_testkit::{Client, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
/// The design's promise: a cancelled running task has ended within this time of the request.
const CANCEL_BOUND: Duration = Duration::from_secs(2);

fn cancel_path(pid: i64, id: i64) -> String {
    format!("/api/v1/projects/{pid}/tasks/{id}/cancel")
}

async fn submit_env(c: &Client, pid: i64, tid: i64, env: Value) -> i64 {
    let body = json!({"template_id": tid, "env": env});
    c.post(&format!("/api/v1/projects/{pid}/tasks"), body).await.expect(201)["id"].as_i64().unwrap()
}

/// Cancels `id` and returns the final task and how long after the request it was seen final.
async fn cancel_and_wait(c: &Client, pid: i64, id: i64) -> (Value, Duration) {
    let t0 = Instant::now();
    let r = c.post(&cancel_path(pid, id), json!({})).await;
    assert_eq!(r.status, 202, "cancel of a running task: {}", r.text);
    let task = c.wait_final(pid, id, WAIT).await;
    (task, t0.elapsed())
}

async fn wait_file<F: Fn(&str) -> bool>(path: &Path, ok: F, what: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {} is {s:?}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process is alive: a zombie (waiting for its parent to reap it) counts as dead.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn cancelling_a_queued_task_cancels_it_at_once() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    // No runner has this label: the task stays queued.
    let tid = c.template(pid, json!({"script": "echo must-not-run", "labels": ["no-runner-has-this"]})).await;
    let id = c.submit(pid, tid).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.task(pid, id).await["status"], "queued");
    let r = c.post(&cancel_path(pid, id), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled", "the 202 body: {}", r.text);
    assert_eq!(r.body["id"], id, "{}", r.text);
    let t = c.task(pid, id).await;
    assert_eq!(t["status"], "cancelled", "{t}");
    assert!(t["finished_at"].is_string(), "{t}");
    assert!(t["started_at"].is_null(), "{t}");
    assert_eq!(t["epoch"], 0, "a cancelled queued task was never assigned: {t}");
    assert!(c.log_texts(pid, id).await.iter().all(|l| !l.contains("must-not-run")));
    // Cancelling it again is a conflict: it has finished.
    let again = c.post(&cancel_path(pid, id), json!({})).await;
    assert_eq!(again.status, 409, "{}", again.text);
}

#[tokio::test]
async fn cancelling_a_queued_task_on_a_server_without_runner() {
    let srv = TestServer::start().await.restart_without_runner().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo hi"})).await;
    let id = c.submit(pid, tid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.task(pid, id).await["status"], "queued");
    let r = c.post(&cancel_path(pid, id), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(c.task(pid, id).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_task_ends_it_within_two_seconds() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo started; sleep 30; echo not-reached"})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    let (task, took) = cancel_and_wait(c, pid, id).await;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert!(took <= CANCEL_BOUND, "cancel took {took:?}, more than {CANCEL_BOUND:?}");
    assert!(task["finished_at"].is_string(), "{task}");
    assert_eq!(task["epoch"], 1, "{task}");
    let texts = c.log_texts(pid, id).await;
    assert!(texts.contains(&"started".to_string()), "{texts:?}");
    assert!(!texts.contains(&"not-reached".to_string()), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_kills_the_whole_process_group() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let (out, pidf) = (dir.path().join("out"), dir.path().join("child.pid"));
    let script = r#"(while true; do date +%s%N >> "$OUT"; sleep 0.1; done) & echo $! > "$PIDF"; wait"#;
    let tid = c.template(pid, json!({"script": script})).await;
    let env = json!({"OUT": out.display().to_string(), "PIDF": pidf.display().to_string()});
    let id = submit_env(c, pid, tid, env).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    let child: i32 =
        wait_file(&pidf, |s| s.trim().parse::<i32>().is_ok(), "no child pid").await.trim().parse().unwrap();
    wait_file(&out, |s| s.lines().count() >= 3, "the background child is not writing").await;
    assert!(alive(child), "the background child should run before the cancel");

    let (task, took) = cancel_and_wait(c, pid, id).await;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert!(took <= CANCEL_BOUND, "cancel took {took:?}");
    // The child is gone (allow a moment for the kernel to reap it) and the file stops growing.
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(child), "background child {child} survived the cancel");
    let before = std::fs::read_to_string(&out).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = std::fs::read_to_string(&out).unwrap();
    assert_eq!(before.lines().count(), after.lines().count(), "the file still grows after the cancel");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_ignoring_sigterm_is_killed_after_the_grace() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let pidf = dir.path().join("script.pid");
    // The trap reports SIGTERM and carries on; only SIGKILL ends it.
    let script = r#"trap 'echo got-sigterm' TERM; echo $$ > "$PIDF"; echo ready; while true; do sleep 0.05; done"#;
    let tid = c.template(pid, json!({"script": script})).await;
    let id = submit_env(c, pid, tid, json!({"PIDF": pidf.display().to_string()})).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    let script_pid: i32 =
        wait_file(&pidf, |s| s.trim().parse::<i32>().is_ok(), "no script pid").await.trim().parse().unwrap();
    let (task, took) = cancel_and_wait(c, pid, id).await;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert!(took <= CANCEL_BOUND, "cancel of a SIGTERM-ignoring script took {took:?}");
    assert!(took >= Duration::from_millis(400), "ended after {took:?}, before the 500 ms kill grace");
    let texts = c.log_texts(pid, id).await;
    assert!(texts.contains(&"got-sigterm".to_string()), "SIGTERM was not sent first: {texts:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(script_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(script_pid), "script {script_pid} survived");
}

#[tokio::test]
async fn a_script_with_sigterm_ignored_still_ends_cancelled() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "trap '' TERM; echo ready; sleep 30"})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    let (task, took) = cancel_and_wait(c, pid, id).await;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert!(took <= CANCEL_BOUND, "took {took:?}");
}

#[tokio::test]
async fn cancelling_a_finished_task_is_a_conflict() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo done"})).await;
    let id = c.submit(pid, tid).await;
    let before = c.wait_final(pid, id, WAIT).await;
    assert_eq!(before["status"], "succeeded", "{before}");
    let r = c.post(&cancel_path(pid, id), json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(!r.error_code().is_empty(), "409 without an error code: {}", r.text);
    assert!(!r.error_message().is_empty(), "{}", r.text);
    let after = c.task(pid, id).await;
    assert_eq!(after["status"], "succeeded", "a refused cancel changed the task: {after}");
    assert_eq!(after["finished_at"], before["finished_at"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_over_its_timeout_is_timed_out() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo begin; sleep 30; echo not-reached", "timeout_seconds": 1})).await;
    let id = c.submit(pid, tid).await;
    let running = c.wait_status(pid, id, &["running"], WAIT).await;
    let t0 = Instant::now();
    let task = c.wait_final(pid, id, WAIT).await;
    let took = t0.elapsed();
    assert_eq!(task["status"], "timed_out", "{task}");
    assert!(took <= Duration::from_secs(3), "a 1 s timeout ended the task only after {took:?} of running");
    let started = chrono::DateTime::parse_from_rfc3339(running["started_at"].as_str().unwrap()).unwrap();
    let finished = chrono::DateTime::parse_from_rfc3339(task["finished_at"].as_str().unwrap()).unwrap();
    let ran = finished - started;
    assert!(ran >= chrono::Duration::milliseconds(900), "killed before its timeout: {task}");
    assert!(ran <= chrono::Duration::seconds(3), "ran {ran} for a 1 s timeout: {task}");
    let lines = c.log_lines(pid, id).await;
    let system: Vec<&str> =
        lines.iter().filter(|l| l["stream"] == "system").map(|l| l["text"].as_str().unwrap()).collect();
    assert!(
        system.iter().any(|t| t.to_lowercase().contains("timed out") || t.to_lowercase().contains("timeout")),
        "no system line about the timeout: {lines:?}"
    );
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"begin") && !texts.contains(&"not-reached"), "{texts:?}");
}
