//! Clients of the live-event API (API.md's WebSocket section and the `log/stream` route) for
//! tests on one node and across a cluster: a WebSocket client that reports a broken connection
//! as a value (a cluster test kills the node under it), and an SSE reader that returns what it
//! got when its stream ends or breaks, so a test can resume elsewhere from the last event.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Client;

/// How long an SSE reader waits for the next bytes (the server writes a comment every 15 s)
/// before it gives the stream up.
const SSE_SILENCE: Duration = Duration::from_secs(30);

/// A WebSocket connection to `/api/v1/ws`.
pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `X-Baton-Node` of the upgrade's answer: the node that holds this connection.
    pub node: Option<String>,
}

/// How a test connects.
pub struct Connect<'a> {
    /// `http://host:port` of a node or a load balancer.
    pub base: &'a str,
    pub token: Option<&'a str>,
    pub origin: Option<&'a str>,
}

/// What one read of a [`Ws`] brought.
#[derive(Debug)]
pub enum Read {
    /// A JSON message (pings are answered by the library and never show).
    Message(Value),
    /// Nothing within the wait.
    Quiet,
    /// The server closed the connection or it broke (say, its node died).
    Closed(String),
}

impl Ws {
    /// Connects with a bearer token. `Err` with the HTTP status when the upgrade is refused, or
    /// 0 when no server answered at all (a dead node).
    pub async fn connect(c: Connect<'_>) -> Result<Ws, u16> {
        let url = format!("{}/api/v1/ws", c.base.replacen("http", "ws", 1));
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = c.token {
            req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if let Some(o) = c.origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((socket, resp)) => {
                let node = resp.headers().get("x-baton-node").and_then(|v| v.to_str().ok()).map(str::to_owned);
                Ok(Ws { socket, node })
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(_) => Err(0),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.socket.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    pub async fn subscribe(&mut self, topics: &[&str], resume: Value) {
        self.send(json!({"op": "subscribe", "topics": topics, "resume": resume})).await;
    }

    /// Waits up to `wait` for the next JSON message.
    pub async fn read(&mut self, wait: Duration) -> Read {
        loop {
            let Ok(m) = tokio::time::timeout(wait, self.socket.next()).await else { return Read::Quiet };
            match m {
                Some(Ok(Message::Text(t))) => return Read::Message(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => return Read::Closed(format!("closed by the server: {frame:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Read::Closed(e.to_string()),
                None => return Read::Closed("the connection ended".into()),
            }
        }
    }

    /// The next JSON message, `None` after `wait` or when the connection ends.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        match self.read(wait).await {
            Read::Message(v) => Some(v),
            Read::Quiet | Read::Closed(_) => None,
        }
    }

    /// The next JSON message; panics after 20 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(20)).await.expect("an event within 20 s")
    }

    /// The next message that is not the answer to a subscription.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let v = self.next().await;
            if v["op"] != "subscribed" {
                return v;
            }
        }
    }

    /// Closes the connection as a client that goes away does.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// One event of an SSE stream: its `id`, `event` and `data`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads `url` as an event stream, sending `last_event_id`, until the stream ends or breaks, 30 s
/// pass without a byte, or `max` frames came; panics unless the answer is 200.
pub async fn read(
    url: &str,
    token: &str,
    last_event_id: Option<i64>,
    max: usize,
) -> (reqwest::header::HeaderMap, Vec<Frame>) {
    try_read(url, token, last_event_id, max).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`read`], with `Err` when no server answered or the answer was not 200.
pub async fn try_read(
    url: &str,
    token: &str,
    last_event_id: Option<i64>,
    max: usize,
) -> Result<(reqwest::header::HeaderMap, Vec<Frame>), String> {
    let mut frames = Vec::new();
    let headers = try_read_each(url, token, last_event_id, max, |f| frames.push(f)).await?;
    Ok((headers, frames))
}

/// Like [`try_read`], handing each frame to `each` as it arrives (a test that watches a
/// stream's progress, or when its lines came); returns the answer's headers.
pub async fn try_read_each(
    url: &str,
    token: &str,
    last_event_id: Option<i64>,
    max: usize,
    mut each: impl FnMut(Frame),
) -> Result<reqwest::header::HeaderMap, String> {
    let mut req = reqwest::Client::new().get(url).bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let mut resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("GET {url}: {}", resp.status()));
    }
    let (mut buf, mut n, mut cur) = (String::new(), 0, Frame::default());
    while n < max {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(SSE_SILENCE, resp.chunk()).await else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        // Only whole frames count: a stream that breaks in the middle of one resumes before it.
        while let Some(nl) = buf.find('\n') {
            let line: String = buf.drain(..=nl).collect();
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if cur != Frame::default() && n < max {
                    n += 1;
                    each(std::mem::take(&mut cur));
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
    Ok(resp.headers().clone())
}

impl Frame {
    /// The (seq, text) of a line's frame, `None` for `event: end`. Panics unless the frame's
    /// `id` is the line's sequence number.
    pub fn line(&self) -> Option<(i64, String)> {
        if self.event.as_deref() == Some("end") {
            return None;
        }
        let v: Value = serde_json::from_str(&self.data).unwrap();
        assert_eq!(self.id.as_deref(), Some(v["seq"].to_string().as_str()), "id is the sequence: {self:?}");
        Some((v["seq"].as_i64().unwrap(), v["text"].as_str().unwrap().to_owned()))
    }
}

/// The (seq, text) lines of `frames`, and whether they ended with `event: end`.
pub fn lines(frames: &[Frame]) -> (Vec<(i64, String)>, bool) {
    let mut out = Vec::new();
    for f in frames {
        match f.line() {
            Some(l) => out.push(l),
            None => return (out, true),
        }
    }
    (out, false)
}

/// The (seq, text) lines of a stored task, through the paged log API: what every client of its
/// events must have received.
pub async fn stored(c: &Client, pid: i64, id: i64) -> Vec<(i64, String)> {
    c.log_lines(pid, id)
        .await
        .iter()
        .map(|l| (l["seq"].as_i64().unwrap(), l["text"].as_str().unwrap().to_owned()))
        .collect()
}

/// A new API token of the user `c` acts for (event clients authenticate with a bearer token).
pub async fn token(c: &Client) -> String {
    c.post("/api/v1/tokens", json!({"name": "events"})).await.expect(201)["token"].as_str().unwrap().to_owned()
}
