//! Probes, login and logout, `users/me`, API tokens and users.

use std::time::Duration;

use baton_testkit::{ADMIN_PASSWORD, TestServer};
use serde_json::json;

use super::{assert_error, user_client};

#[tokio::test]
async fn health_and_ready_answer_without_credentials() {
    let srv = TestServer::start().await;
    let anon = srv.anonymous();
    let r = anon.get("/api/health").await;
    assert_eq!(r.body, json!({"status": "ok"}));
    assert_eq!(r.status.as_u16(), 200);
    let r = anon.get("/api/ready").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
}

#[tokio::test]
async fn login_sets_an_http_only_session_cookie() {
    let srv = TestServer::start().await;
    let anon = srv.anonymous();
    assert_error(&anon.get("/api/v1/users/me").await, 401, "unauthenticated");
    let r = anon.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["user"]["username"], "admin");
    assert_eq!(r.body["user"]["admin"], true);
    let cookie = r.headers.get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    assert!(cookie.starts_with("baton_session="), "{cookie}");
    assert!(cookie.split(';').any(|p| p.trim().eq_ignore_ascii_case("HttpOnly")), "not HttpOnly: {cookie}");
    let me = anon.get("/api/v1/users/me").await.expect(200);
    assert_eq!(me["username"], "admin");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let srv = TestServer::start().await;
    let anon = srv.anonymous();
    let wrong = anon.post("/api/v1/auth/login", json!({"username": "admin", "password": "not-the-password"})).await;
    assert_error(&wrong, 401, "unauthenticated");
    assert!(wrong.headers.get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("baton_session=bts")));
    let unknown = anon.post("/api/v1/auth/login", json!({"username": "nobody", "password": "not-the-password"})).await;
    assert_error(&unknown, 401, "unauthenticated");
    assert_eq!(wrong.error_message(), unknown.error_message());
    assert_error(&anon.get("/api/v1/users/me").await, 401, "unauthenticated");
}

#[tokio::test]
async fn logout_ends_the_session_for_good() {
    let srv = TestServer::start().await;
    // A plain client without a cookie jar, so the old cookie can be replayed after logout.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/auth/login", srv.url))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let me = |cookie: String| {
        let http = http.clone();
        let url = format!("{}/api/v1/users/me", srv.url);
        async move { http.get(url).header("cookie", cookie).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(me(cookie.clone()).await, 200);
    let out = http.post(format!("{}/api/v1/auth/logout", srv.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(out.status().as_u16(), 204);
    assert_eq!(me(cookie.clone()).await, 401, "the session still works after logout");

    // The testkit client's jar drops the cookie too, and its other sessions are unaffected.
    let c = srv.anonymous();
    c.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(c.post("/api/v1/auth/logout", json!({})).await.status.as_u16(), 204);
    assert_error(&c.get("/api/v1/users/me").await, 401, "unauthenticated");
    srv.client.get("/api/v1/users/me").await.expect(200);
}

#[tokio::test]
async fn users_me_describes_the_caller() {
    let srv = TestServer::start().await;
    let me = srv.client.get("/api/v1/users/me").await.expect(200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["admin"], true);
    assert!(me["id"].as_i64().unwrap() > 0);
    let (bob_id, bob) = user_client(&srv, "bob").await;
    let me = bob.get("/api/v1/users/me").await.expect(200);
    assert_eq!(
        (me["id"].as_i64(), me["username"].as_str(), me["admin"].as_bool()),
        (Some(bob_id), Some("bob"), Some(false))
    );
}

#[tokio::test]
async fn api_tokens_are_shown_once_work_as_bearer_and_can_be_revoked() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let created = c.post("/api/v1/tokens", json!({"name": "ci"})).await.expect(201);
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 20, "{created}");
    assert_eq!(created["name"], "ci");
    let id = created["id"].as_i64().unwrap();

    let list = c.get("/api/v1/tokens").await;
    assert_eq!(list.status.as_u16(), 200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["name"], "ci");
    assert!(items[0].get("token").is_none(), "the list shows the token: {}", list.text);
    assert!(!list.text.contains(&secret), "the list leaks the secret: {}", list.text);

    let bearer = c.with_token(&secret);
    assert_eq!(bearer.get("/api/v1/users/me").await.expect(200)["username"], "admin");
    let pid = bearer.project().await;
    bearer.get(&format!("/api/v1/projects/{pid}")).await.expect(200);

    let expiring = c.post("/api/v1/tokens", json!({"name": "hour", "expires_in_seconds": 3600})).await.expect(201);
    assert!(super::is_utc_time(&expiring["expires_at"]), "{expiring}");
    let left = super::time_of(&expiring["expires_at"]) - chrono::Utc::now();
    assert!((3500..=3600).contains(&left.num_seconds()), "expires_at is not in an hour: {expiring}");
    let hour = c.with_token(expiring["token"].as_str().unwrap());
    assert_eq!(hour.get("/api/v1/users/me").await.expect(200)["username"], "admin");

    assert_eq!(c.delete(&format!("/api/v1/tokens/{id}")).await.status.as_u16(), 204);
    assert_error(&bearer.get("/api/v1/users/me").await, 401, "unauthenticated");
    assert_error(&c.delete(&format!("/api/v1/tokens/{id}")).await, 404, "not_found");
    hour.get("/api/v1/users/me").await.expect(200);
    let left = c.get("/api/v1/tokens").await.expect(200);
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["items"][0]["name"], "hour");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let srv = TestServer::start().await;
    let t = srv.client.post("/api/v1/tokens", json!({"name": "short", "expires_in_seconds": 1})).await.expect(201);
    let c = srv.client.with_token(t["token"].as_str().unwrap());
    c.get("/api/v1/users/me").await.expect(200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_error(&c.get("/api/v1/users/me").await, 401, "unauthenticated");
}

#[tokio::test]
async fn another_users_token_cannot_be_deleted_or_seen() {
    let srv = TestServer::start().await;
    let (_, bob) = user_client(&srv, "bob").await;
    let t = bob.post("/api/v1/tokens", json!({"name": "bobs"})).await.expect(201);
    let id = t["id"].as_i64().unwrap();
    assert_error(&srv.client.delete(&format!("/api/v1/tokens/{id}")).await, 404, "not_found");
    let admin_list = srv.client.get("/api/v1/tokens").await.expect(200);
    assert_eq!(admin_list["items"], json!([]));
    let bearer = srv.client.with_token(t["token"].as_str().unwrap());
    assert_eq!(bearer.get("/api/v1/users/me").await.expect(200)["username"], "bob");
    assert_eq!(bob.get("/api/v1/tokens").await.expect(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admins_create_users_and_duplicates_conflict() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let u = c.post("/api/v1/users", json!({"username": "carol", "password": "carol-password"})).await.expect(201);
    assert_eq!(u["username"], "carol");
    assert_eq!(u["admin"], false);
    assert!(u.get("password").is_none() && u.get("password_hash").is_none(), "{u}");
    let dup = c.post("/api/v1/users", json!({"username": "carol", "password": "other-password"})).await;
    assert_error(&dup, 409, "conflict");
    let list = c.get("/api/v1/users").await.expect(200);
    let names: Vec<_> = list["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "carol").count(), 1, "{list}");
    assert!(names.contains(&"admin"));
    // The duplicate did not change carol's password.
    srv.anonymous().login("carol", "carol-password").await;
}

#[tokio::test]
async fn non_admins_are_forbidden_from_users_and_see_no_projects() {
    let srv = TestServer::start().await;
    let pid = srv.client.project().await;
    let (bob_id, bob) = user_client(&srv, "bob").await;
    assert_error(&bob.get("/api/v1/users").await, 403, "forbidden");
    assert_error(
        &bob.post("/api/v1/users", json!({"username": "eve", "password": "eve-password"})).await,
        403,
        "forbidden",
    );
    assert_error(&bob.patch(&format!("/api/v1/users/{bob_id}"), json!({"admin": true})).await, 403, "forbidden");
    assert_error(&bob.delete("/api/v1/users/1").await, 403, "forbidden");
    assert_error(&bob.post("/api/v1/projects", json!({"name": "bobs"})).await, 403, "forbidden");
    assert_eq!(srv.client.get("/api/v1/projects").await.expect(200)["items"].as_array().unwrap().len(), 1);
    assert_eq!(bob.get("/api/v1/users/me").await.expect(200)["admin"], false, "bob made himself admin");
    assert_eq!(bob.get("/api/v1/projects").await.expect(200)["items"], json!([]));
    assert_error(&bob.get(&format!("/api/v1/projects/{pid}")).await, 404, "not_found");
    assert_error(&bob.get(&format!("/api/v1/projects/{pid}/tasks")).await, 404, "not_found");
    assert_error(&bob.delete(&format!("/api/v1/projects/{pid}")).await, 404, "not_found");
    srv.client.get(&format!("/api/v1/projects/{pid}")).await.expect(200);
    srv.anonymous().login("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_changed_password_is_the_one_that_logs_in() {
    let srv = TestServer::start().await;
    let (uid, _) = user_client(&srv, "dave").await;
    let u =
        srv.client.patch(&format!("/api/v1/users/{uid}"), json!({"password": "brand-new-password"})).await.expect(200);
    assert_eq!(u["username"], "dave");
    srv.anonymous().login("dave", "brand-new-password").await;
    assert_error(
        &srv.client.patch(&format!("/api/v1/users/{}", uid + 1000), json!({"password": "whatever-password"})).await,
        404,
        "not_found",
    );
    let old =
        srv.anonymous().post("/api/v1/auth/login", json!({"username": "dave", "password": "dave-password"})).await;
    assert_error(&old, 401, "unauthenticated");
}

#[tokio::test]
async fn users_are_deleted_but_an_admin_cannot_delete_themself() {
    let srv = TestServer::start().await;
    let me = srv.client.get("/api/v1/users/me").await.expect(200)["id"].as_i64().unwrap();
    assert_error(&srv.client.delete(&format!("/api/v1/users/{me}")).await, 409, "conflict");
    srv.client.get("/api/v1/users/me").await.expect(200);

    let (uid, erin) = user_client(&srv, "erin").await;
    let tok = erin.post("/api/v1/tokens", json!({"name": "t"})).await.expect(201)["token"].as_str().unwrap().to_owned();
    assert_eq!(srv.client.delete(&format!("/api/v1/users/{uid}")).await.status.as_u16(), 204);
    assert_error(&erin.get("/api/v1/users/me").await, 401, "unauthenticated");
    assert_error(&srv.client.with_token(&tok).get("/api/v1/users/me").await, 401, "unauthenticated");
    let login =
        srv.anonymous().post("/api/v1/auth/login", json!({"username": "erin", "password": "erin-password"})).await;
    assert_error(&login, 401, "unauthenticated");
    assert_error(&srv.client.delete(&format!("/api/v1/users/{uid}")).await, 404, "not_found");
    let list = srv.client.get("/api/v1/users").await.expect(200);
    assert!(list["items"].as_array().unwrap().iter().all(|u| u["username"] != "erin"), "{list}");
}
