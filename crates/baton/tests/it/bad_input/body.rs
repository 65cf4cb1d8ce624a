//! Bad request bodies: malformed JSON, wrong types, missing and unknown fields, empty and
//! oversized bodies.

use std::time::Duration;

use baton_testkit::TestServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{assert_error_shape, assert_mentions, assert_names, post_raw, project_count, still_works, target};

#[tokio::test]
async fn malformed_json_is_a_400() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<Vec<u8>> = vec![
        br#"{"name": "#.to_vec(),
        br#"{name: "x"}"#.to_vec(),
        br#"{"name": "x",}"#.to_vec(),
        b"not json".to_vec(),
        b"{\"name\": \"\xff\xfe\"}".to_vec(),
        deep.into_bytes(),
    ];
    let paths = [
        "/api/v1/projects".to_string(),
        format!("/api/v1/projects/{pid}/templates"),
        format!("/api/v1/projects/{pid}/tasks"),
        "/api/v1/auth/login".to_string(),
        "/api/v1/tokens".to_string(),
        "/api/v1/users".to_string(),
    ];
    for path in &paths {
        for b in &bodies {
            let r = post_raw(c, path, b.clone()).await;
            let shown = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
            assert_eq!(r.status.as_u16(), 400, "POST {path} {shown:?}: {}", r.text);
            assert_error_shape(&r, 400, "invalid_input");
        }
    }
    let r = post_raw(c, "/api/v1/projects", r#"{"name": "#).await;
    assert_mentions(&r, &["malformed"]);
    let r = c.send_raw(reqwest::Method::PATCH, &format!("/api/v1/projects/{pid}"), r#"{"description": "#).await;
    assert_error_shape(&r, 400, "invalid_input");
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn json_followed_by_trailing_data_is_a_400() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    for body in [r#"{"name": "x"} trailing"#, r#"{"name": "x"}{"name": "y"}"#, r#"{"name": "x"}]"#] {
        let r = post_raw(c, "/api/v1/projects", body).await;
        assert_eq!(r.status.as_u16(), 400, "POST {body:?} was accepted: {}", r.text);
        assert_error_shape(&r, 400, "invalid_input");
    }
    let r = post_raw(c, &format!("/api/v1/projects/{pid}/tasks"), format!(r#"{{"template_id": {tid}}} garbage"#)).await;
    assert_error_shape(&r, 400, "invalid_input");
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_named() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let templates = format!("/api/v1/projects/{pid}/templates");
    let tasks = format!("/api/v1/projects/{pid}/tasks");
    let cases = vec![
        ("/api/v1/projects".to_string(), json!({"name": 5}), "name"),
        ("/api/v1/projects".to_string(), json!({"name": "p", "max_parallel": "3"}), "max_parallel"),
        ("/api/v1/projects".to_string(), json!({"name": "p", "description": ["d"]}), "description"),
        (templates.clone(), json!({"name": "t", "script": "true", "priority": "high"}), "priority"),
        (templates.clone(), json!({"name": "t", "script": "true", "max_attempts": "3"}), "max_attempts"),
        (templates.clone(), json!({"name": "t", "script": "true", "env": {"X": 5}}), "env.X"),
        (templates.clone(), json!({"name": "t", "script": "true", "env": ["X=1"]}), "env"),
        (templates.clone(), json!({"name": "t", "script": "true", "labels": "linux"}), "labels"),
        (templates.clone(), json!({"name": "t", "script": "true", "timeout_seconds": 1.5}), "timeout_seconds"),
        (templates.clone(), json!({"name": "t", "script": 42}), "script"),
        (templates.clone(), json!({"name": "t", "script": "true", "priority": 10_000_000_000_i64}), "priority"),
        (tasks.clone(), json!({"template_id": tid.to_string()}), "template_id"),
        (tasks.clone(), json!({"template_id": tid, "priority": "x"}), "priority"),
        (tasks.clone(), json!({"template_id": tid, "env": {"X": true}}), "env.X"),
        ("/api/v1/users".to_string(), json!({"username": "u1", "password": "password-1", "admin": "yes"}), "admin"),
        ("/api/v1/tokens".to_string(), json!({"name": "t", "expires_in_seconds": -5}), "expires_in_seconds"),
        ("/api/v1/auth/login".to_string(), json!({"username": "admin", "password": 12345678}), "password"),
    ];
    for (path, body, field) in cases {
        let r = c.post(&path, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "POST {path} {body}: {}", r.text);
        assert_names(&r, &[field]);
    }
    let r = c.patch(&format!("{templates}/{tid}"), json!({"priority": "9"})).await;
    assert_names(&r, &["priority"]);
    let r = c.patch(&format!("/api/v1/projects/{pid}"), json!({"max_parallel": true})).await;
    assert_names(&r, &["max_parallel"]);
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_missing_required_field_is_named() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let cases = vec![
        ("/api/v1/projects".to_string(), json!({}), "name"),
        ("/api/v1/projects".to_string(), json!({"name": null}), "name"),
        ("/api/v1/projects".to_string(), json!({"description": "no name"}), "name"),
        (format!("/api/v1/projects/{pid}/templates"), json!({"name": "t"}), "script"),
        (format!("/api/v1/projects/{pid}/templates"), json!({"script": "true"}), "name"),
        (format!("/api/v1/projects/{pid}/tasks"), json!({}), "template_id"),
        (format!("/api/v1/projects/{pid}/tasks"), json!({"priority": 1}), "template_id"),
        ("/api/v1/auth/login".to_string(), json!({"username": "admin"}), "password"),
        ("/api/v1/users".to_string(), json!({"username": "u2"}), "password"),
        ("/api/v1/tokens".to_string(), json!({}), "name"),
    ];
    for (path, body, field) in cases {
        let r = c.post(&path, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "POST {path} {body}: {}", r.text);
        assert_names(&r, &[field]);
    }
    assert_eq!(project_count(c).await, 1);
    assert_eq!(c.get("/api/v1/tokens").await.expect(200)["items"], json!([]));
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn an_unknown_field_is_named() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let cases = vec![
        ("/api/v1/projects".to_string(), json!({"name": "p", "colour": "red"}), "colour"),
        (
            format!("/api/v1/projects/{pid}/templates"),
            json!({"name": "t", "scirpt": "true", "script": "true"}),
            "scirpt",
        ),
        (format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid, "prio": 1}), "prio"),
        ("/api/v1/auth/login".to_string(), json!({"username": "admin", "password": "x", "remember": true}), "remember"),
        ("/api/v1/tokens".to_string(), json!({"name": "t", "expires": 60}), "expires"),
    ];
    for (path, body, field) in cases {
        let r = c.post(&path, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "POST {path} {body}: {}", r.text);
        assert_names(&r, &[field]);
    }
    let r = c.patch(&format!("/api/v1/projects/{pid}"), json!({"description": "changed", "nmae": "y"})).await;
    assert_names(&r, &["nmae"]);
    let r = c.patch(&format!("/api/v1/projects/{pid}/templates/{tid}"), json!({"priority": 5, "priorty": 5})).await;
    assert_names(&r, &["priorty"]);
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn an_empty_or_non_object_body_is_a_400() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let paths = [
        "/api/v1/projects".to_string(),
        format!("/api/v1/projects/{pid}/templates"),
        format!("/api/v1/projects/{pid}/tasks"),
    ];
    for path in &paths {
        for body in ["", "   \n", "null", "[]", "\"a string\"", "42", "true"] {
            let r = post_raw(c, path, body).await;
            assert_eq!(r.status.as_u16(), 400, "POST {path} {body:?}: {}", r.text);
            assert_error_shape(&r, 400, "invalid_input");
        }
        // No body and no content type at all.
        let r = c.send(reqwest::Method::POST, path, None).await;
        assert_error_shape(&r, 400, "invalid_input");
    }
    assert_mentions(&post_raw(c, "/api/v1/projects", "").await, &["empty"]);
    let r = c.send_raw(reqwest::Method::PATCH, &format!("/api/v1/projects/{pid}"), "").await;
    assert_error_shape(&r, 400, "invalid_input");
    assert_eq!(project_count(c).await, 1);
    still_works(c, pid, tid, 0).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let (pid, tid) = target(c).await;
    let big = "x".repeat(2 << 20);
    let r = c.post("/api/v1/projects", json!({"name": "big", "description": big})).await;
    assert_error_shape(&r, 413, "payload_too_large");
    let r = c
        .post(&format!("/api/v1/projects/{pid}/templates"), json!({"name": "big", "script": format!("echo {big}")}))
        .await;
    assert_error_shape(&r, 413, "payload_too_large");
    let r = c.post(&format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid, "env": {"BIG": big}})).await;
    assert_error_shape(&r, 413, "payload_too_large");
    let r = c.patch(&format!("/api/v1/projects/{pid}"), json!({"description": big})).await;
    assert_error_shape(&r, 413, "payload_too_large");
    // Malformed and oversized: the size is what is reported.
    let r = post_raw(c, "/api/v1/projects", vec![b'{'; 2 << 20]).await;
    assert_error_shape(&r, 413, "payload_too_large");
    assert_eq!(project_count(c).await, 1);

    // Under the limit is fine.
    let fits = "y".repeat(256 << 10);
    let p = c.post("/api/v1/projects", json!({"name": "fits", "description": fits})).await.expect(201);
    assert_eq!(p["description"].as_str().unwrap().len(), 256 << 10);
    assert_eq!(project_count(c).await, 2);
    still_works(c, pid, tid, 0).await;
}

/// Reads one HTTP/1.1 response (head and a `content-length` body) from `r`; returns the head in
/// lower case and the body, or what arrived before the connection ended.
async fn read_response(r: &mut (impl AsyncReadExt + Unpin)) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len =
                head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return (head, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), r.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return (String::from_utf8_lossy(&buf).to_lowercase(), String::new()),
        }
    }
}

/// After a 413 the server stops reading the request, so it cannot keep the connection. It must
/// then say `Connection: close`, or a client reuses the connection and loses its next request
/// (a broken pipe instead of an answer). Serving the next request would be fine too.
#[tokio::test]
async fn a_413_closes_its_connection_or_keeps_it_usable() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let token =
        c.post("/api/v1/tokens", json!({"name": "raw"})).await.expect(201)["token"].as_str().unwrap().to_owned();
    let stream = tokio::net::TcpStream::connect(srv.url.trim_start_matches("http://")).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let size = 2 << 20;
    let head = format!(
        "POST /api/v1/projects HTTP/1.1\r\nhost: baton\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        let sent = async {
            wr.write_all(head.as_bytes()).await?;
            wr.write_all(&vec![b' '; size]).await
        };
        let ok = sent.await.is_ok();
        (wr, ok)
    });
    let (head, body) = read_response(&mut rd).await;
    assert!(head.starts_with("http/1.1 413"), "expected a 413, got: {head}");
    assert!(body.contains("payload_too_large"), "{body}");
    let (mut wr, body_sent) = writer.await.unwrap();
    let says_close = head.lines().any(|l| l.starts_with("connection:") && l.contains("close"));
    if says_close {
        return;
    }
    assert!(body_sent, "the server closed the connection while the body was sent, without `Connection: close`: {head}");
    let second = wr.write_all(b"GET /api/health HTTP/1.1\r\nhost: baton\r\n\r\n").await;
    let (head2, body2) = read_response(&mut rd).await;
    assert!(
        second.is_ok() && head2.starts_with("http/1.1 200"),
        "the 413 kept the connection open (no `Connection: close`) but the next request on it got {second:?} / {head2:?} {body2:?}"
    );
    assert_eq!(project_count(c).await, 0);
}
