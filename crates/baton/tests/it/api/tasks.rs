//! Tasks: the documented shape, listing with filters and cursors, priority and env overrides.

use std::time::Duration;

use baton_testkit::TestServer;
use serde_json::json;

use super::{all_pages, assert_error, ids, is_utc_time, time_of};

const WAIT: Duration = Duration::from_secs(30);

const TASK_FIELDS: [&str; 15] = [
    "id",
    "project_id",
    "template_id",
    "status",
    "attempt",
    "epoch",
    "priority",
    "runner_id",
    "exit_code",
    "error",
    "schedule_id",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
];

#[tokio::test]
async fn a_created_task_has_every_documented_field() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let me = c.get("/api/v1/users/me").await.expect(200)["id"].as_i64().unwrap();
    let pid = c.project().await;
    // The answer shows the task as it is when read back: a script that ends at once could
    // already be finished then, so this one takes a moment.
    let tid = c.template(pid, json!({"script": "sleep 1; echo ok", "priority": 3})).await;
    let t = c.post(&format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid})).await.expect(201);
    for k in TASK_FIELDS {
        assert!(t.get(k).is_some(), "task lacks `{k}`: {t}");
    }
    let id = t["id"].as_i64().unwrap();
    assert!(id > 0);
    assert_eq!(t["project_id"], pid);
    assert_eq!(t["template_id"], tid);
    assert!(["queued", "assigned", "running"].contains(&t["status"].as_str().unwrap()), "{t}");
    assert_eq!(t["priority"], 3);
    assert_eq!(t["created_by"], me);
    assert!(t["schedule_id"].is_null(), "{t}");
    assert!(t["exit_code"].is_null() && t["error"].is_null() && t["finished_at"].is_null(), "{t}");
    assert!(is_utc_time(&t["created_at"]), "created_at: {t}");
    let age = chrono::Utc::now() - time_of(&t["created_at"]);
    assert!(age.num_seconds().abs() < 60, "created_at is not now: {t}");

    let done = c.wait_final(pid, id, WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    for k in TASK_FIELDS {
        assert!(done.get(k).is_some(), "finished task lacks `{k}`: {done}");
    }
    assert_eq!(done["exit_code"], 0);
    assert!(done["attempt"].as_i64().unwrap() >= 1, "{done}");
    assert_eq!(done["epoch"], 1);
    assert!(done["runner_id"].as_i64().is_some(), "no runner recorded: {done}");
    assert_eq!(done["created_at"], t["created_at"]);
    for k in ["created_at", "started_at", "finished_at"] {
        assert!(is_utc_time(&done[k]), "{k} is not RFC 3339 UTC: {done}");
    }
    let (created, started, finished) =
        (time_of(&done["created_at"]), time_of(&done["started_at"]), time_of(&done["finished_at"]));
    assert!(created <= started && started <= finished, "times out of order: {done}");
    assert_eq!(c.task(pid, id).await, done);
}

#[tokio::test]
async fn tasks_list_newest_first_filtered_and_in_pages() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let ok = c.template(pid, json!({"script": "exit 0"})).await;
    let bad = c.template(pid, json!({"script": "exit 3"})).await;
    let mut all = Vec::new();
    for tid in [ok, bad, ok, bad, ok] {
        all.push((c.submit(pid, tid).await, tid));
    }
    for (id, _) in &all {
        c.wait_final(pid, *id, WAIT).await;
    }
    let newest = |pred: &dyn Fn(i64) -> bool| -> Vec<i64> {
        all.iter().rev().filter(|(_, t)| pred(*t)).map(|(id, _)| *id).collect()
    };
    let base = format!("/api/v1/projects/{pid}/tasks");

    let list = c.get(&base).await.expect(200);
    assert_eq!(ids(&list), newest(&|_| true));
    assert!(list["next"].is_null());
    for item in list["items"].as_array().unwrap() {
        for k in TASK_FIELDS {
            assert!(item.get(k).is_some(), "listed task lacks `{k}`: {item}");
        }
    }
    let failed = c.get(&format!("{base}?status=failed")).await.expect(200);
    assert_eq!(ids(&failed), newest(&|t| t == bad));
    assert!(
        failed["items"].as_array().unwrap().iter().all(|t| t["status"] == "failed" && t["exit_code"] == 3),
        "{failed}"
    );
    assert_eq!(ids(&c.get(&format!("{base}?status=succeeded")).await.expect(200)), newest(&|t| t == ok));
    assert_eq!(ids(&c.get(&format!("{base}?status=queued")).await.expect(200)), Vec::<i64>::new());
    assert_eq!(ids(&c.get(&format!("{base}?template_id={ok}")).await.expect(200)), newest(&|t| t == ok));
    assert_eq!(
        ids(&c.get(&format!("{base}?template_id={bad}&status=failed")).await.expect(200)),
        newest(&|t| t == bad)
    );
    assert_eq!(ids(&c.get(&format!("{base}?template_id={ok}&status=failed")).await.expect(200)), Vec::<i64>::new());

    for limit in [1, 2, 4] {
        assert_eq!(all_pages(c, &base, limit).await.0, newest(&|_| true), "limit {limit}");
    }
    assert_eq!(all_pages(c, &format!("{base}?template_id={ok}"), 1).await.0, newest(&|t| t == ok));
    assert_eq!(all_pages(c, &format!("{base}?status=failed"), 1).await.0, newest(&|t| t == bad));

    // Another project's list does not show them, and their ids are not found there.
    let other = c.project().await;
    assert_eq!(c.get(&format!("/api/v1/projects/{other}/tasks")).await.expect(200)["items"], json!([]));
    assert_error(&c.get(&format!("/api/v1/projects/{other}/tasks/{}", all[0].0)).await, 404, "not_found");
}

#[tokio::test]
async fn a_task_of_a_missing_or_foreign_template_or_project_is_refused_naming_which() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, other) = (c.project().await, c.project().await);
    let foreign = c.template(other, json!({"script": "true"})).await;
    let path = format!("/api/v1/projects/{pid}/tasks");
    crate::schedules::assert_field(&c.post(&path, json!({"template_id": foreign})).await, "template_id");
    crate::schedules::assert_field(&c.post(&path, json!({"template_id": foreign + 1000})).await, "template_id");
    let missing = format!("/api/v1/projects/{}/tasks", other + 1000);
    assert_error(&c.post(&missing, json!({"template_id": foreign})).await, 404, "not_found");
    let ok = c.post(&format!("/api/v1/projects/{other}/tasks"), json!({"template_id": foreign})).await.expect(201);
    assert_eq!((ok["project_id"].as_i64(), ok["template_id"].as_i64()), (Some(other), Some(foreign)));
    c.wait_final(other, ok["id"].as_i64().unwrap(), WAIT).await;
}

/// A single node remembers the templates tasks start from (one statement less per task): a
/// change or a deletion must still apply to the very next task.
#[tokio::test]
async fn a_changed_or_deleted_template_applies_to_the_next_task_at_once() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo v1"})).await;
    let template = format!("/api/v1/projects/{pid}/templates/{tid}");
    let path = format!("/api/v1/projects/{pid}/tasks");
    for version in ["v1", "v2", "v3"] {
        if version != "v1" {
            c.patch(&template, json!({"script": format!("echo {version}")})).await.expect(200);
        }
        // Twice each: the second start is the one a remembered template would serve.
        for _ in 0..2 {
            let id = c.post(&path, json!({"template_id": tid})).await.expect(201)["id"].as_i64().unwrap();
            assert_eq!(c.wait_final(pid, id, WAIT).await["status"], "succeeded");
            assert_eq!(c.log_texts(pid, id).await, vec![version.to_string()], "task {id} ran an older script");
        }
    }
    // A template without tasks: a refused start reads (and remembers) it all the same.
    let spare = c.template(pid, json!({"script": "true"})).await;
    let bad_env = json!({"template_id": spare, "env": {"BATON_X": "1"}});
    crate::schedules::assert_field(&c.post(&path, bad_env).await, "env.BATON_X");
    c.delete(&format!("/api/v1/projects/{pid}/templates/{spare}")).await.expect(204);
    crate::schedules::assert_field(&c.post(&path, json!({"template_id": spare})).await, "template_id");
}

#[tokio::test]
async fn a_tasks_priority_overrides_the_templates() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true", "priority": 7})).await;
    let path = format!("/api/v1/projects/{pid}/tasks");
    let inherit = c.post(&path, json!({"template_id": tid})).await.expect(201);
    assert_eq!(inherit["priority"], 7);
    let lower = c.post(&path, json!({"template_id": tid, "priority": -3})).await.expect(201);
    assert_eq!(lower["priority"], -3);
    let zero = c.post(&path, json!({"template_id": tid, "priority": 0})).await.expect(201);
    assert_eq!(zero["priority"], 0);
    assert_eq!(c.task(pid, lower["id"].as_i64().unwrap()).await["priority"], -3);
    for t in [&inherit, &lower, &zero] {
        c.wait_final(pid, t["id"].as_i64().unwrap(), WAIT).await;
    }
}

#[tokio::test]
async fn a_tasks_env_reaches_the_script_over_the_templates() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let script = r#"echo "A=$A B=$B C=$C""#;
    let tid = c.template(pid, json!({"script": script, "env": {"A": "from-template", "B": "template-b"}})).await;
    let body = json!({"template_id": tid, "env": {"B": "from task with spaces", "C": "c=1;$HOME"}});
    let id = c.post(&format!("/api/v1/projects/{pid}/tasks"), body).await.expect(201)["id"].as_i64().unwrap();
    let t = c.wait_final(pid, id, WAIT).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    let texts = c.log_texts(pid, id).await;
    assert!(texts.contains(&"A=from-template B=from task with spaces C=c=1;$HOME".to_string()), "log: {texts:?}");
    // The template itself is unchanged.
    let tpl = c.get(&format!("/api/v1/projects/{pid}/templates/{tid}")).await.expect(200);
    assert_eq!(tpl["env"], json!({"A": "from-template", "B": "template-b"}));
}

#[tokio::test]
async fn a_running_task_is_cancelled_with_202() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo started; sleep 60"})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], WAIT).await;
    let r = c.post(&format!("/api/v1/projects/{pid}/tasks/{id}/cancel"), json!({})).await;
    assert_eq!(r.status.as_u16(), 202, "{}", r.text);
    assert_eq!(r.body["id"], id);
    let t = c.wait_final(pid, id, WAIT).await;
    assert_eq!(t["status"], "cancelled", "{t}");
    assert!(is_utc_time(&t["finished_at"]), "{t}");
}

#[tokio::test]
async fn every_response_names_the_node() {
    let srv = TestServer::start().await;
    let node = srv.node_id();
    assert!(!node.is_empty());
    let c = &srv.client;
    let anon = srv.anonymous();
    let pid = c.project().await;
    let responses = vec![
        ("health", anon.get("/api/health").await),
        ("ready", anon.get("/api/ready").await),
        ("200", c.get("/api/v1/projects").await),
        ("201", c.post("/api/v1/projects", json!({"name": "node-header"})).await),
        ("204", c.delete(&format!("/api/v1/projects/{pid}")).await),
        ("400", c.post("/api/v1/projects", json!({})).await),
        ("401", anon.get("/api/v1/projects").await),
        ("404 route", c.get("/api/v1/no-such-route").await),
        ("404 outside the API", anon.get("/nowhere").await),
        ("404 project", c.get(&format!("/api/v1/projects/{pid}")).await),
        ("405", c.send(reqwest::Method::PUT, "/api/v1/projects", Some(json!({}))).await),
        ("413", c.send_raw(reqwest::Method::POST, "/api/v1/projects", vec![b' '; 2 << 20]).await),
    ];
    for (what, r) in responses {
        let got = r.headers.get("x-baton-node").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.as_deref(), Some(node.as_str()), "{what} ({}): X-Baton-Node", r.status);
        assert_ne!(r.status.as_u16(), 500, "{what}: {}", r.text);
    }
}
