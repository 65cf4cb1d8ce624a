//! A WebSocket client of the event API, for tests (and the pieces they share).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a test connects.
pub struct Connect<'a> {
    /// `http://host:port` of the server.
    pub base: &'a str,
    pub token: Option<&'a str>,
    pub origin: Option<&'a str>,
}

impl Ws {
    /// Connects with a bearer token; `Err` with the HTTP status when the upgrade is refused.
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
            Ok((socket, _)) => Ok(Ws { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("cannot connect the WebSocket: {e}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.socket.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    pub async fn subscribe(&mut self, topics: &[&str], resume: Value) {
        self.send(json!({"op": "subscribe", "topics": topics, "resume": resume})).await;
    }

    /// The next JSON message (pings are answered by the library), `None` after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let m = tokio::time::timeout(wait, self.socket.next()).await.ok()??;
            match m.expect("the socket broke") {
                Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
                Message::Close(_) => return None,
                _ => {}
            }
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
}

/// Log texts of a stored task, through the paged log API.
pub async fn stored(c: &baton_testkit::Client, pid: i64, id: i64) -> Vec<(i64, String)> {
    c.log_lines(pid, id)
        .await
        .iter()
        .map(|l| (l["seq"].as_i64().unwrap(), l["text"].as_str().unwrap().to_owned()))
        .collect()
}

/// An API token of the admin client `c`.
pub async fn token(c: &baton_testkit::Client) -> String {
    c.post("/api/v1/tokens", json!({"name": "events"})).await.expect(201)["token"].as_str().unwrap().to_owned()
}
