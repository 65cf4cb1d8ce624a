//! Projects: create, read, change, list with cursors, delete (refused while tasks are unfinished).

use std::time::Duration;

use baton_testkit::TestServer;
use serde_json::json;

use super::{all_pages, assert_error, ids};

#[tokio::test]
async fn projects_are_created_read_changed_and_deleted() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let p = c
        .post("/api/v1/projects", json!({"name": "alpha", "description": "first", "max_parallel": 3}))
        .await
        .expect(201);
    let pid = p["id"].as_i64().unwrap();
    assert_eq!(
        (&p["name"], &p["description"], &p["max_parallel"]),
        (&json!("alpha"), &json!("first"), &json!(3)),
        "{p}"
    );

    let bare = c.post("/api/v1/projects", json!({"name": "beta"})).await.expect(201);
    assert_eq!(bare["description"], "");
    assert_eq!(bare["max_parallel"], 0);

    let got = c.get(&format!("/api/v1/projects/{pid}")).await.expect(200);
    for k in ["id", "name", "description", "max_parallel"] {
        assert_eq!(got[k], p[k], "{k}: {got} vs {p}");
    }

    let changed = c.patch(&format!("/api/v1/projects/{pid}"), json!({"description": "changed"})).await.expect(200);
    assert_eq!(
        (&changed["name"], &changed["description"], &changed["max_parallel"]),
        (&json!("alpha"), &json!("changed"), &json!(3))
    );
    // Like every answer about a project (and as the OpenAPI document says), with the caller's role.
    assert_eq!(changed["role"], "owner", "{changed}");
    let changed =
        c.patch(&format!("/api/v1/projects/{pid}"), json!({"name": "gamma", "max_parallel": 0})).await.expect(200);
    assert_eq!(
        (&changed["name"], &changed["description"], &changed["max_parallel"]),
        (&json!("gamma"), &json!("changed"), &json!(0))
    );
    assert_eq!(c.get(&format!("/api/v1/projects/{pid}")).await.expect(200)["name"], "gamma");

    assert_eq!(c.delete(&format!("/api/v1/projects/{pid}")).await.status.as_u16(), 204);
    assert_error(&c.get(&format!("/api/v1/projects/{pid}")).await, 404, "not_found");
    assert_eq!(ids(&c.get("/api/v1/projects").await.expect(200)), vec![bare["id"].as_i64().unwrap()]);
}

#[tokio::test]
async fn a_duplicate_project_name_conflicts() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    c.post("/api/v1/projects", json!({"name": "dup"})).await.expect(201);
    assert_error(&c.post("/api/v1/projects", json!({"name": "dup"})).await, 409, "conflict");
    let other = c.post("/api/v1/projects", json!({"name": "other"})).await.expect(201)["id"].as_i64().unwrap();
    assert_error(&c.patch(&format!("/api/v1/projects/{other}"), json!({"name": "dup"})).await, 409, "conflict");
    assert_eq!(c.get(&format!("/api/v1/projects/{other}")).await.expect(200)["name"], "other");
    assert_eq!(ids(&c.get("/api/v1/projects").await.expect(200)).len(), 2);
}

#[tokio::test]
async fn projects_list_newest_first_in_pages_without_gaps_or_duplicates() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(c.project().await);
    }
    let newest_first: Vec<i64> = created.iter().rev().copied().collect();

    let all = c.get("/api/v1/projects").await.expect(200);
    assert_eq!(ids(&all), newest_first);
    assert!(all["next"].is_null(), "{all}");

    let first = c.get("/api/v1/projects?limit=3").await.expect(200);
    assert_eq!(ids(&first), &newest_first[..3]);
    assert!(!first["next"].is_null(), "a cursor is due: {first}");

    for limit in [1, 2, 3, 7] {
        let (got, pages) = all_pages(c, "/api/v1/projects", limit).await;
        assert_eq!(got, newest_first, "limit {limit}");
        assert!(pages >= 7usize.div_ceil(limit), "limit {limit}: {pages} pages");
    }
    let exact = c.get("/api/v1/projects?limit=7").await.expect(200);
    assert_eq!(ids(&exact).len(), 7);
}

#[tokio::test]
async fn a_list_page_holds_50_by_default() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    for _ in 0..51 {
        c.project().await;
    }
    let page = c.get("/api/v1/projects").await.expect(200);
    assert_eq!(ids(&page).len(), 50, "{page}");
    assert!(!page["next"].is_null(), "a 51st project follows: {page}");
    let (all, pages) = all_pages(c, "/api/v1/projects", 50).await;
    assert_eq!((all.len(), pages), (51, 2));
    for p in c.get("/api/v1/projects?limit=2").await.expect(200)["items"].as_array().unwrap() {
        assert!(super::is_utc_time(&p["created_at"]), "{p}");
    }
}

#[tokio::test]
async fn unknown_projects_are_not_found() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let missing = pid + 1000;
    assert_error(&c.get(&format!("/api/v1/projects/{missing}")).await, 404, "not_found");
    assert_error(&c.patch(&format!("/api/v1/projects/{missing}"), json!({"description": "x"})).await, 404, "not_found");
    assert_error(&c.delete(&format!("/api/v1/projects/{missing}")).await, 404, "not_found");
    assert_error(&c.get(&format!("/api/v1/projects/{missing}/templates")).await, 404, "not_found");
    assert_error(&c.get(&format!("/api/v1/projects/{missing}/tasks")).await, 404, "not_found");
    assert_error(&c.get(&format!("/api/v1/projects/{missing}/tasks/1")).await, 404, "not_found");
    assert_error(
        &c.post(&format!("/api/v1/projects/{missing}/templates"), json!({"name": "t", "script": "true"})).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn a_project_with_unfinished_tasks_is_not_deleted_until_they_end() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("go");
    let pid = c.project().await;
    let script = format!("while [ ! -e '{}' ]; do sleep 0.05; done; echo done", gate.display());
    let tid = c.template(pid, json!({"script": script})).await;
    let id = c.submit(pid, tid).await;

    // Queued or running, the task holds the project.
    assert_error(&c.delete(&format!("/api/v1/projects/{pid}")).await, 409, "conflict");
    c.wait_status(pid, id, &["running"], Duration::from_secs(20)).await;
    assert_error(&c.delete(&format!("/api/v1/projects/{pid}")).await, 409, "conflict");
    c.get(&format!("/api/v1/projects/{pid}")).await.expect(200);
    c.get(&format!("/api/v1/projects/{pid}/templates/{tid}")).await.expect(200);

    std::fs::write(&gate, b"").unwrap();
    let t = c.wait_final(pid, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(c.delete(&format!("/api/v1/projects/{pid}")).await.status.as_u16(), 204);
    assert_error(&c.get(&format!("/api/v1/projects/{pid}")).await, 404, "not_found");
    assert_error(&c.get(&format!("/api/v1/projects/{pid}/tasks/{id}")).await, 404, "not_found");
    assert_error(&c.get(&format!("/api/v1/projects/{pid}/templates/{tid}")).await, 404, "not_found");
    assert_error(&c.delete(&format!("/api/v1/projects/{pid}")).await, 404, "not_found");
}
