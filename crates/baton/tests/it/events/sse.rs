//! The SSE log stream: `id:` is each line's sequence number, a reconnect resumes after
//! `Last-Event-ID` (or `?after=`), `event: end` closes a finished task's stream, and proxies are
//! told not to buffer it.

use baton_testkit::events::{lines, read, stored, token};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_follows_a_task_and_resumes_after_the_last_event() {
    let srv = baton_testkit::TestServer::start().await;
    let c = &srv.client;
    let t = token(c).await;
    let pid = c.project().await;
    let script = "for i in $(seq 1 1500); do echo line-$i; if [ $((i % 100)) = 0 ]; then sleep 0.05; fi; done";
    let tid = c.template(pid, json!({"script": script})).await;
    let id = c.submit(pid, tid).await;
    let url = format!("{}/api/v1/projects/{pid}/tasks/{id}/log/stream", srv.url);
    // Part of it live, then a new connection from the last event seen.
    let (headers, first) = read(&url, &t, None, 700).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-accel-buffering"], "no");
    let (mut got, ended) = lines(&first);
    assert!(!ended);
    let (_, rest) = read(&url, &t, got.last().map(|l| l.0), usize::MAX).await;
    let (more, ended) = lines(&rest);
    assert!(ended, "the stream of a finished task ends with event: end");
    got.extend(more);
    assert_eq!(got, stored(c, pid, id).await, "every line once, in order, across the reconnect");
    // ?after= does the same for clients that cannot set headers.
    let (_, tail) = read(&format!("{url}?after=1490"), &t, None, usize::MAX).await;
    assert_eq!(lines(&tail).0, got[1490..]);
    // A task of a project the caller cannot see does not exist for them.
    let r = c.get(&format!("/api/v1/projects/{pid}/tasks/{}/log/stream", id + 1000)).await;
    assert_eq!(r.status.as_u16(), 404);
}

/// A quiet stream carries a comment now and then, so proxies keep it open.
#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_stream_carries_comments() {
    let srv = baton_testkit::TestServer::start_with_no_runner(|cfg| cfg.http.sse_ping_seconds = 1).await;
    let c = &srv.client;
    let t = token(c).await;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "true"})).await;
    // No runner: the task stays queued and its log quiet.
    let id = c.submit(pid, tid).await;
    let url = format!("{}/api/v1/projects/{pid}/tasks/{id}/log/stream", srv.url);
    let mut resp = reqwest::Client::new().get(url).bearer_auth(&t).send().await.unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.contains(": ping") && std::time::Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(std::time::Duration::from_secs(1), resp.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains(": ping"), "a comment within a few seconds: {seen:?}");
}
