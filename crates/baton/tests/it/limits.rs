//! Concurrency limits (template and project `max_parallel`, runner capacity), priority order with
//! FIFO within a priority, and runner labels.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_testkit::{Client, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Appends "start <id>" and "end <id>" around a sleep to the file in `$OUT`.
fn tracked(sleep: &str) -> String {
    format!(r#"echo "start $BATON_TASK_ID" >> "$OUT"; sleep {sleep}; echo "end $BATON_TASK_ID" >> "$OUT""#)
}

/// The most scripts that ran at once according to the start/end lines, checking every task
/// started and ended exactly once.
fn max_concurrent(path: &Path, tasks: usize) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut now, mut max, mut starts, mut ends) = (0usize, 0, 0, 0);
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("start", _)) => {
                starts += 1;
                now += 1;
                max = max.max(now);
            }
            Some(("end", _)) => {
                ends += 1;
                now = now.checked_sub(1).expect("an end without a start");
            }
            _ => panic!("unexpected line {line:?} in {text:?}"),
        }
    }
    assert_eq!((starts, ends), (tasks, tasks), "every task should start and end once: {text:?}");
    max
}

async fn submit(c: &Client, pid: i64, body: Value) -> i64 {
    c.post(&format!("/api/v1/projects/{pid}/tasks"), body).await.expect(201)["id"].as_i64().unwrap()
}

/// Waits for all tasks to end, counting how many were assigned or running at once on each poll
/// (one list request per poll, so each count comes from a single snapshot).
async fn wait_all(c: &Client, pid: i64, ids: &[i64]) -> (Vec<Value>, usize) {
    let deadline = Instant::now() + WAIT;
    let mut max_active = 0;
    loop {
        let list = c.get(&format!("/api/v1/projects/{pid}/tasks?limit=500")).await.expect(200);
        let all = list["items"].as_array().unwrap();
        let tasks: Vec<Value> = ids
            .iter()
            .map(|id| all.iter().find(|t| t["id"] == *id).unwrap_or_else(|| panic!("task {id} not listed")).clone())
            .collect();
        let active = tasks.iter().filter(|t| t["status"] == "assigned" || t["status"] == "running").count();
        max_active = max_active.max(active);
        let done = tasks.iter().all(|t| !["queued", "assigned", "running"].contains(&t["status"].as_str().unwrap()));
        if done {
            return (tasks, max_active);
        }
        assert!(Instant::now() < deadline, "tasks did not finish: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn assert_all_succeeded(tasks: &[Value]) {
    for t in tasks {
        assert_eq!(t["status"], "succeeded", "{t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn template_max_parallel_one_runs_tasks_one_at_a_time() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace");
    let tid = c
        .template(pid, json!({"script": tracked("0.5"), "max_parallel": 1, "env": {"OUT": out.display().to_string()}}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(c.submit(pid, tid).await);
    }
    let (tasks, max_active) = wait_all(c, pid, &ids).await;
    assert_all_succeeded(&tasks);
    assert_eq!(max_concurrent(&out, 3), 1, "template max_parallel 1 was exceeded");
    assert_eq!(max_active, 1, "two tasks of a max_parallel 1 template were active at once");
}

#[tokio::test(flavor = "multi_thread")]
async fn template_max_parallel_two_allows_exactly_two() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace");
    let tid = c
        .template(pid, json!({"script": tracked("1.5"), "max_parallel": 2, "env": {"OUT": out.display().to_string()}}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(c.submit(pid, tid).await);
    }
    let (tasks, _) = wait_all(c, pid, &ids).await;
    assert_all_succeeded(&tasks);
    // The runner has 4 slots: the limit, not the capacity, must hold it at two.
    assert_eq!(max_concurrent(&out, 4), 2, "max_parallel 2 with 4 slots should run exactly two at once");
}

#[tokio::test(flavor = "multi_thread")]
async fn project_max_parallel_limits_tasks_across_templates() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let name = format!("limited-{}", std::process::id());
    let project = c.post("/api/v1/projects", json!({"name": name, "max_parallel": 1})).await.expect(201);
    assert_eq!(project["max_parallel"], 1, "{project}");
    let pid = project["id"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace");
    let env = json!({"OUT": out.display().to_string()});
    let a = c.template(pid, json!({"script": tracked("0.5"), "env": env})).await;
    let b = c.template(pid, json!({"script": tracked("0.5"), "env": env})).await;
    let mut ids = Vec::new();
    for tid in [a, b, a, b] {
        ids.push(c.submit(pid, tid).await);
    }
    let (tasks, max_active) = wait_all(c, pid, &ids).await;
    assert_all_succeeded(&tasks);
    assert_eq!(max_concurrent(&out, 4), 1, "project max_parallel 1 was exceeded");
    assert_eq!(max_active, 1, "two tasks of a max_parallel 1 project were active at once");
}

/// A blocker that holds the single runner slot until `$GO` exists.
const BLOCKER: &str = r#"for i in $(seq 1 600); do [ -e "$GO" ] && exit 0; sleep 0.05; done; exit 1"#;

#[tokio::test(flavor = "multi_thread")]
async fn higher_priority_runs_first_and_fifo_within_a_priority() {
    let srv = TestServer::start_with(|cfg| cfg.runner.capacity = 1).await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let (out, go) = (dir.path().join("order"), dir.path().join("go"));
    let env = json!({"OUT": out.display().to_string(), "GO": go.display().to_string()});
    let blocker_t = c.template(pid, json!({"script": BLOCKER, "env": env})).await;
    let work = c.template(pid, json!({"script": r#"echo "$NAME" >> "$OUT""#, "env": env})).await;
    let blocker = c.submit(pid, blocker_t).await;
    c.wait_status(pid, blocker, &["running"], WAIT).await;

    let mut ids = Vec::new();
    for (name, priority) in [("low-1", 0), ("high-1", 10), ("low-2", 0), ("mid-1", 5), ("high-2", 10), ("low-3", 0)] {
        let id = submit(c, pid, json!({"template_id": work, "priority": priority, "env": {"NAME": name}})).await;
        ids.push(id);
    }
    // Everything waits behind the blocker.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        let t = c.task(pid, *id).await;
        assert_eq!(t["status"], "queued", "capacity 1 is taken by the blocker: {t}");
    }
    std::fs::write(&go, "").unwrap();
    let (tasks, max_active) = wait_all(c, pid, &ids).await;
    assert_all_succeeded(&tasks);
    assert_eq!(c.wait_final(pid, blocker, WAIT).await["status"], "succeeded");
    // Sampling can miss tasks this short entirely (0 seen active); more than one is the failure.
    assert!(max_active <= 1, "runner capacity 1 was exceeded: {max_active} active at once");
    // With one slot, each task starts only after the one before it was recorded as finished.
    let mut spans: Vec<(String, String)> = tasks
        .iter()
        .map(|t| (t["started_at"].as_str().unwrap().into(), t["finished_at"].as_str().unwrap().into()))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "two tasks overlapped on a runner with capacity 1: {spans:?}");
    }
    let order = std::fs::read_to_string(&out).unwrap();
    let order: Vec<&str> = order.lines().collect();
    assert_eq!(order, ["high-1", "high-2", "mid-1", "low-1", "low-2", "low-3"]);
    for t in &tasks {
        assert_eq!(
            t["priority"].as_i64(),
            Some(match t["id"].as_i64().unwrap() {
                id if id == ids[1] || id == ids[4] => 10,
                id if id == ids[3] => 5,
                _ => 0,
            }),
            "{t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn template_priority_is_the_default_of_its_tasks() {
    let srv = TestServer::start_with(|cfg| cfg.runner.capacity = 1).await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let (out, go) = (dir.path().join("order"), dir.path().join("go"));
    let env = json!({"OUT": out.display().to_string(), "GO": go.display().to_string()});
    let blocker = c.template(pid, json!({"script": BLOCKER, "env": env})).await;
    let low = c.template(pid, json!({"script": r#"echo low >> "$OUT""#, "env": env})).await;
    let high = c.template(pid, json!({"script": r#"echo high >> "$OUT""#, "env": env, "priority": 50})).await;
    let b = c.submit(pid, blocker).await;
    c.wait_status(pid, b, &["running"], WAIT).await;
    let ids = [c.submit(pid, low).await, c.submit(pid, high).await];
    assert_eq!(c.task(pid, ids[1]).await["priority"], 50);
    std::fs::write(&go, "").unwrap();
    let (tasks, _) = wait_all(c, pid, &ids).await;
    assert_all_succeeded(&tasks);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "high\nlow\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_needing_a_label_waits_for_a_runner_that_has_it() {
    let plain = TestServer::start().await;
    let c = &plain.client;
    let pid = c.project().await;
    let gpu = c.template(pid, json!({"script": "echo on gpu", "labels": ["gpu"]})).await;
    let any = c.template(pid, json!({"script": "echo anywhere"})).await;
    let waiting = c.submit(pid, gpu).await;
    let runs = c.submit(pid, any).await;
    assert_eq!(c.wait_final(pid, runs, WAIT).await["status"], "succeeded");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = c.task(pid, waiting).await;
    assert_eq!(t["status"], "queued", "a runner without the label took the task: {t}");
    assert!(t["runner_id"].is_null(), "{t}");

    let srv = TestServer::start_with(|cfg| cfg.runner.labels = vec!["gpu".into()]).await;
    let c = &srv.client;
    let pid = c.project().await;
    let gpu = c.template(pid, json!({"script": "echo on gpu", "labels": ["gpu"]})).await;
    let both = c.template(pid, json!({"script": "echo never", "labels": ["gpu", "big-memory"]})).await;
    let any = c.template(pid, json!({"script": "echo anywhere"})).await;
    let on_gpu = c.submit(pid, gpu).await;
    let needs_more = c.submit(pid, both).await;
    let unlabelled = c.submit(pid, any).await;
    let t = c.wait_final(pid, on_gpu, WAIT).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(c.log_texts(pid, on_gpu).await, ["on gpu"]);
    assert_eq!(
        c.wait_final(pid, unlabelled, WAIT).await["status"],
        "succeeded",
        "a labelled runner takes unlabelled tasks"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = c.task(pid, needs_more).await;
    assert_eq!(t["status"], "queued", "the runner lacks big-memory: {t}");
}

/// Tasks that no connected runner fits must not block the queue behind them, however many.
#[tokio::test(flavor = "multi_thread")]
async fn unplaceable_tasks_do_not_block_the_queue() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let gpu = c.template(pid, json!({"script": "true", "labels": ["gpu"], "priority": 10})).await;
    for _ in 0..150 {
        c.submit(pid, gpu).await;
    }
    let plain = c.template(pid, json!({"script": "echo behind"})).await;
    let id = c.submit(pid, plain).await;
    let t = c.wait_final(pid, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
}
