//! The HTTP server's limits, seen from raw TCP: a request whose headers trickle in is cut off
//! after `http.header_read_timeout_seconds`, an idle keep-alive connection is closed after
//! `http.idle_timeout_seconds`, and beyond `http.max_connections` nobody is served until a
//! connection closes. And `log/raw` streams: byte-identical to the paged log API, never built in
//! memory first.

use std::time::{Duration, Instant};

use baton_testkit::TestServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTH: &[u8] = b"GET /api/health HTTP/1.1\r\nHost: baton\r\n\r\n";

async fn connect(srv: &TestServer) -> TcpStream {
    TcpStream::connect(srv.url.trim_start_matches("http://")).await.unwrap()
}

/// Reads until a whole `/api/health` answer has arrived, or panics after `within`.
async fn read_health(conn: &mut TcpStream, within: Duration) {
    let mut got = Vec::new();
    let read = async {
        while !String::from_utf8_lossy(&got).contains(r#"{"status":"ok"}"#) {
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the server closed the connection instead of answering");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(within, read).await.unwrap_or_else(|_| panic!("no answer within {within:?}"));
}

/// How long until the server closes `conn` (end of file or reset), at most `within`.
async fn closed_after(conn: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, conn.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => started.elapsed(),
        Ok(Ok(n)) => panic!("unexpected answer: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => panic!("the connection is still open after {within:?}"),
    }
}

#[tokio::test]
async fn a_request_whose_headers_trickle_in_is_cut_off_after_the_header_timeout() {
    let srv = TestServer::start_with(|cfg| cfg.http.header_read_timeout_seconds = 1).await;
    let mut slow = connect(&srv).await;
    slow.write_all(b"GET /api/hea").await.unwrap();
    let after = closed_after(&mut slow, Duration::from_secs(5)).await;
    assert!(after >= Duration::from_millis(700), "closed too early: {after:?}");

    // A prompt client on the same server is served as usual.
    let mut prompt = connect(&srv).await;
    prompt.write_all(HEALTH).await.unwrap();
    read_health(&mut prompt, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_only() {
    let srv = TestServer::start_with(|cfg| {
        cfg.http.header_read_timeout_seconds = 1;
        cfg.http.idle_timeout_seconds = 3;
    })
    .await;
    let mut conn = connect(&srv).await;
    conn.write_all(HEALTH).await.unwrap();
    read_health(&mut conn, Duration::from_secs(5)).await;
    // Idle for longer than the header timeout: the header timeout does not run between requests.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    conn.write_all(HEALTH).await.unwrap();
    read_health(&mut conn, Duration::from_secs(5)).await;
    let after = closed_after(&mut conn, Duration::from_secs(8)).await;
    assert!(after >= Duration::from_millis(2500), "closed before the idle timeout: {after:?}");
}

#[tokio::test]
async fn beyond_the_connection_limit_nobody_is_served_until_a_connection_closes() {
    let srv = TestServer::start_with(|cfg| {
        cfg.http.max_connections = 2;
        cfg.http.idle_timeout_seconds = 1;
    })
    .await;
    // The test client's kept-alive login connection is closed once idle for a second.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let first = connect(&srv).await;
    let _second = connect(&srv).await;
    let mut third = connect(&srv).await;
    third.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(1500), third.read(&mut buf)).await;
    assert!(early.is_err(), "the third connection was served while two others held the limit: {early:?}");
    drop(first);
    read_health(&mut third, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn log_raw_streams_exactly_the_lines_of_the_paged_log() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    // More lines than one page of log/raw, some empty, some not ASCII, on both streams.
    let script =
        r#"for i in $(seq 1 2600); do echo "line $i: ünïcødé ✓"; done; echo; echo "to stderr" >&2; printf 'last'"#;
    let id = c.submit(pid, c.template(pid, json!({"script": script})).await).await;
    let task = c.wait_final(pid, id, Duration::from_secs(60)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let texts = c.log_texts(pid, id).await;
    assert!(texts.len() > 2600, "{}", texts.len());
    let want: String = texts.iter().map(|t| format!("{t}\n")).collect();

    let raw = reqwest::Client::new()
        .get(format!("{}/api/v1/projects/{pid}/tasks/{id}/log/raw", srv.url))
        .header("authorization", format!("Bearer {}", token(c).await))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    assert_eq!(raw.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(raw.headers().get("content-length").is_none(), "streamed bodies have no length: {:?}", raw.headers());
    assert_eq!(raw.headers()["transfer-encoding"], "chunked");
    let body = raw.bytes().await.unwrap();
    assert!(body == want.as_bytes(), "log/raw differs from the paged log ({} vs {} bytes)", body.len(), want.len());
}

/// A fresh API token of the admin.
async fn token(c: &baton_testkit::Client) -> String {
    c.post("/api/v1/tokens", json!({"name": "raw"})).await.expect(201)["token"].as_str().unwrap().to_owned()
}
