//! Templates: defaults, partial changes, names unique per project, and project scoping.

use baton_testkit::TestServer;
use serde_json::{Value, json};

use super::{assert_error, ids, is_utc_time};

#[tokio::test]
async fn a_template_gets_the_documented_defaults() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let t = c
        .post(&format!("/api/v1/projects/{pid}/templates"), json!({"name": "build", "script": "make"}))
        .await
        .expect(201);
    assert!(t["id"].as_i64().unwrap() > 0, "{t}");
    assert_eq!(t["project_id"], pid);
    assert_eq!(t["name"], "build");
    assert_eq!(t["script"], "make");
    assert_eq!(t["shell"], "bash");
    assert_eq!(t["max_attempts"], 1);
    assert_eq!(t["max_parallel"], 0);
    assert_eq!(t["priority"], 0);
    assert!(t.get("timeout_seconds").is_some_and(Value::is_null), "timeout_seconds should be null: {t}");
    assert_eq!(t["env"], json!({}));
    assert_eq!(t["labels"], json!([]));
    assert_eq!(t["secrets"], json!([]));
    assert!(is_utc_time(&t["created_at"]), "{t}");
    let got = c.get(&format!("/api/v1/projects/{pid}/templates/{}", t["id"])).await.expect(200);
    assert_eq!(got, t);
}

#[tokio::test]
async fn every_template_field_is_kept() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let body = json!({
        "name": "full", "script": "echo hi", "shell": "sh", "env": {"A": "1", "_B2": "two"},
        "labels": ["linux", "arch=x86_64"], "timeout_seconds": 60, "max_attempts": 3,
        "max_parallel": 2, "priority": -5,
    });
    let t = c.post(&format!("/api/v1/projects/{pid}/templates"), body.clone()).await.expect(201);
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&t[k], v, "{k} in {t}");
    }
    let got = c.get(&format!("/api/v1/projects/{pid}/templates/{}", t["id"])).await.expect(200);
    assert_eq!(got, t);
}

#[tokio::test]
async fn patching_a_template_changes_only_the_given_fields() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let body = json!({"name": "deploy", "script": "echo deploy", "env": {"X": "1"}, "labels": ["l1"], "timeout_seconds": 30, "max_attempts": 2, "priority": 4});
    let t = c.post(&format!("/api/v1/projects/{pid}/templates"), body).await.expect(201);
    let path = format!("/api/v1/projects/{pid}/templates/{}", t["id"]);

    let p = c.patch(&path, json!({"priority": 9})).await.expect(200);
    assert_eq!(p["priority"], 9);
    for k in [
        "id",
        "project_id",
        "name",
        "script",
        "shell",
        "env",
        "labels",
        "secrets",
        "timeout_seconds",
        "max_attempts",
        "max_parallel",
        "created_at",
    ] {
        assert_eq!(p[k], t[k], "PATCH priority changed {k}: {p}");
    }
    let p2 = c.patch(&path, json!({"script": "echo v2", "env": {"Y": "2"}})).await.expect(200);
    assert_eq!(p2["script"], "echo v2");
    assert_eq!(p2["env"], json!({"Y": "2"}));
    assert_eq!(p2["priority"], 9);
    assert_eq!(p2["name"], "deploy");
    assert_eq!(p2["timeout_seconds"], 30);
    assert_eq!(c.get(&path).await.expect(200), p2);

    // A PATCH that fails validation changes nothing.
    assert_error(&c.patch(&path, json!({"script": "echo v3", "max_attempts": 0})).await, 400, "invalid_input");
    assert_eq!(c.get(&path).await.expect(200), p2);

    assert_eq!(c.delete(&path).await.status.as_u16(), 204);
    assert_error(&c.get(&path).await, 404, "not_found");
    assert_error(&c.delete(&path).await, 404, "not_found");
    assert_eq!(c.get(&format!("/api/v1/projects/{pid}/templates")).await.expect(200)["items"], json!([]));
}

#[tokio::test]
async fn template_names_are_unique_within_a_project_only() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (p1, p2) = (c.project().await, c.project().await);
    let body = json!({"name": "same", "script": "true"});
    let t1 = c.post(&format!("/api/v1/projects/{p1}/templates"), body.clone()).await.expect(201);
    assert_error(&c.post(&format!("/api/v1/projects/{p1}/templates"), body.clone()).await, 409, "conflict");
    let t2 = c.post(&format!("/api/v1/projects/{p2}/templates"), body).await.expect(201);
    assert_ne!(t1["id"], t2["id"]);
    assert_eq!(t2["project_id"], p2);

    let other = c
        .post(&format!("/api/v1/projects/{p1}/templates"), json!({"name": "other", "script": "true"}))
        .await
        .expect(201);
    let r = c.patch(&format!("/api/v1/projects/{p1}/templates/{}", other["id"]), json!({"name": "same"})).await;
    assert_error(&r, 409, "conflict");
    assert_eq!(
        ids(&c.get(&format!("/api/v1/projects/{p1}/templates")).await.expect(200)),
        vec![other["id"].as_i64().unwrap(), t1["id"].as_i64().unwrap()]
    );
}

#[tokio::test]
async fn a_template_of_another_project_is_not_found() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (p1, p2) = (c.project().await, c.project().await);
    let tid = c.template(p1, json!({"script": "true"})).await;
    let wrong = format!("/api/v1/projects/{p2}/templates/{tid}");
    assert_error(&c.get(&wrong).await, 404, "not_found");
    assert_error(&c.patch(&wrong, json!({"priority": 1})).await, 404, "not_found");
    assert_error(&c.delete(&wrong).await, 404, "not_found");
    assert_error(&c.get(&format!("/api/v1/projects/{p1}/templates/{}", tid + 1000)).await, 404, "not_found");
    let t = c.get(&format!("/api/v1/projects/{p1}/templates/{tid}")).await.expect(200);
    assert_eq!(t["priority"], 0, "the PATCH through another project changed it");
}
