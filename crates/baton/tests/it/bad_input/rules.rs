//! Input that parses but breaks a rule: template and task validation, other checks on names and
//! numbers, cancelling a finished task; and a barrage of bad requests that leaves the server whole.

use std::time::Duration;

use baton_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

use super::{assert_error_shape, assert_names, post_raw, project_count, still_works, target};

/// Template bodies that each break one rule, with the field the error must name.
fn bad_templates() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"shell": "zsh"}), "shell"),
        (json!({"shell": ""}), "shell"),
        (json!({"env": {"1X": "v"}}), "env.1X"),
        (json!({"env": {"A-B": "v"}}), "env.A-B"),
        (json!({"env": {"": "v"}}), "env."),
        (json!({"env": {"BATON_X": "v"}}), "env.BATON_X"),
        (json!({"env": {"BATON_TASK_ID": "7"}}), "env.BATON_TASK_ID"),
        (json!({"labels": ["has space"]}), "labels"),
        (json!({"labels": [""]}), "labels"),
        (json!({"labels": ["x".repeat(65)]}), "labels"),
        (json!({"secrets": ["not a name"]}), "secrets"),
        (json!({"timeout_seconds": -1}), "timeout_seconds"),
        (json!({"timeout_seconds": 8 * 86_400}), "timeout_seconds"),
        (json!({"max_attempts": 0}), "max_attempts"),
        (json!({"max_attempts": 101}), "max_attempts"),
        (json!({"max_parallel": -1}), "max_parallel"),
        (json!({"priority": 5000}), "priority"),
        (json!({"priority": -1001}), "priority"),
        (json!({"script": ""}), "script"),
        (json!({"script": "  \n\t"}), "script"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
    ]
}

#[tokio::test]
async fn template_validation_names_the_field() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let path = format!("/api/v1/projects/{pid}/templates");
    let before = c.get(&format!("{path}/{tid}")).await.expect(200);
    for (bad, field) in bad_templates() {
        let mut body = json!({"name": "new", "script": "true"});
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = c.post(&path, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "POST {body}: {}", r.text);
        assert_names(&r, &[field]);
        let r = c.patch(&format!("{path}/{tid}"), bad.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "PATCH {bad}: {}", r.text);
        assert_names(&r, &[field]);
    }
    assert_eq!(c.get(&format!("{path}/{tid}")).await.expect(200), before, "a rejected PATCH changed the template");
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_task_of_a_missing_or_foreign_template_is_a_400() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let other = c.project().await;
    let foreign = c.template(other, json!({"script": "echo foreign"})).await;
    let tasks = format!("/api/v1/projects/{pid}/tasks");
    for template_id in [tid + foreign + 1000, foreign, 0, -1] {
        let r = c.post(&tasks, json!({"template_id": template_id})).await;
        assert_eq!(r.status.as_u16(), 400, "template_id {template_id}: {}", r.text);
        assert_names(&r, &["template_id"]);
    }
    let cases = vec![
        (json!({"template_id": tid, "env": {"1X": "v"}}), "env.1X"),
        (json!({"template_id": tid, "env": {"BATON_TASK_ID": "99"}}), "env.BATON_TASK_ID"),
        (json!({"template_id": tid, "priority": 5000}), "priority"),
        (json!({"template_id": tid, "priority": -1001}), "priority"),
    ];
    for (body, field) in cases {
        let r = c.post(&tasks, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text);
        assert_names(&r, &[field]);
    }
    assert_eq!(c.get(&format!("/api/v1/projects/{other}/tasks")).await.expect(200)["items"], json!([]));
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn cancelling_a_finished_task_is_a_409() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let id = c.submit(pid, tid).await;
    let done = c.wait_final(pid, id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded");
    let cancel = format!("/api/v1/projects/{pid}/tasks/{id}/cancel");
    for _ in 0..2 {
        assert_error_shape(&c.post(&cancel, json!({})).await, 409, "conflict");
    }
    assert_eq!(c.task(pid, id).await, done, "cancelling a finished task changed it");
    assert_error_shape(
        &c.post(&format!("/api/v1/projects/{pid}/tasks/{}/cancel", id + 1000), json!({})).await,
        404,
        "not_found",
    );
    let other = c.project().await;
    assert_error_shape(
        &c.post(&format!("/api/v1/projects/{other}/tasks/{id}/cancel"), json!({})).await,
        404,
        "not_found",
    );
    assert_eq!(c.task(pid, id).await, done);
    still_works(c, pid, tid, 1).await;
}

#[tokio::test]
async fn other_rules_name_their_field() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let cases = vec![
        ("/api/v1/projects", json!({"name": ""}), "name"),
        ("/api/v1/projects", json!({"name": "   "}), "name"),
        ("/api/v1/projects", json!({"name": "p".repeat(101)}), "name"),
        ("/api/v1/projects", json!({"name": "p", "max_parallel": -1}), "max_parallel"),
        ("/api/v1/users", json!({"username": "has space", "password": "password-1"}), "username"),
        ("/api/v1/users", json!({"username": "", "password": "password-1"}), "username"),
        ("/api/v1/users", json!({"username": "shorty", "password": "short"}), "password"),
        ("/api/v1/tokens", json!({"name": ""}), "name"),
        ("/api/v1/tokens", json!({"name": "t", "expires_in_seconds": 0}), "expires_in_seconds"),
        ("/api/v1/tokens", json!({"name": "t", "expires_in_seconds": u64::MAX}), "expires_in_seconds"),
    ];
    for (path, body, field) in cases {
        let r = c.post(path, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "POST {path} {body}: {}", r.text);
        assert_names(&r, &[field]);
    }
    let r = c.patch(&format!("/api/v1/projects/{pid}"), json!({"name": ""})).await;
    assert_names(&r, &["name"]);
    let me = c.get("/api/v1/users/me").await.expect(200)["id"].as_i64().unwrap();
    let r = c.patch(&format!("/api/v1/users/{me}"), json!({"password": "short"})).await;
    assert_names(&r, &["password"]);
    assert_eq!(project_count(c).await, 1);
    assert_eq!(c.get("/api/v1/tokens").await.expect(200)["items"], json!([]));
    assert_eq!(c.get("/api/v1/users").await.expect(200)["items"].as_array().unwrap().len(), 1);
    srv.anonymous().login("admin", baton_testkit::ADMIN_PASSWORD).await;
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_barrage_of_bad_requests_leaves_the_server_whole() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let first = c.submit(pid, tid).await;
    c.wait_final(pid, first, Duration::from_secs(30)).await;
    let tasks = format!("/api/v1/projects/{pid}/tasks");
    let token =
        c.post("/api/v1/tokens", json!({"name": "barrage"})).await.expect(201)["token"].as_str().unwrap().to_owned();
    let mut jobs = Vec::new();
    for i in 0..20 {
        let (c, anon, tasks, token) = (c.clone(), srv.anonymous(), tasks.clone(), token.clone());
        jobs.push(tokio::spawn(async move {
            let rs = vec![
                post_raw(&c, &tasks, r#"{"template_id": "#).await,
                post_raw(&c, &tasks, "").await,
                // On a connection of its own: see `a_413_closes_its_connection_or_keeps_it_usable`.
                post_raw(&c.with_token(&token), &tasks, vec![b' '; 2 << 20]).await,
                c.post(&tasks, json!({"template_id": tid, "priority": "x"})).await,
                c.post(&tasks, json!({"template_id": tid + 1000 + i})).await,
                c.post(&tasks, json!({"template_id": tid, "typo": 1})).await,
                c.post(
                    &format!("/api/v1/projects/{pid}/templates"),
                    json!({"name": "x", "script": "true", "shell": "zsh"}),
                )
                .await,
                c.get(&format!("{tasks}?status=bogus")).await,
                c.get("/api/v1/projects/abc").await,
                c.send(Method::PUT, "/api/v1/projects", Some(json!({}))).await,
                c.get("/api/v1/nowhere").await,
                anon.post(&tasks, json!({"template_id": tid})).await,
                c.with_token("junk").post(&tasks, json!({"template_id": tid})).await,
            ];
            for r in rs {
                let s = r.status.as_u16();
                assert!((400..500).contains(&s), "expected a 4xx, got {s}: {}", r.text);
                assert!(
                    r.error_code().chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') && !r.error_code().is_empty(),
                    "{}",
                    r.text
                );
            }
        }));
    }
    for j in jobs {
        j.await.unwrap();
    }
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 1).await;
}
