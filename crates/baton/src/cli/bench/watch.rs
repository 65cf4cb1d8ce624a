//! The bench's view of its tasks, through the event WebSocket like any client: the project's task
//! events say when each task ends, and each task's log events say when its lines reach a client
//! (`stored_at` of live lines → arrival: the event delivery latency).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What the watcher learned of one task.
pub struct Seen {
    pub t0: SystemTime,
    pub task: Value,
    /// When its first log line reached the bench.
    pub first_line: Option<SystemTime>,
}

#[derive(Default)]
struct State {
    /// Submitted, not finished: when, and the slot it holds.
    pending: HashMap<i64, (SystemTime, Option<OwnedSemaphorePermit>)>,
    /// Finished before its submission was recorded (the events can be that quick).
    early: HashMap<i64, Value>,
    first_line: HashMap<i64, SystemTime>,
    finished: BTreeMap<i64, Seen>,
    /// Milliseconds from a live line's storing to its arrival here.
    delivery_ms: Vec<f64>,
}

/// Follows the bench's project and tasks over one WebSocket.
#[derive(Clone)]
pub struct Watch {
    state: Arc<Mutex<State>>,
    out: mpsc::UnboundedSender<Value>,
    done: Arc<Notify>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// Whether each task's log is followed too.
    logs: bool,
}

impl Watch {
    /// Connects to `base` with `token` and subscribes to the project `pid` (and, with `logs`,
    /// to each submitted task's log).
    pub async fn start(base: &str, token: &str, pid: i64, logs: bool) -> anyhow::Result<Watch> {
        let url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
        let mut req = url.into_client_request()?;
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(req).await.context("cannot open the event WebSocket")?;
        let (mut tx, mut rx) = socket.split();
        let (out, mut queue) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            while let Some(v) = queue.recv().await {
                if tx.send(Message::Text(v.to_string().into())).await.is_err() {
                    return;
                }
            }
        });
        let watch = Watch { state: Arc::default(), out, done: Arc::new(Notify::new()), closed: Arc::default(), logs };
        watch.send(json!({"op": "subscribe", "topics": [format!("project:{pid}")]}));
        let w = watch.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                if let Message::Text(t) = m
                    && let Ok(v) = serde_json::from_str::<Value>(&t)
                {
                    w.on_message(pid, v);
                }
            }
            w.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            w.done.notify_one();
        });
        Ok(watch)
    }

    fn send(&self, v: Value) {
        let _ = self.out.send(v);
    }

    /// Records a submitted task; it holds `permit` until it ends.
    pub fn submitted(&self, id: i64, t0: SystemTime, permit: OwnedSemaphorePermit) {
        if self.logs {
            self.send(json!({"op": "subscribe", "topics": [format!("task:{id}:log")]}));
        }
        let mut s = self.lock();
        match s.early.remove(&id) {
            Some(task) => {
                let first_line = s.first_line.remove(&id);
                s.finished.insert(id, Seen { t0, task, first_line });
            }
            None => {
                s.pending.insert(id, (t0, Some(permit)));
            }
        }
        drop(s);
        self.done.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_message(&self, pid: i64, v: Value) {
        let now = SystemTime::now();
        if v["op"] == "resync" {
            // Too slow to keep up: start the topics again (the project from a minute back).
            let since = Utc::now().timestamp_millis() - 60_000;
            for topic in v["topics"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let resume = if topic.starts_with("project:") { json!({ topic: since }) } else { json!({}) };
                self.send(json!({"op": "subscribe", "topics": [topic], "resume": resume}));
            }
            return;
        }
        let topic = v["topic"].as_str().unwrap_or_default();
        match v["type"].as_str() {
            Some("task.created" | "task.updated") if topic == format!("project:{pid}") => self.on_task(&v["data"]),
            Some("task.log") => {
                let Some(id) = task_of(topic) else { return };
                let mut s = self.lock();
                s.first_line.entry(id).or_insert(now);
                if let Some(stored) = v["data"]["stored_at"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
                    let ms = now.duration_since(stored.into()).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                    s.delivery_ms.push(ms);
                }
            }
            Some("task.log.end") => self.send(json!({"op": "unsubscribe", "topics": [topic]})),
            _ => {}
        }
    }

    fn on_task(&self, task: &Value) {
        if matches!(task["status"].as_str(), Some("queued" | "assigned" | "running") | None) {
            return;
        }
        let Some(id) = task["id"].as_i64() else { return };
        let mut s = self.lock();
        if s.finished.contains_key(&id) {
            return;
        }
        match s.pending.remove(&id) {
            Some((t0, permit)) => {
                drop(permit);
                let first_line = s.first_line.get(&id).copied();
                s.finished.insert(id, Seen { t0, task: task.clone(), first_line });
            }
            None => {
                s.early.insert(id, task.clone());
            }
        }
        drop(s);
        self.done.notify_one();
    }

    /// How many tasks have finished.
    pub fn finished(&self) -> usize {
        self.lock().finished.len()
    }

    /// Waits until `total` tasks have finished.
    pub async fn wait(&self, total: usize) -> anyhow::Result<()> {
        loop {
            let notified = self.done.notified();
            if self.lock().finished.len() >= total {
                return Ok(());
            }
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                bail!("the event WebSocket closed before every task finished");
            }
            notified.await;
        }
    }

    /// What was seen of every task, and the delivery latencies (ms).
    pub fn results(&self) -> (BTreeMap<i64, Seen>, Vec<f64>) {
        let mut s = self.lock();
        let mut finished = std::mem::take(&mut s.finished);
        for (id, seen) in finished.iter_mut() {
            if seen.first_line.is_none() {
                seen.first_line = s.first_line.get(id).copied();
            }
        }
        (finished, std::mem::take(&mut s.delivery_ms))
    }
}

fn task_of(topic: &str) -> Option<i64> {
    topic.strip_prefix("task:")?.strip_suffix(":log")?.parse().ok()
}
