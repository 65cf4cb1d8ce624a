//! The audit log: every write through the API is recorded (refused ones and failed logins too)
//! with the user, the token, the client's address, the node, the action and the answer; reads are
//! not; only administrators (everything) and a project's owners (that project) read it; and no
//! secret value or password ever reaches it.

use baton_testkit::{Client, TestServer};
use serde_json::{Value, json};

use super::{assert_error, assert_needs, items, put, team};

/// The audit entries `c` reads at `path`, newest first (up to 500).
async fn entries(c: &Client, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    items(&c.get(&format!("{path}{sep}limit=500")).await.expect(200)).clone()
}

#[tokio::test]
async fn every_write_is_recorded_with_who_where_and_the_answer() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "a").await;
    let p = t.pid;
    let tid = srv.client.template(p, json!({"script": "true"})).await;
    let path = format!("/api/v1/projects/{p}/templates/{tid}");
    let (token_id, token) = t.manager.token(json!({})).await;
    token.patch(&path, json!({"script": "echo by-token"})).await.expect(200);
    t.manager.client.patch(&path, json!({"script": "echo by-session"})).await.expect(200);
    assert_needs(&t.viewer.client.patch(&path, json!({"script": "echo no"})).await, "manager");
    assert_error(&srv.anonymous().patch(&path, json!({"script": "echo no"})).await, 401, "unauthenticated", "");

    let got = entries(&t.owner.client, &format!("/api/v1/projects/{p}/audit?action=templates.update")).await;
    let seen: Vec<(Value, Value, Value, Value)> = got
        .iter()
        .map(|e| (e["user_id"].clone(), e["username"].clone(), e["token_id"].clone(), e["status"].clone()))
        .collect();
    let m = (json!(t.manager.id), json!(t.manager.name));
    assert_eq!(
        seen,
        [
            (Value::Null, json!(""), Value::Null, json!(401)),
            (json!(t.viewer.id), json!(t.viewer.name), Value::Null, json!(403)),
            (m.0.clone(), m.1.clone(), Value::Null, json!(200)),
            (m.0, m.1, json!(token_id), json!(200)),
        ],
        "{got:#?}"
    );
    for e in &got {
        assert_eq!(e["action"], "templates.update", "{e}");
        assert_eq!(e["node"], srv.node_id(), "{e}");
        assert_eq!(e["client_ip"], "127.0.0.1", "{e}");
        assert_eq!(e["target"], path, "{e}");
        assert_eq!(e["project_id"], p, "{e}");
        assert!(e["id"].as_i64().is_some() && e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }

    // Reads are not recorded.
    let before = entries(&srv.client, "/api/v1/audit").await.len();
    t.manager.client.get(&path).await.expect(200);
    token.get(&format!("/api/v1/projects/{p}/tasks")).await.expect(200);
    assert_eq!(entries(&srv.client, "/api/v1/audit").await.len(), before);

    // A project's audit log holds that project's entries only; the global one holds all.
    let q = srv.client.project().await;
    srv.client.patch(&format!("/api/v1/projects/{q}"), json!({"description": "elsewhere"})).await.expect(200);
    let mine = entries(&t.owner.client, &format!("/api/v1/projects/{p}/audit")).await;
    assert!(mine.iter().all(|e| e["project_id"] == p), "{mine:#?}");
    let theirs = entries(&srv.client, &format!("/api/v1/audit?project_id={q}")).await;
    assert_eq!(theirs.len(), 1, "{theirs:#?}");
    assert_eq!(theirs[0]["action"], "projects.update");
    let by_viewer = entries(&srv.client, &format!("/api/v1/audit?user_id={}", t.viewer.id)).await;
    let actions: Vec<&str> = by_viewer.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["templates.update", "auth.login"], "{by_viewer:#?}");
    assert!(by_viewer.iter().all(|e| e["user_id"] == t.viewer.id), "{by_viewer:#?}");

    // Reading it: administrators everything, owners their project's.
    assert_needs(&t.manager.client.get(&format!("/api/v1/projects/{p}/audit")).await, "owner");
    assert_error(&t.owner.client.get("/api/v1/audit").await, 403, "forbidden", "administrators");
    assert_error(&t.owner.client.get(&format!("/api/v1/projects/{q}/audit")).await, 404, "not_found", "");
}

#[tokio::test]
async fn a_failed_login_is_recorded_under_the_name_tried() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "f").await;
    let anon = srv.anonymous();
    let login = |name: &str, password: &str| json!({"username": name, "password": password});
    let r = anon.post("/api/v1/auth/login", login("mallory", "guessed-pw-1")).await;
    assert_error(&r, 401, "unauthenticated", "");
    let r = anon.post("/api/v1/auth/login", login(&t.viewer.name, "guessed-pw-2")).await;
    assert_error(&r, 401, "unauthenticated", "");
    anon.post("/api/v1/auth/login", login(&t.viewer.name, &t.viewer.password)).await.expect(200);

    let got = entries(&srv.client, "/api/v1/audit?action=auth.login").await;
    let seen: Vec<(Value, Value, Value)> =
        got.iter().take(3).map(|e| (e["user_id"].clone(), e["username"].clone(), e["status"].clone())).collect();
    let v = (json!(t.viewer.id), json!(t.viewer.name));
    assert_eq!(
        seen,
        [(v.0.clone(), v.1.clone(), json!(200)), (v.0, v.1, json!(401)), (Value::Null, json!("mallory"), json!(401))],
        "{got:#?}"
    );
    assert!(got[2]["detail"].as_str().unwrap().contains("refused"), "{}", got[2]);
    let text = serde_json::to_string(&got).unwrap();
    assert!(!text.contains("guessed-pw"), "a password reached the audit log: {text}");
}

/// The `client_ip` the audit log records for a write sent with `X-Forwarded-For: forwarded_for`
/// (no header when empty).
async fn recorded_address(srv: &TestServer, forwarded_for: &str) -> String {
    let t = srv.client.post("/api/v1/tokens", json!({"name": "proxy"})).await.expect(201);
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/projects", srv.url))
        .bearer_auth(t["token"].as_str().unwrap())
        .json(&json!({"name": format!("via {forwarded_for:?}")}));
    if !forwarded_for.is_empty() {
        req = req.header("x-forwarded-for", forwarded_for);
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 201);
    let e = entries(&srv.client, "/api/v1/audit?action=projects.create").await.remove(0);
    e["client_ip"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_client_address_is_the_forwarded_one_only_behind_a_trusted_proxy() {
    let trusting = TestServer::start_with_no_runner(|cfg| cfg.http.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    assert_eq!(recorded_address(&trusting, "203.0.113.7").await, "203.0.113.7");
    // What the client wrote left of the address our proxy appended is not believed.
    assert_eq!(recorded_address(&trusting, "198.51.100.9, 203.0.113.7").await, "203.0.113.7");
    assert_eq!(recorded_address(&trusting, "").await, "127.0.0.1");

    let plain = TestServer::start_without_runner().await;
    assert_eq!(recorded_address(&plain, "203.0.113.7").await, "127.0.0.1");
    assert_eq!(recorded_address(&plain, "").await, "127.0.0.1");
}

#[tokio::test]
async fn no_secret_value_or_password_reaches_the_audit_log() {
    const MARK: &str = "Sekr3t-audit";
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "s").await;
    let p = t.pid;
    let secrets = format!("/api/v1/projects/{p}/secrets");
    let value = |n: u32| json!(format!("{MARK}-{n}"));
    t.manager.client.post(&secrets, json!({"name": "API_KEY", "value": value(1)})).await.expect(201);
    put(&t.manager.client, &format!("{secrets}/API_KEY"), json!({"value": value(2)})).await.expect(200);
    assert_error(
        &t.manager.client.post(&secrets, json!({"name": "API_KEY", "value": value(3)})).await,
        409,
        "conflict",
        "",
    );
    let bad = t.manager.client.post(&secrets, json!({"name": "1BAD", "value": value(4)})).await;
    assert_error(&bad, 400, "invalid_input", "`name`");
    assert_needs(&t.viewer.client.post(&secrets, json!({"name": "MINE", "value": value(5)})).await, "manager");
    let login = json!({"username": t.viewer.name, "password": value(6)});
    assert_error(&srv.anonymous().post("/api/v1/auth/login", login).await, 401, "unauthenticated", "");
    let change = json!({"current_password": value(7), "password": "a-new-password"});
    assert_error(&t.viewer.client.patch("/api/v1/users/me", change).await, 400, "invalid_input", "current_password");
    let user = json!({"username": "newcomer", "password": value(8)});
    srv.client.post("/api/v1/users", user).await.expect(201);

    let all = entries(&srv.client, "/api/v1/audit").await;
    let recorded: Vec<&str> = all.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["secrets.create", "secrets.set", "auth.login", "users.me.update", "users.create"] {
        assert!(recorded.contains(&action), "{action} was not recorded: {recorded:?}");
    }
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(MARK), "a secret reached the audit log: {text}");
}
