//! Narrowed API tokens (API.md, "Roles"): a token narrowed to a project and a role sees that
//! project alone with at most that role, a token made with a narrowed token is at least as
//! narrow, and a token acts with its user's rights at the time of each request.

use baton_testkit::TestServer;
use serde_json::json;

use super::{assert_error, assert_needs, items, set_role, team, token_of, user};

#[tokio::test]
async fn a_narrowed_token_sees_its_project_alone_with_its_role_at_most() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "n").await;
    let (p, q) = (t.pid, srv.client.project().await);
    set_role(&srv.client, q, t.owner.id, "owner").await.expect(200);
    let tid = srv.client.template(p, json!({"script": "true"})).await;
    let (_, narrowed) = t.owner.token(json!({"project_id": p, "role": "viewer"})).await;

    // Another project of the owner's is not there for the token.
    for path in [format!("/api/v1/projects/{q}"), format!("/api/v1/projects/{q}/templates")] {
        assert_error(&narrowed.get(&path).await, 404, "not_found", "");
        t.owner.client.get(&path).await.expect(200);
    }
    assert_error(&narrowed.patch(&format!("/api/v1/projects/{q}"), json!({"name": "x"})).await, 404, "not_found", "");
    // In its project it reads, and nothing more.
    assert_eq!(narrowed.get(&format!("/api/v1/projects/{p}")).await.expect(200)["role"], "viewer");
    narrowed.get(&format!("/api/v1/projects/{p}/templates/{tid}")).await.expect(200);
    assert_needs(&narrowed.post(&format!("/api/v1/projects/{p}/tasks"), json!({"template_id": tid})).await, "runner");
    let change = json!({"script": "false"});
    assert_needs(&narrowed.patch(&format!("/api/v1/projects/{p}/templates/{tid}"), change).await, "manager");
    assert_needs(&narrowed.get(&format!("/api/v1/projects/{p}/audit")).await, "owner");
    let listed: Vec<i64> =
        items(&narrowed.get("/api/v1/projects").await.expect(200)).iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, [p]);

    // A role-narrowed token of an administrator is not an administrator.
    let (_, admin_viewer) = token_of(&srv.client, json!({"role": "viewer"})).await;
    assert_error(&admin_viewer.get("/api/v1/users").await, 403, "forbidden", "narrowed");
    assert_error(&admin_viewer.post("/api/v1/projects", json!({"name": "x"})).await, 403, "forbidden", "narrowed");
    assert_eq!(admin_viewer.get(&format!("/api/v1/projects/{q}")).await.expect(200)["role"], "viewer");
    assert_needs(&admin_viewer.delete(&format!("/api/v1/projects/{q}")).await, "owner");
    assert_eq!(admin_viewer.get("/api/v1/users/me").await.expect(200)["admin"], true);
}

#[tokio::test]
async fn a_token_made_with_a_narrowed_token_is_at_least_as_narrow() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "m").await;
    let (p, q) = (t.pid, srv.client.project().await);
    set_role(&srv.client, q, t.owner.id, "owner").await.expect(200);
    let (_, narrowed) = t.owner.token(json!({"project_id": p, "role": "manager"})).await;

    let wider = narrowed.post("/api/v1/tokens", json!({"name": "wider", "project_id": q})).await;
    assert_error(&wider, 400, "invalid_input", "`project_id`");
    let made = narrowed.post("/api/v1/tokens", json!({"name": "same", "role": "owner"})).await.expect(201);
    assert_eq!((made["project_id"].as_i64(), made["role"].as_str()), (Some(p), Some("manager")), "{made}");
    let lower = narrowed.post("/api/v1/tokens", json!({"name": "lower", "project_id": p, "role": "runner"})).await;
    let lower = lower.expect(201);
    assert_eq!((lower["project_id"].as_i64(), lower["role"].as_str()), (Some(p), Some("runner")), "{lower}");

    let derived = srv.client.with_token(made["token"].as_str().unwrap());
    assert_error(&derived.get(&format!("/api/v1/projects/{q}")).await, 404, "not_found", "");
    assert_eq!(derived.get(&format!("/api/v1/projects/{p}")).await.expect(200)["role"], "manager");
    assert_needs(&derived.patch(&format!("/api/v1/projects/{p}"), json!({"description": "x"})).await, "owner");
    let again = derived.post("/api/v1/tokens", json!({"name": "again", "project_id": q, "role": "owner"})).await;
    assert_error(&again, 400, "invalid_input", "`project_id`");

    // A role-only narrowing carries over too, and a project the user cannot see is refused.
    let (_, runner_only) = t.owner.token(json!({"role": "runner"})).await;
    let into_q = runner_only.post("/api/v1/tokens", json!({"name": "q", "project_id": q, "role": "owner"})).await;
    let into_q = into_q.expect(201);
    assert_eq!((into_q["project_id"].as_i64(), into_q["role"].as_str()), (Some(q), Some("runner")), "{into_q}");
    let elsewhere = srv.client.project().await;
    let unseen = t.owner.client.post("/api/v1/tokens", json!({"name": "x", "project_id": elsewhere})).await;
    assert_error(&unseen, 400, "invalid_input", "`project_id`");
}

#[tokio::test]
async fn lowering_a_users_role_lowers_their_tokens_at_once() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "l").await;
    let p = t.pid;
    let (_, plain) = t.manager.token(json!({})).await;
    // Narrowed to more than the user has: it never acts above the user.
    let (_, capped) = t.manager.token(json!({"project_id": p, "role": "owner"})).await;
    let templates = format!("/api/v1/projects/{p}/templates");
    let new = |name: &str| json!({"name": name, "script": "true"});
    plain.post(&templates, new("a")).await.expect(201);
    capped.post(&templates, new("b")).await.expect(201);
    assert_needs(&capped.patch(&format!("/api/v1/projects/{p}"), json!({"description": "x"})).await, "owner");

    set_role(&t.owner.client, p, t.manager.id, "viewer").await.expect(200);
    assert_needs(&plain.post(&templates, new("c")).await, "manager");
    assert_needs(&capped.post(&templates, new("c")).await, "manager");
    assert_eq!(capped.get(&format!("/api/v1/projects/{p}")).await.expect(200)["role"], "viewer");

    t.owner.client.delete(&format!("/api/v1/projects/{p}/members/{}", t.manager.id)).await.expect(204);
    assert_error(&plain.get(&templates).await, 404, "not_found", "");
    assert_error(&capped.get(&templates).await, 404, "not_found", "");

    // Losing administrator rights takes them from the user's tokens as well.
    let ada = user(&srv, "ada").await;
    srv.client.patch(&format!("/api/v1/users/{}", ada.id), json!({"admin": true})).await.expect(200);
    let (_, token) = ada.token(json!({})).await;
    token.get("/api/v1/users").await.expect(200);
    srv.client.patch(&format!("/api/v1/users/{}", ada.id), json!({"admin": false})).await.expect(200);
    assert_error(&token.get("/api/v1/users").await, 403, "forbidden", "administrators");
    assert_error(&token.get(&format!("/api/v1/projects/{p}")).await, 404, "not_found", "");
}
