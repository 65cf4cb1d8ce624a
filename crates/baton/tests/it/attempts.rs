//! A task's attempts history (`GET …/tasks/{id}/attempts`): every ended attempt, newest first,
//! with the runner that ran it (its id and name) and the node that runner was connected to —
//! attempts given up by their runner, lost with a runner that restarted, and failed ones alike;
//! paged by attempt number; and hidden, like the task, from other projects and outsiders.

use std::time::Duration;

use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::{Outcome, TaskFinished, TaskRef, TaskStarted};
use baton_testkit::{Client, Resp, TestServer};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::hand_runner::{HandRunner, Stream};

const WAIT: Duration = Duration::from_secs(20);

fn path(pid: i64, id: i64) -> String {
    format!("/api/v1/projects/{pid}/tasks/{id}/attempts")
}

fn time_of(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(s.ends_with('Z'), "not UTC: {s}");
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap_or_else(|| panic!("not a list: {page}"))
}

fn numbers(page: &Value) -> Vec<i64> {
    items(page).iter().map(|a| a["attempt"].as_i64().unwrap()).collect()
}

/// Takes the next assignment on `s` and reports it started; waits until the API shows it running.
async fn start_next(c: &Client, s: &mut Stream, pid: i64, id: i64) -> TaskRef {
    let a = s.assignment().await.task.unwrap();
    assert_eq!(a.task_id, id);
    s.send(Msg::Started(TaskStarted { task: Some(a), time: None })).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn each_ended_attempt_is_listed_with_its_runner_and_node() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let me = HandRunner::register(c, srv.grpc_url(), "attempts-by-hand", &["hand"]).await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "exit 3", "labels": ["hand"], "max_attempts": 3})).await;
    let id = c.submit(pid, tid).await;
    assert_eq!(c.get(&path(pid, id)).await.expect(200), json!({"items": [], "next": null}));

    // Attempt 1: the runner gives it up (as when it shuts down); attempt 2: the runner comes back
    // as a fresh process without it; attempt 3 fails.
    let mut s = me.attach(Vec::new(), false).await;
    let first = start_next(c, &mut s, pid, id).await;
    let outcome = Outcome::Interrupted as i32;
    let error = "shutting down".to_owned();
    s.send(Msg::Finished(TaskFinished { task: Some(first), outcome, error, ..Default::default() })).await;
    let second = start_next(c, &mut s, pid, id).await;
    drop(s);
    let mut s = me.attach(Vec::new(), false).await;
    let third = start_next(c, &mut s, pid, id).await;
    let outcome = Outcome::Failed as i32;
    s.send(Msg::Finished(TaskFinished { task: Some(third), outcome, exit_code: Some(3), ..Default::default() })).await;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!((task["status"].as_str(), task["attempt"].as_i64()), (Some("failed"), Some(3)), "{task}");

    let page = c.get(&path(pid, id)).await.expect(200);
    assert_eq!(page["next"], Value::Null, "{page}");
    let all = items(&page);
    assert_eq!(numbers(&page), [3, 2, 1], "newest first: {page}");
    let expected = [
        (third, "failed", Some(3), None),
        (second, "lost", None, Some("the runner restarted without it")),
        (first, "lost", None, Some("shutting down")),
    ];
    for (a, (r, status, exit_code, error)) in all.iter().zip(expected) {
        assert_eq!(a["epoch"].as_i64(), Some(r.epoch), "{a}");
        assert_eq!(a["status"], status, "{a}");
        assert_eq!(a["exit_code"].as_i64(), exit_code.map(i64::from), "{a}");
        assert_eq!(a["error"].as_str(), error, "{a}");
        assert_eq!(a["runner_id"], me.id, "{a}");
        assert_eq!(a["runner_name"], "attempts-by-hand", "{a}");
        assert_eq!(a["node_id"].as_str(), Some(srv.node_id().as_str()), "{a}");
        assert!(time_of(&a["started_at"]) <= time_of(&a["finished_at"]), "{a}");
        let mut keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = [
            "attempt",
            "epoch",
            "runner_id",
            "runner_name",
            "node_id",
            "status",
            "exit_code",
            "error",
            "started_at",
            "finished_at",
        ];
        want.sort_unstable();
        assert_eq!(keys, want, "{a}");
    }
    assert!(time_of(&all[1]["finished_at"]) <= time_of(&all[0]["started_at"]), "{page}");

    // Pages: the cursor is the attempt number of the last item, and no attempt is missed or
    // repeated whatever the page size.
    let first_page = c.get(&format!("{}?limit=2", path(pid, id))).await.expect(200);
    assert_eq!((numbers(&first_page), &first_page["next"]), (vec![3, 2], &json!("2")));
    let rest = c.get(&format!("{}?limit=2&before=2", path(pid, id))).await.expect(200);
    assert_eq!((numbers(&rest), &rest["next"]), (vec![1], &Value::Null));
    assert_eq!(&items(&rest)[0], &all[2]);
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let p = c.get(&format!("{}?limit=1{before}", path(pid, id))).await.expect(200);
        seen.extend(numbers(&p));
        match p["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, [3, 2, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_on_the_local_runner_is_an_attempt_of_that_runner() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo before failing; exit 7"})).await;
    let id = c.submit(pid, tid).await;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "failed", "{task}");

    let page = c.get(&path(pid, id)).await.expect(200);
    assert_eq!(numbers(&page), [1], "a task without retries has one attempt: {page}");
    let a = &items(&page)[0];
    let runner = c.get(&format!("/api/v1/runners/{}", task["runner_id"])).await.expect(200);
    assert_eq!((&a["runner_id"], &a["runner_name"]), (&task["runner_id"], &runner["name"]), "{a} vs {runner}");
    assert_eq!(a["node_id"].as_str(), Some(srv.node_id().as_str()), "{a}");
    assert_eq!((&a["status"], &a["exit_code"], &a["epoch"]), (&json!("failed"), &json!(7), &task["epoch"]), "{a}");
    assert_eq!((&a["started_at"], &a["finished_at"]), (&task["started_at"], &task["finished_at"]), "{a} vs {task}");
}

/// Asserts that two answers are the same 404.
fn assert_same_404(got: &Resp, like: &Resp) {
    assert_eq!(got.status.as_u16(), 404, "{}", got.text);
    assert_eq!(
        (got.status, got.error_code(), got.error_message()),
        (like.status, like.error_code(), like.error_message())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_are_hidden_exactly_like_their_task() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true"})).await;
    let id = c.submit(pid, tid).await;
    let other = c.project().await;
    let task_in = |p: i64| format!("/api/v1/projects/{p}/tasks/{id}");

    // Another project's task, and a task that does not exist.
    assert_same_404(&c.get(&path(other, id)).await, &c.get(&task_in(other)).await);
    let missing = format!("/api/v1/projects/{pid}/tasks/987654321");
    assert_same_404(&c.get(&format!("{missing}/attempts")).await, &c.get(&missing).await);

    // A user who is not in the project sees neither the task nor its attempts; a viewer sees both.
    let outsider = crate::permissions::user(&srv, "attempts-outsider").await;
    assert_same_404(&outsider.client.get(&path(pid, id)).await, &outsider.client.get(&task_in(pid)).await);
    let viewer = crate::permissions::user(&srv, "attempts-viewer").await;
    crate::permissions::set_role(c, pid, viewer.id, "viewer").await.expect(200);
    assert_eq!(viewer.client.get(&path(pid, id)).await.expect(200), json!({"items": [], "next": null}));

    let r = c.get(&format!("{}?before=soon", path(pid, id))).await;
    assert_eq!((r.status.as_u16(), r.error_code()), (400, "invalid_input"), "{}", r.text);
    assert!(r.error_message().contains("before"), "{}", r.text);
}
