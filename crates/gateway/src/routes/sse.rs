//! `GET /api/v1/projects/{pid}/tasks/{id}/log/stream`: a task's log as server-sent events
//! (API.md): `id: <seq>` and `data: {seq, time, stream, text}` per line, `event: end` once the
//! task has finished and every line was sent, a comment every `http.sse_ping_seconds` (15 s), resumable after
//! `Last-Event-ID` or `?after=`. The same follower as the WebSocket's feeds it; a client that
//! reads slowly only slows its own follower, which reads SQL from where it is when it falls
//! behind, so there is never a gap to resync.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event as Frame, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::events::follow::{Resume, follow};
use crate::events::topic::Topic;
use crate::events::{Event, Gone, Sink};
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::params::TaskPath;
use crate::openapi::schemas::LogEvent;

/// Frames written ahead of a slow reader.
const AHEAD: usize = 64;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this sequence number (`Last-Event-ID` wins).
    after: Option<i64>,
}

/// Frames of one response, written as the follower delivers, and counted as events delivered.
struct Frames(mpsc::Sender<std::result::Result<Frame, Infallible>>, baton_metrics::Metrics);

impl Frames {
    async fn send(&self, frame: Frame) -> std::result::Result<(), Gone> {
        self.0.send(Ok(frame)).await.map_err(|_| Gone)?;
        self.1.events_delivered(baton_metrics::Transport::Sse, 1);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Sink for Frames {
    async fn deliver(&self, _topic: &str, event: Event) -> std::result::Result<(), Gone> {
        match event {
            Event::Log { lines, .. } => {
                for line in lines {
                    let id = line["seq"].as_i64().unwrap_or_default().to_string();
                    self.send(Frame::default().id(id).data(line.to_string())).await?;
                }
                Ok(())
            }
            Event::LogEnd => {
                self.send(Frame::default().event("end").data("{}")).await?;
                // The response ends with the stream: nothing follows the end.
                Err(Gone)
            }
            _ => Ok(()),
        }
    }
}

/// A task's log as server-sent events.
///
/// `id: <seq>` and `data: {seq, time, stream, text}` per line, then `event: end` once the task
/// has finished and every line was sent. A comment every 15 s keeps proxies from closing the
/// stream.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/tasks/{id}/log/stream",
    operation_id = "stream_log",
    tag = "tasks",
    params(
        TaskPath,
        StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this line (a reconnecting client sends it)"),
    ),
    responses((status = 200, description = "the log's lines as they come, until the task's end (the schema is \
        each event's)", body = LogEvent, content_type = "text/event-stream"))
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, id)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    state.tables.project_task(pid, id).await?;
    let last_event = match headers.get("last-event-id").map(|v| v.to_str().map(str::parse::<i64>)) {
        Some(Ok(Ok(n))) => Some(n),
        Some(_) => return Err(Error::field("Last-Event-ID", "must be the sequence number of a line")),
        None => None,
    };
    let after = last_event.or(q.after).unwrap_or(0).max(0);
    let state_ping = state.opts.sse_ping;
    let (tx, rx) = mpsc::channel(AHEAD);
    let stop = state.closing.child_token();
    // A client that goes away ends its follower, also while the log is quiet.
    let (gone, ending) = (tx.clone(), stop.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = gone.closed() => ending.cancel(),
            _ = ending.cancelled() => {}
        }
    });
    let sink = Frames(tx, state.metrics.clone());
    tokio::spawn(async move {
        follow(state, Topic::TaskLog(id), Resume(Some(after)), &sink, stop.clone()).await;
        // Ends the watcher above, so that the last sender goes and the response ends.
        stop.cancel();
    });
    let sse = Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(state_ping).text("ping"));
    let mut resp = sse.into_response();
    // Proxies that buffer responses (nginx) must pass every line on at once.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp.headers_mut().insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(resp)
}
