//! `GET /api/v1/ws`: live events over a WebSocket (API.md). The client authenticates like the API
//! (cookie, bearer header, or `?token=`), and a browser's `Origin` must be this server's own or
//! one of `http.allowed_origins` — both are checked before the upgrade. Each subscription is a
//! follower (`events/follow.rs`) writing into the connection's bounded queue
//! (`events/outbox.rs`); the server pings every `http.ws_ping_seconds` (20 s) and closes a client
//! silent for three pings, or one that takes nothing it is sent for as long, and
//! re-checks every subscription when a membership changes (and every half minute), ending those
//! the caller may no longer read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::auth::{Caller, Credential};
use crate::error::{Error, ErrorBody, Result};
use crate::events::follow::{Resume, follow};
use crate::events::outbox::Outbox;
use crate::events::topic::{self, Topic};
use crate::events::{Event, Gone, Sink, Turn};
use crate::extract::ApiQuery;

/// A client is closed after this many pings without a word from it.
const SILENT_PINGS: u32 = 3;
const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// Bytes of events queued for one client before it is told to resync.
const QUEUE: usize = 4 << 20;
/// Subscriptions one connection may hold.
const MAX_TOPICS: usize = 256;
/// The coordination topic on which membership changes are announced.
pub const MEMBERS: &str = "members";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// An API token, for clients that cannot set headers.
    token: Option<String>,
}

/// Live events over a WebSocket (an RFC 6455 upgrade).
///
/// Once upgraded, the client subscribes to topics (`project:<pid>`, `task:<id>:log`, `runners`,
/// `cluster`) with
/// `{"op":"subscribe","topics":[...],"resume":{...}}` and receives their events as JSON text
/// messages (API.md, "WebSocket").
#[utoipa::path(
    get,
    path = "/api/v1/ws",
    operation_id = "events",
    tag = "events",
    params(
        WsQuery,
        // Exactly what the upgrade checks: anything else is a 400.
        ("Upgrade" = String, Header, description = "`websocket`, in any case",
            pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
        ("Connection" = String, Header, description = "names `Upgrade`, in any case",
            pattern = "[Uu][Pp][Gg][Rr][Aa][Dd][Ee]"),
        ("Sec-WebSocket-Key" = String, Header, description = "the client's random key (RFC 6455)"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`", pattern = "^13$"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket carrying events"),
        (status = 400, description = "not a WebSocket upgrade", body = ErrorBody),
        (status = 403, description = "a page of an origin that may not open this server's event stream",
            body = ErrorBody),
    )
)]
pub async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let credential = match Credential::of(&headers) {
        Some(c) => c,
        None => Credential::Token(q.token.ok_or_else(Error::unauthenticated)?),
    };
    let caller = credential.resolve(&state).await?.ok_or_else(Error::unauthenticated)?;
    check_origin(&state, &headers)?;
    let upgrade = upgrade.map_err(|e| {
        Error::field("Upgrade", format!("this route speaks WebSocket only; connect with a WebSocket client ({e})"))
    })?;
    Ok(upgrade.on_upgrade(move |socket| Connection::new(state, credential, caller).run(socket)))
}

/// A browser's page may open the socket only from this server's own origin or an allowed one.
/// Clients that are not browsers send no `Origin`.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<()> {
    crate::origin::origin_allowed(headers, &state.opts.allowed_origins).map_err(|origin| {
        Error::forbidden(format!(
            "origin {origin} may not open this server's event stream; list it in http.allowed_origins"
        ))
    })
}

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Op {
    Subscribe {
        topics: Vec<String>,
        #[serde(default)]
        resume: HashMap<String, i64>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
}

/// A client's queue as the sink of one subscription's follower.
struct Queue {
    outbox: Arc<Outbox>,
    generation: u64,
}

#[async_trait::async_trait]
impl Sink for Queue {
    async fn deliver(&self, topic: &str, event: Event) -> std::result::Result<(), Gone> {
        self.outbox.event(topic, self.generation, message(topic, event))
    }

    async fn deliver_read(&self, topic: &str, event: Event) -> std::result::Result<(), Gone> {
        self.outbox.event_when_room(topic, self.generation, message(topic, event)).await
    }

    async fn turn(&self) -> std::result::Result<Turn, Gone> {
        self.outbox.turn().await.map(Turn::held)
    }
}

/// An event as the client receives it, as JSON text.
fn message(topic: &str, event: Event) -> String {
    let message = match event {
        Event::Log { lines, last, stored_at } => {
            let mut data = Map::new();
            data.insert("lines".into(), Value::Array(lines));
            // Lines that arrived live say when they were stored, so clients can measure delivery.
            if let Some(t) = stored_at {
                data.insert("stored_at".into(), json!(crate::model::time(t)));
            }
            envelope(topic, "task.log", Some(last), Some(Value::Object(data)))
        }
        Event::LogEnd => envelope(topic, "task.log.end", None, None),
        Event::Task { task, version, created } => {
            let kind = if created { "task.created" } else { "task.updated" };
            let raw = Raw { data: &task, seq: version, topic, kind };
            return serde_json::to_string(&raw).unwrap_or_default();
        }
        Event::Runner(v) => envelope(topic, "runner.updated", None, Some(v)),
        Event::Node(v) => envelope(topic, "node.updated", None, Some(v)),
    };
    message.to_string()
}

/// An envelope around data that is JSON text already (a task): written as [`envelope`] writes
/// one, keys in the same order, without parsing the data again.
#[derive(Serialize)]
struct Raw<'a> {
    data: &'a RawValue,
    seq: i64,
    topic: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// An event as a WebSocket client receives it. Built by moving `data` in: `json!` would copy the
/// whole tree (it serializes its arguments by reference), for every event of every client.
fn envelope(topic: &str, kind: &str, seq: Option<i64>, data: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("topic".into(), Value::from(topic));
    m.insert("type".into(), Value::from(kind));
    if let Some(seq) = seq {
        m.insert("seq".into(), Value::from(seq));
    }
    if let Some(data) = data {
        m.insert("data".into(), data);
    }
    Value::Object(m)
}

struct Connection {
    state: AppState,
    credential: Credential,
    caller: Caller,
    outbox: Arc<Outbox>,
    /// The subscriptions, by topic name, each with its follower's stop.
    subs: HashMap<String, (Topic, CancellationToken)>,
    stop: CancellationToken,
}

impl Connection {
    fn new(state: AppState, credential: Credential, caller: Caller) -> Connection {
        let stop = state.closing.child_token();
        Connection { state, credential, caller, outbox: Arc::new(Outbox::new(QUEUE)), subs: HashMap::new(), stop }
    }

    async fn run(mut self, socket: WebSocket) {
        // Counted in `baton_ws_connections` until this returns.
        let _open = self.state.metrics.ws_connection();
        let (mut tx, mut rx) = socket.split();
        let mut members = self.state.feeds.subscribe(MEMBERS);
        let every = self.state.opts.ws_ping;
        let mut ping = tokio::time::interval(every);
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        let mut heard = Instant::now();
        let closing = loop {
            let outbox = self.outbox.clone();
            tokio::select! {
                _ = self.stop.cancelled() => break Some("the server is stopping"),
                m = rx.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        heard = Instant::now();
                        self.on_text(&t).await;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => heard = Instant::now(),
                },
                _ = outbox.ready() => {
                    // While a write waits for the client to read, nothing else here runs — not
                    // the pings that would find it silent: a client that takes nothing for as
                    // long is closed all the same (without a close frame, which could not go out).
                    match tokio::time::timeout(every * SILENT_PINGS, self.flush(&mut tx)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => break None,
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > every * SILENT_PINGS {
                        break Some("silent for three pings");
                    }
                    if tx.send(Message::Ping(Default::default())).await.is_err() {
                        break None;
                    }
                }
                _ = members.next() => self.recheck().await,
                _ = recheck.tick() => self.recheck().await,
            }
        };
        self.outbox.close();
        for (_, stop) in self.subs.values() {
            stop.cancel();
        }
        if let Some(reason) = closing {
            let frame = CloseFrame { code: axum::extract::ws::close_code::AWAY, reason: Utf8Bytes::from(reason) };
            let _ = tx.send(Message::Close(Some(frame))).await;
        }
    }

    /// Sends what is queued; topics whose events were dropped end and are to be resynced.
    async fn flush(
        &mut self,
        tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    ) -> std::result::Result<(), axum::Error> {
        // Followers already runnable on this worker queue their events first (the first one's
        // notify would otherwise run this before them): they share this write.
        tokio::task::yield_now().await;
        let batch = self.outbox.take();
        if !batch.resync.is_empty() {
            for t in &batch.resync {
                if let Some((_, stop)) = self.subs.remove(t) {
                    stop.cancel();
                }
            }
            tx.feed(text(json!({"op": "resync", "topics": batch.resync}))).await?;
        }
        // Written together and flushed once: one write for a burst of events, not one each.
        for m in batch.messages {
            tx.feed(Message::Text(Utf8Bytes::from(m))).await?;
        }
        tx.flush().await?;
        self.state.metrics.events_delivered(baton_metrics::Transport::WebSocket, batch.events as u64);
        Ok(())
    }

    async fn on_text(&mut self, t: &str) {
        match serde_json::from_str::<Op>(t) {
            Ok(Op::Subscribe { topics, resume }) => self.subscribe(topics, resume).await,
            Ok(Op::Unsubscribe { topics }) => {
                for t in &topics {
                    self.outbox.unsubscribe(t);
                    if let Some((_, stop)) = self.subs.remove(t) {
                        stop.cancel();
                    }
                }
                self.outbox.answer(json!({"op": "unsubscribed", "topics": topics}));
            }
            Err(e) => {
                let error =
                    json!({"code": "invalid_input", "message": format!("not a message this server understands: {e}")});
                self.outbox.answer(json!({"op": "error", "error": error}));
            }
        }
    }

    async fn subscribe(&mut self, topics: Vec<String>, resume: HashMap<String, i64>) {
        let mut done = Vec::new();
        for name in topics {
            if self.subs.contains_key(&name) {
                done.push(name);
                continue;
            }
            match self.admit(&name).await {
                Ok(t) => {
                    let stop = self.stop.child_token();
                    let generation = self.outbox.subscribe(&name);
                    let (state, sink) = (self.state.clone(), Queue { outbox: self.outbox.clone(), generation });
                    let (r, s) = (Resume(resume.get(&name).copied()), stop.clone());
                    tokio::spawn(async move { follow(state, t, r, &sink, s).await });
                    self.subs.insert(name.clone(), (t, stop));
                    done.push(name);
                }
                Err(e) => self.refuse(&name, &e),
            }
        }
        self.outbox.answer(json!({"op": "subscribed", "topics": done}));
    }

    /// The topic named `name` if the caller may read it now.
    async fn admit(&self, name: &str) -> Result<Topic> {
        let t = Topic::parse(name).ok_or_else(|| {
            Error::field("topics", format!("{name:?} is not a topic (project:<id>, task:<id>:log, runners, cluster)"))
        })?;
        if self.subs.len() >= MAX_TOPICS {
            return Err(Error::field("topics", format!("at most {MAX_TOPICS} subscriptions per connection")));
        }
        topic::check(&self.state, &self.caller, t).await?;
        Ok(t)
    }

    fn refuse(&self, name: &str, e: &Error) {
        let error = json!({"code": e.code.as_str(), "message": e.message});
        self.outbox.answer(json!({"op": "error", "topic": name, "error": error}));
    }

    /// Checks the credential and every subscription again; what the caller may no longer read
    /// ends with an error.
    async fn recheck(&mut self) {
        let caller = match self.credential.resolve_afresh(&self.state).await {
            Ok(Some(c)) => c,
            // No longer anybody: nothing may be read.
            Ok(None) => {
                let topics: Vec<String> = self.subs.keys().cloned().collect();
                for name in topics {
                    self.end(&name, &Error::unauthenticated());
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot re-check a WebSocket's rights now; keeping them");
                return;
            }
        };
        self.caller = caller;
        let subs: Vec<(String, Topic)> = self.subs.iter().map(|(n, (t, _))| (n.clone(), *t)).collect();
        for (name, t) in subs {
            match topic::check(&self.state, &self.caller, t).await {
                Ok(_) => {}
                Err(e) if matches!(e.code.http_status(), 403 | 404 | 401) => self.end(&name, &e),
                Err(_) => {}
            }
        }
    }

    fn end(&mut self, name: &str, e: &Error) {
        self.outbox.unsubscribe(name);
        if let Some((_, stop)) = self.subs.remove(name) {
            stop.cancel();
            self.refuse(name, e);
        }
    }
}

fn text(v: Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}
