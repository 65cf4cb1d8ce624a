//! The event clients of the cluster tests. Each runs as a tokio task that follows the workload's
//! tasks to their end, reconnecting from its resume points when it moves on purpose or its
//! connection breaks (to the next of its bases: a node or HAProxy), and keeps what it received
//! where the test can read it, also while it runs: a test times its disruptions by a client's
//! progress, and a client that never finishes is reported with what it had.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use baton_testkit::events::{Connect, Read, Ws, try_read_each};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// How long a client waits for an event before it calls the stream stuck. Tasks print every
/// fraction of a second, and while coordination is down followers read SQL every second.
const STUCK: Duration = Duration::from_secs(30);
/// How long a client that leaves on purpose stays away: its tasks go on printing meanwhile, so
/// resuming replays stored lines before the live ones.
const AWAY: Duration = Duration::from_secs(1);

/// Where a client connects.
#[derive(Debug, Clone)]
pub struct Route {
    /// The first base, then in turn the one after each move or broken connection.
    pub bases: Vec<String>,
    /// Leaves after this many lines (events, for a project client) and resumes at the next base.
    pub move_after: Option<usize>,
}

impl Route {
    pub fn stay(base: &str) -> Route {
        Route { bases: vec![base.to_owned()], move_after: None }
    }
}

/// What a log client received.
#[derive(Debug, Default)]
pub struct Logs {
    /// (seq, text) of every line received, per task, in order of arrival.
    pub lines: BTreeMap<i64, Vec<(i64, String)>>,
    /// Tasks whose end came (`task.log.end`, `event: end`).
    pub ended: BTreeSet<i64>,
    /// When the first line of each task came.
    pub first: BTreeMap<i64, SystemTime>,
    /// `resync` messages received.
    pub resyncs: usize,
    /// Connections that broke or could not be opened, with why.
    pub broken: Vec<String>,
    /// The node of each connection (`X-Baton-Node`), in order.
    pub nodes: Vec<String>,
    /// The same for each SSE stream (one per task).
    pub streams: BTreeMap<i64, Vec<String>>,
}

impl Logs {
    fn add(&mut self, task: i64, new: Vec<(i64, String)>) {
        if !new.is_empty() {
            self.first.entry(task).or_insert_with(SystemTime::now);
        }
        self.lines.entry(task).or_default().extend(new);
    }

    /// Takes in a `task.log` or `task.log.end` event; returns the number of lines it brought, and
    /// whether every one of `tasks` has ended now.
    fn take(&mut self, who: &str, v: &Value, tasks: &[i64]) -> (usize, bool) {
        let task = task_of(v["topic"].as_str().unwrap_or_default());
        match v["type"].as_str() {
            Some("task.log") => {
                let new: Vec<(i64, String)> = v["data"]["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| (l["seq"].as_i64().unwrap(), l["text"].as_str().unwrap().to_owned()))
                    .collect();
                assert_eq!(v["seq"].as_i64(), new.last().map(|l| l.0), "{who}: seq is the last line's");
                let n = new.len();
                self.add(task, new);
                (n, false)
            }
            Some("task.log.end") => {
                self.ended.insert(task);
                (0, tasks.iter().all(|t| self.ended.contains(t)))
            }
            _ => panic!("{who}: unexpected event {v}"),
        }
    }

    /// The resume points of the tasks not ended yet: the last line of each.
    fn resume(&self, topics: &[String]) -> Value {
        let mut resume = serde_json::Map::new();
        for t in topics {
            if let Some(seq) = self.lines.get(&task_of(t)).and_then(|l| l.last()).map(|l| l.0) {
                resume.insert(t.clone(), json!(seq));
            }
        }
        Value::Object(resume)
    }
}

/// What a project client received.
#[derive(Debug, Default)]
pub struct Changes {
    /// The highest version of each task received, as the event carried it.
    pub latest: BTreeMap<i64, Value>,
    /// Events whose version was not above the previous one of the same task on one connection.
    pub regressions: Vec<String>,
    pub broken: Vec<String>,
    pub nodes: Vec<String>,
    pub events: usize,
}

impl Changes {
    /// Takes in a task event; `versions` are the highest of each task on this connection.
    /// Returns whether every one of `tasks` is final now.
    fn take(&mut self, who: &str, v: &Value, versions: &mut BTreeMap<i64, i64>, tasks: &[i64]) -> bool {
        let (id, version) = (v["data"]["id"].as_i64().unwrap(), v["seq"].as_i64().unwrap());
        assert_eq!(v["data"]["version"], version, "{who}: seq is the task's version: {v}");
        self.events += 1;
        if let Some(old) = versions.insert(id, version).filter(|old| *old >= version) {
            self.regressions.push(format!("{who}: task {id}, version {version} after {old}"));
        }
        if self.latest.get(&id).is_none_or(|old| old["version"].as_i64() < Some(version)) {
            self.latest.insert(id, v["data"].clone());
        }
        let last = |t: &i64| self.latest.get(t).map(crate::load::status);
        tasks.iter().all(|t| last(t).is_some_and(|s| crate::load::FINAL.contains(&s)))
    }
}

/// A client at work.
pub struct Running<T> {
    pub name: String,
    seen: Arc<AtomicUsize>,
    state: Arc<Mutex<T>>,
    handle: JoinHandle<()>,
}

impl<T: std::fmt::Debug + Default + Send + 'static> Running<T> {
    fn spawn<F>(name: &str, run: impl FnOnce(Arc<Mutex<T>>, Arc<AtomicUsize>) -> F) -> Running<T>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (seen, state) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(T::default())));
        let handle = tokio::spawn(run(state.clone(), seen.clone()));
        Running { name: name.to_owned(), seen, state, handle }
    }

    /// Lines (or events) received so far.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }

    /// Waits until `n` lines (or events) were received.
    pub async fn wait_seen(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.seen() < n {
            assert!(!self.handle.is_finished(), "{} ended before it saw {n}", self.name);
            assert!(Instant::now() < deadline, "{} saw only {} of {n} within {timeout:?}", self.name, self.seen());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every task ended for this client; panics with what it had after `timeout`.
    pub async fn finish(self, timeout: Duration) -> T {
        match tokio::time::timeout(timeout, self.handle).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("{}: {e}", self.name),
            Err(_) => {
                let state = self.state.lock().unwrap();
                panic!("{} did not see every task end within {timeout:?}; it has {}", self.name, brief(&*state))
            }
        }
        std::mem::take(&mut *self.state.lock().unwrap())
    }
}

/// A short description of a client's state for a failure message.
fn brief(state: &impl std::fmt::Debug) -> String {
    let text = format!("{state:?}");
    if text.len() > 3000 { format!("{}…", &text[..3000]) } else { text }
}

fn task_of(topic: &str) -> i64 {
    let id = topic.strip_prefix("task:").and_then(|t| t.strip_suffix(":log"));
    id.and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("not a log topic: {topic}"))
}

fn log_topic(task: i64) -> String {
    format!("task:{task}:log")
}

/// A WebSocket client of the logs of `tasks`.
pub fn ws_logs(name: &str, token: &str, tasks: &[i64], route: Route) -> Running<Logs> {
    let (name_, token, tasks) = (name.to_owned(), token.to_owned(), tasks.to_vec());
    Running::spawn(name, move |state: Arc<Mutex<Logs>>, seen: Arc<AtomicUsize>| async move {
        let mut hop = 0;
        let mut moved = false;
        loop {
            let base = &route.bases[hop % route.bases.len()];
            hop += 1;
            let mut ws = match Ws::connect(Connect { base, token: Some(&token), origin: None }).await {
                Ok(ws) => ws,
                Err(status) => {
                    state.lock().unwrap().broken.push(format!("connecting to {base}: {status}"));
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            };
            let node = ws.node.clone().unwrap_or_default();
            let (topics, resume) = {
                let mut s = state.lock().unwrap();
                s.nodes.push(node.clone());
                let open: Vec<String> = tasks.iter().filter(|t| !s.ended.contains(t)).map(|t| log_topic(*t)).collect();
                let resume = s.resume(&open);
                (open, resume)
            };
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            ws.subscribe(&topics, resume).await;
            loop {
                let v = match ws.read(STUCK).await {
                    Read::Message(v) => v,
                    Read::Quiet => panic!("{name_}: no event for {STUCK:?} on {node}"),
                    Read::Closed(why) => {
                        state.lock().unwrap().broken.push(format!("{node}: {why}"));
                        break;
                    }
                };
                if v["op"] == "resync" {
                    let topics: Vec<String> = serde_json::from_value(v["topics"].clone()).unwrap();
                    let resume = {
                        let mut s = state.lock().unwrap();
                        s.resyncs += 1;
                        s.resume(&topics)
                    };
                    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                    ws.subscribe(&topics, resume).await;
                    continue;
                }
                if v["op"] == "subscribed" {
                    continue;
                }
                assert!(v["op"].is_null(), "{name_} on {node}: {v}");
                let (new, done) = state.lock().unwrap().take(&format!("{name_} on {node}"), &v, &tasks);
                seen.fetch_add(new, Ordering::SeqCst);
                if done {
                    return;
                }
                if !moved && route.move_after.is_some_and(|n| seen.load(Ordering::SeqCst) >= n) {
                    moved = true;
                    ws.close().await;
                    tokio::time::sleep(AWAY).await;
                    break;
                }
            }
        }
    })
}

/// SSE clients of the logs of `tasks`, one stream per task, each on its own route.
pub fn sse_logs(name: &str, token: &str, pid: i64, tasks: &[(i64, Route)]) -> Running<Logs> {
    let (token, tasks) = (token.to_owned(), tasks.to_vec());
    Running::spawn(name, move |state, seen| async move {
        let streams: Vec<JoinHandle<()>> = tasks
            .into_iter()
            .map(|(task, route)| tokio::spawn(sse_stream(token.clone(), pid, task, route, state.clone(), seen.clone())))
            .collect();
        for s in streams {
            if let Err(e) = s.await {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    })
}

/// One task's SSE stream, resumed after `Last-Event-ID` at the next base whenever it ends
/// early.
async fn sse_stream(token: String, pid: i64, task: i64, route: Route, state: Arc<Mutex<Logs>>, seen: Arc<AtomicUsize>) {
    let mut hop = 0;
    let mut moved = false;
    loop {
        let base = &route.bases[hop % route.bases.len()];
        hop += 1;
        let url = format!("{base}/api/v1/projects/{pid}/tasks/{task}/log/stream");
        let had = state.lock().unwrap().lines.get(&task).map_or(0, Vec::len);
        let last = state.lock().unwrap().lines.get(&task).and_then(|l| l.last()).map(|l| l.0);
        let max = match route.move_after {
            Some(n) if !moved => n - n.min(had),
            _ => usize::MAX,
        };
        let (mut frames, mut ended) = (0, false);
        let read = try_read_each(&url, &token, last, max, |f| {
            frames += 1;
            match f.line() {
                Some(line) => {
                    seen.fetch_add(1, Ordering::SeqCst);
                    state.lock().unwrap().add(task, vec![line]);
                }
                None => ended = true,
            }
        })
        .await;
        let headers = match read {
            Ok(h) => h,
            Err(e) => {
                state.lock().unwrap().broken.push(format!("task {task}: {e}"));
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let node = headers.get("x-baton-node").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        {
            let mut s = state.lock().unwrap();
            s.nodes.push(node.clone());
            s.streams.entry(task).or_default().push(node.clone());
            if ended {
                s.ended.insert(task);
                return;
            }
            if frames != max {
                s.broken.push(format!("task {task}: the stream on {node} ended early"));
                continue;
            }
        }
        moved = true;
        tokio::time::sleep(AWAY).await;
    }
}

/// A WebSocket client of `project:<pid>` until every one of `tasks` was seen in a final state.
pub fn ws_project(name: &str, token: &str, pid: i64, tasks: &[i64], route: Route) -> Running<Changes> {
    let (name_, token, tasks) = (name.to_owned(), token.to_owned(), tasks.to_vec());
    let topic = format!("project:{pid}");
    Running::spawn(name, move |state: Arc<Mutex<Changes>>, seen: Arc<AtomicUsize>| async move {
        let mut hop = 0;
        let mut moved = false;
        // Resuming asks for every task changed since a little before the last event heard.
        let mut heard: Option<i64> = None;
        loop {
            let base = &route.bases[hop % route.bases.len()];
            hop += 1;
            let mut ws = match Ws::connect(Connect { base, token: Some(&token), origin: None }).await {
                Ok(ws) => ws,
                Err(status) => {
                    state.lock().unwrap().broken.push(format!("connecting to {base}: {status}"));
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            };
            let node = ws.node.clone().unwrap_or_default();
            state.lock().unwrap().nodes.push(node.clone());
            let resume = heard.map_or(json!({}), |ms| json!({ topic.clone(): ms - 2000 }));
            ws.subscribe(&[&topic], resume).await;
            // Versions must grow on one connection; across connections the highest is kept.
            let mut versions: BTreeMap<i64, i64> = BTreeMap::new();
            loop {
                let v = match ws.read(STUCK).await {
                    Read::Message(v) => v,
                    Read::Quiet => panic!("{name_}: no event for {STUCK:?} on {node}"),
                    Read::Closed(why) => {
                        state.lock().unwrap().broken.push(format!("{node}: {why}"));
                        break;
                    }
                };
                if v["op"] == "subscribed" {
                    continue;
                }
                assert!(v["op"].is_null(), "{name_} on {node}: {v}");
                assert_eq!(v["topic"], topic.as_str(), "{name_}: {v}");
                heard = Some(chrono::Utc::now().timestamp_millis());
                seen.fetch_add(1, Ordering::SeqCst);
                if state.lock().unwrap().take(&format!("{name_} on {node}"), &v, &mut versions, &tasks) {
                    return;
                }
                if !moved && route.move_after.is_some_and(|n| seen.load(Ordering::SeqCst) >= n) {
                    moved = true;
                    ws.close().await;
                    tokio::time::sleep(AWAY).await;
                    break;
                }
            }
        }
    })
}
