//! The SSE log stream: `id:` is each line's sequence number, a reconnect resumes after
//! `Last-Event-ID` (or `?after=`), `event: end` closes a finished task's stream, and proxies are
//! told not to buffer it.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::{stored, token};

/// One event of a stream: its `id`, `event` and `data`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads `url` as an event stream until it ends (or `max` frames), with `last_event_id`.
pub async fn read(
    url: &str,
    token: &str,
    last_event_id: Option<i64>,
    max: usize,
) -> (reqwest::header::HeaderMap, Vec<Frame>) {
    let mut req = reqwest::Client::new().get(url).bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let (mut buf, mut frames, mut cur) = (String::new(), Vec::new(), Frame::default());
    while frames.len() < max {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(nl) = buf.find('\n') {
            let line: String = buf.drain(..=nl).collect();
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if cur != Frame::default() {
                    frames.push(std::mem::take(&mut cur));
                }
            } else if let Some(v) = line.strip_prefix("id: ") {
                cur.id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("event: ") {
                cur.event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                cur.data.push_str(v);
            }
        }
    }
    (headers, frames)
}

/// The lines of `frames`, and whether they ended with `event: end`.
pub fn lines(frames: &[Frame]) -> (Vec<(i64, String)>, bool) {
    let mut out = Vec::new();
    for f in frames {
        if f.event.as_deref() == Some("end") {
            return (out, true);
        }
        let v: Value = serde_json::from_str(&f.data).unwrap();
        assert_eq!(f.id.as_deref(), Some(v["seq"].to_string().as_str()), "id is the sequence: {f:?}");
        out.push((v["seq"].as_i64().unwrap(), v["text"].as_str().unwrap().to_owned()));
    }
    (out, false)
}

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
