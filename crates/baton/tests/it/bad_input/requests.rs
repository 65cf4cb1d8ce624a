//! Bad requests apart from the body: path ids, query parameters, credentials, routes, methods.

use baton_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

use super::{assert_error_shape, assert_mentions, assert_names, project_count, still_works, target};

#[tokio::test]
async fn a_non_numeric_path_id_is_a_400() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let cases = vec![
        (Method::GET, "/api/v1/projects/abc".to_string(), "abc"),
        (Method::PATCH, "/api/v1/projects/abc".to_string(), "abc"),
        (Method::DELETE, "/api/v1/projects/abc".to_string(), "abc"),
        (Method::GET, "/api/v1/projects/1.5".to_string(), "1.5"),
        (Method::GET, "/api/v1/projects/99999999999999999999999".to_string(), "99999999999999999999999"),
        (Method::GET, "/api/v1/projects/abc/templates".to_string(), "abc"),
        (Method::GET, format!("/api/v1/projects/{pid}/templates/xyz"), "xyz"),
        (Method::DELETE, format!("/api/v1/projects/{pid}/templates/xyz"), "xyz"),
        (Method::GET, "/api/v1/projects/abc/tasks".to_string(), "abc"),
        (Method::GET, format!("/api/v1/projects/{pid}/tasks/1x"), "1x"),
        (Method::GET, format!("/api/v1/projects/{pid}/tasks/1x/log"), "1x"),
        (Method::GET, format!("/api/v1/projects/{pid}/tasks/1x/log/raw"), "1x"),
        (Method::POST, format!("/api/v1/projects/{pid}/tasks/1x/cancel"), "1x"),
        (Method::DELETE, "/api/v1/tokens/abc".to_string(), "abc"),
        (Method::PATCH, "/api/v1/users/abc".to_string(), "abc"),
        (Method::DELETE, "/api/v1/users/abc".to_string(), "abc"),
    ];
    for (method, path, bad) in cases {
        let body = [Method::PATCH, Method::POST].contains(&method).then(|| json!({}));
        let r = c.send(method.clone(), &path, body).await;
        assert_eq!(r.status.as_u16(), 400, "{method} {path}: {}", r.text);
        assert_mentions(&r, &[bad]);
    }
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_bad_query_parameter_is_a_400() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let tasks = format!("/api/v1/projects/{pid}/tasks");
    let cases = vec![
        ("/api/v1/projects?limit=abc".to_string(), "limit"),
        ("/api/v1/projects?limit=-1".to_string(), "limit"),
        ("/api/v1/projects?before=x".to_string(), "before"),
        ("/api/v1/projects?colour=red".to_string(), "colour"),
        (format!("/api/v1/projects/{pid}/templates?limit=1e3"), "limit"),
        (format!("{tasks}?status=bogus"), "status"),
        (format!("{tasks}?status=SUCCEEDED"), "status"),
        (format!("{tasks}?template_id=abc"), "template_id"),
        (format!("{tasks}?limit=ten"), "limit"),
        (format!("{tasks}?stauts=queued"), "stauts"),
        (format!("{tasks}/1/log?after=abc"), "after"),
        // Limits outside API.md's bounds are refused, not changed (found by fuzzing against the
        // OpenAPI document, which gives the bounds).
        ("/api/v1/projects?limit=0".to_string(), "limit"),
        ("/api/v1/users?limit=501".to_string(), "limit"),
        (format!("{tasks}?limit=2147483648"), "limit"),
        (format!("{tasks}/1/log?limit=10001"), "limit"),
    ];
    for (path, word) in cases {
        let r = c.get(&path).await;
        assert_eq!(r.status.as_u16(), 400, "GET {path}: {}", r.text);
        assert_mentions(&r, &[word]);
    }
    // The message of a bad status lists the good ones.
    let r = c.get(&format!("{tasks}?status=bogus")).await;
    assert_names(&r, &["status"]);
    assert!(r.error_message().contains("succeeded"), "{}", r.error_message());
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn no_credentials_or_bad_ones_are_a_401() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let anon = srv.anonymous();
    let garbage = c.with_token("garbage-token");
    let empty = c.with_token("");
    let lookalike = c.with_token(&format!("bt_{}", "A".repeat(43)));
    let requests = vec![
        (Method::GET, "/api/v1/projects".to_string(), None),
        (Method::POST, "/api/v1/projects".to_string(), Some(json!({"name": "sneaky"}))),
        (Method::GET, format!("/api/v1/projects/{pid}"), None),
        (Method::DELETE, format!("/api/v1/projects/{pid}"), None),
        (Method::POST, format!("/api/v1/projects/{pid}/tasks"), Some(json!({"template_id": tid}))),
        (Method::PATCH, format!("/api/v1/projects/{pid}/templates/{tid}"), Some(json!({"script": "rm -rf /"}))),
        (Method::GET, "/api/v1/users/me".to_string(), None),
        (Method::GET, "/api/v1/users".to_string(), None),
        (Method::GET, "/api/v1/tokens".to_string(), None),
        (Method::POST, "/api/v1/tokens".to_string(), Some(json!({"name": "t"}))),
    ];
    for who in [&anon, &garbage, &empty, &lookalike] {
        for (method, path, body) in &requests {
            let r = who.send(method.clone(), path, body.clone()).await;
            assert_eq!(r.status.as_u16(), 401, "{method} {path}: {}", r.text);
            assert_error_shape(&r, 401, "unauthenticated");
        }
    }
    // A forged session cookie is no better.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v1/users/me", srv.url))
        .header("cookie", "baton_session=bts_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(format!("{}/api/v1/users/me", srv.url))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let paths = [
        "/api/v1/nope".to_string(),
        "/api/v2/projects".to_string(),
        "/nope".to_string(),
        "/uix".to_string(),
        format!("/api/v1/projects/{pid}/nope"),
        format!("/api/v1/projects/{pid}/tasks/1/log/raw/more"),
    ];
    for path in &paths {
        for method in [Method::GET, Method::POST] {
            let body = (method == Method::POST).then(|| json!({}));
            let r = c.send(method.clone(), path, body).await;
            assert_error_shape(&r, 404, "not_found");
        }
        assert_error_shape(&srv.anonymous().get(path).await, 404, "not_found");
    }
    // `/` is the web console's page, and writing to it is no route.
    let page = srv.anonymous().get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{:?}", page.headers);
    assert_error_shape(&c.send(Method::POST, "/", Some(json!({}))).await, 405, "method_not_allowed");
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let id = c.submit(pid, tid).await;
    c.wait_final(pid, id, std::time::Duration::from_secs(30)).await;
    let cases = vec![
        (Method::PUT, "/api/v1/projects".to_string()),
        (Method::DELETE, "/api/v1/projects".to_string()),
        (Method::POST, format!("/api/v1/projects/{pid}")),
        (Method::PUT, format!("/api/v1/projects/{pid}/templates/{tid}")),
        (Method::DELETE, format!("/api/v1/projects/{pid}/tasks/{id}")),
        (Method::GET, format!("/api/v1/projects/{pid}/tasks/{id}/cancel")),
        (Method::GET, "/api/v1/auth/login".to_string()),
        (Method::POST, "/api/health".to_string()),
        (Method::DELETE, "/api/v1/users/me".to_string()),
    ];
    for (method, path) in cases {
        let r = c.send(method.clone(), &path, Some(json!({}))).await;
        assert_eq!(r.status.as_u16(), 405, "{method} {path}: {}", r.text);
        let code = r.error_code().to_owned();
        assert_error_shape(&r, 405, &code);
        assert!(r.error_message().contains(method.as_str()), "{method} {path}: {}", r.text);
    }
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 1).await;
}
