//! Sessions end when they should: a changed password ends the user's other sessions
//! (`PATCH /api/v1/users/me`, and an administrator's `PATCH /api/v1/users/{uid}`), a wrong
//! current password is refused and counts as a failed login, and expired sessions and tokens
//! are swept from the database.

use std::time::{Duration, Instant};

use baton_testkit::{Client, TestServer};
use serde_json::json;

/// Creates user `name` (password `<name>-password`); returns its id.
async fn add_user(srv: &TestServer, name: &str) -> i64 {
    let body = json!({"username": name, "password": format!("{name}-password")});
    srv.client.post("/api/v1/users", body).await.expect(201)["id"].as_i64().unwrap()
}

async fn logged_in(srv: &TestServer, name: &str, password: &str) -> Client {
    let c = srv.anonymous();
    c.login(name, password).await;
    c
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_but_not_the_callers() {
    let srv = TestServer::start().await;
    add_user(&srv, "erin").await;
    let (mine, other) =
        (logged_in(&srv, "erin", "erin-password").await, logged_in(&srv, "erin", "erin-password").await);
    let token =
        mine.post("/api/v1/tokens", json!({"name": "ci"})).await.expect(201)["token"].as_str().unwrap().to_owned();

    let wrong =
        mine.patch("/api/v1/users/me", json!({"current_password": "not-it-at-all", "password": "new-erin-pass"})).await;
    assert_eq!(wrong.status.as_u16(), 400, "{}", wrong.text);
    assert_eq!(wrong.error_code(), "invalid_input");
    assert!(wrong.error_message().contains("current_password"), "{}", wrong.text);
    other.get("/api/v1/users/me").await.expect(200);
    let short = mine.patch("/api/v1/users/me", json!({"current_password": "erin-password", "password": "short"})).await;
    assert_eq!(short.status.as_u16(), 400, "{}", short.text);
    assert!(short.error_message().contains("password"), "{}", short.text);

    let changed =
        mine.patch("/api/v1/users/me", json!({"current_password": "erin-password", "password": "new-erin-pass"})).await;
    assert_eq!(changed.expect(200)["username"], "erin");
    assert_eq!(mine.get("/api/v1/users/me").await.expect(200)["username"], "erin", "the caller's session stays");
    assert_eq!(other.get("/api/v1/users/me").await.status.as_u16(), 401, "the other session must end");
    srv.client.with_token(&token).get("/api/v1/users/me").await.expect(200);
    logged_in(&srv, "erin", "new-erin-pass").await;
    let old =
        srv.anonymous().post("/api/v1/auth/login", json!({"username": "erin", "password": "erin-password"})).await;
    assert_eq!(old.status.as_u16(), 401);
}

#[tokio::test]
async fn a_wrong_current_password_counts_as_a_failed_login() {
    let srv = TestServer::start_with(|cfg| cfg.login.max_failures_per_user = 2).await;
    add_user(&srv, "frank").await;
    let frank = logged_in(&srv, "frank", "frank-password").await;
    for _ in 0..2 {
        let r = frank
            .patch("/api/v1/users/me", json!({"current_password": "a-guess-1234", "password": "new-frank-pw"}))
            .await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    }
    let r = frank
        .patch("/api/v1/users/me", json!({"current_password": "frank-password", "password": "new-frank-pw"}))
        .await;
    assert_eq!(r.status.as_u16(), 429, "{}", r.text);
    let login =
        srv.anonymous().post("/api/v1/auth/login", json!({"username": "frank", "password": "frank-password"})).await;
    assert_eq!(login.status.as_u16(), 429, "{}", login.text);
}

#[tokio::test]
async fn an_administrators_new_password_for_a_user_ends_their_sessions() {
    let srv = TestServer::start().await;
    let uid = add_user(&srv, "grace").await;
    let grace = logged_in(&srv, "grace", "grace-password").await;
    srv.client.patch(&format!("/api/v1/users/{uid}"), json!({"admin": false})).await.expect(200);
    grace.get("/api/v1/users/me").await.expect(200);
    srv.client.patch(&format!("/api/v1/users/{uid}"), json!({"password": "reset-by-admin"})).await.expect(200);
    assert_eq!(grace.get("/api/v1/users/me").await.status.as_u16(), 401);
    // Administrators changing their own password this way stay logged in.
    let me = srv.client.get("/api/v1/users/me").await.expect(200)["id"].as_i64().unwrap();
    srv.client.patch(&format!("/api/v1/users/{me}"), json!({"password": "admin-password-2"})).await.expect(200);
    srv.client.get("/api/v1/users/me").await.expect(200);
}

#[tokio::test]
async fn expired_api_tokens_are_swept() {
    let srv = TestServer::start_with(|cfg| cfg.login.sweep_every_seconds = 1).await;
    let c = &srv.client;
    c.post("/api/v1/tokens", json!({"name": "brief", "expires_in_seconds": 1})).await.expect(201);
    c.post("/api/v1/tokens", json!({"name": "lasting"})).await.expect(201);
    let names = || async {
        let list = c.get("/api/v1/tokens").await.expect(200);
        list["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names().await, ["lasting", "brief"], "newest first");
    let deadline = Instant::now() + Duration::from_secs(10);
    while names().await != ["lasting"] {
        assert!(Instant::now() < deadline, "the expired token is still there: {:?}", names().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
