//! Request ids: a client's `X-Request-Id` is kept (a strange one replaced), every response
//! carries one, and an error body names it, so a user can quote it and an operator find the
//! request's log lines.

use baton_testkit::TestServer;
use reqwest::Method;

#[tokio::test]
async fn every_response_and_error_carries_the_request_id() {
    let srv = TestServer::start().await;
    let c = &srv.client;

    let r = c.send_with(Method::GET, "/api/v1/projects/9999", None, &[("x-request-id", "deploy-check.42")]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["x-request-id"], "deploy-check.42");
    assert_eq!(r.body["error"]["request_id"], "deploy-check.42", "{}", r.text);

    // Without one (or with one not fit for logs), the server makes one up and says it.
    let mut seen = Vec::new();
    for sent in [None, Some("has spaces in it"), Some("")] {
        let headers: Vec<(&str, &str)> = sent.map(|v| ("x-request-id", v)).into_iter().collect();
        let r = c.send_with(Method::POST, "/api/v1/projects", Some(serde_json::json!({"name": 5})), &headers).await;
        assert_eq!(r.status, 400);
        let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        assert!(id.len() >= 16 && Some(id.as_str()) != sent, "{id:?}");
        assert_eq!(r.body["error"]["request_id"], id.as_str());
        seen.push(id);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "each request gets its own id: {seen:?}");

    // Successes, probes and unknown routes have one too.
    for path in ["/api/v1/users/me", "/api/health", "/api/v1/nope"] {
        assert!(c.get(path).await.headers.contains_key("x-request-id"), "{path}");
    }
}

/// A real server process logs in JSON (its output is no terminal), and a line logged while it
/// served a request names the request's id and the node.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_lines_of_a_request_name_its_id_and_the_node() {
    let (dir, pids) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = baton_testkit::TestDatabase::create().await;
    let srv = crate::child_server::ChildServer::start(dir.path(), pids.path(), &db).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", srv.url))
        .header("x-request-id", "login-check-7")
        .json(&serde_json::json!({"username": "admin", "password": baton_testkit::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = srv.log_text();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "logged in" && l.to_string().contains("login-check-7"))
        .unwrap_or_else(|| panic!("no JSON line of the login names its request id:\n{log}"));
    let text = line.to_string();
    assert!(text.contains("\"node_id\""), "{text}");
}
