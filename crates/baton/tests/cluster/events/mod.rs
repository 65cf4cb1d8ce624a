//! Live events across the cluster (DESIGN.md, "Events to people" and HA point 4): tasks print
//! numbered lines at a steady pace while WebSocket clients on different nodes and through
//! HAProxy, SSE streams on other nodes and a client of the project's task changes follow them;
//! at the end every client's lines of every task must equal the stored log exactly (no gap, no
//! repeat) and end with the log's end, and the project client's last event of each task must be
//! the task as GET shows it. Each test breaks something in the middle: clients moving to another
//! node (`resume.rs`), Redis flushed and then down for ten seconds (`redis.rs`), the node under
//! a client SIGKILLed (`kill.rs`); `slow.rs` has a client that stops reading, and the origin and
//! credential checks through HAProxy.

mod clients;
mod kill;
mod redis;
mod resume;
mod slow;

use std::time::{Duration, SystemTime};

use baton_testkit::events::stored;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use self::clients::{Changes, Logs};
use crate::cluster::Cluster;

/// Tasks that print numbered lines, `burst` at a time with a pause after each burst, so that
/// they are still printing while a test breaks something.
pub struct Workload {
    pub pid: i64,
    pub tasks: Vec<i64>,
    pub lines: usize,
}

/// The shape of a workload.
pub struct Pace {
    pub tasks: usize,
    pub lines: usize,
    pub burst: usize,
    pub pause: Duration,
}

impl Pace {
    /// About twenty seconds of output: 24 tasks of 800 lines, each printing for ten seconds; two
    /// runners of 8 slots run them in two waves.
    pub fn steady() -> Pace {
        Pace { tasks: 24, lines: 800, burst: 20, pause: Duration::from_millis(250) }
    }
}

impl Workload {
    /// Creates a project and a template and submits the tasks through HAProxy.
    pub async fn start(c: &Cluster, pace: Pace) -> Workload {
        let pid = c.admin.project().await;
        let script = format!(
            "for i in $(seq 1 {}); do echo line-$i; if [ $((i % {})) = 0 ]; then sleep {}; fi; done",
            pace.lines,
            pace.burst,
            pace.pause.as_secs_f64()
        );
        let tid = c.admin.template(pid, json!({"script": script, "timeout_seconds": 300})).await;
        let mut tasks = Vec::new();
        for _ in 0..pace.tasks {
            tasks.push(c.admin.submit(pid, tid).await);
        }
        Workload { pid, tasks, lines: pace.lines }
    }

    /// Lines of all tasks together.
    pub fn total(&self) -> usize {
        self.tasks.len() * self.lines
    }

    /// Waits until every task has ended; returns them as GET shows them, all succeeded.
    pub async fn finish(&self, c: &Cluster, timeout: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut tasks = Vec::new();
        for id in &self.tasks {
            // Through the retrying client: a node may have died under HAProxy a moment ago.
            let path = format!("/api/v1/projects/{}/tasks/{id}", self.pid);
            loop {
                let t = c.api.get(&c.http(), &path, 200).await.body;
                if crate::load::FINAL.contains(&crate::load::status(&t)) {
                    assert_eq!(t["status"], "succeeded", "task {id}: {t}");
                    tasks.push(t);
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "task {id} did not end within {timeout:?}: {t}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tasks
    }
}

/// Panics unless every one of `clients` received exactly the stored log of every task of `w` and
/// its end. The stored logs themselves must be complete: `line-1` to `line-<n>`, numbered 1 to n.
pub async fn check_logs(c: &Cluster, w: &Workload, clients: &[(&str, &Logs)]) {
    let expected: Vec<(i64, String)> = (1..=w.lines).map(|i| (i as i64, format!("line-{i}"))).collect();
    for id in &w.tasks {
        let log = stored(&c.admin, w.pid, *id).await;
        assert!(log == expected, "task {id}'s stored log is not line-1..line-{}: {}", w.lines, diff(&expected, &log));
        for (name, got) in clients {
            let lines = got.lines.get(id).map_or(&[][..], Vec::as_slice);
            assert!(lines == log.as_slice(), "{name}, task {id}: {}", diff(&log, lines));
            assert!(got.ended.contains(id), "{name} never got the end of task {id}'s log");
        }
    }
}

/// Where `got` first differs from `want`, for a failure message.
fn diff(want: &[(i64, String)], got: &[(i64, String)]) -> String {
    let at = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    let around = |l: &[(i64, String)]| l[at.saturating_sub(2)..(at + 3).min(l.len())].to_vec();
    format!(
        "{} lines, {} wanted; first difference at index {at}: got {:?}, wanted {:?}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    )
}

/// Panics unless the project client saw every task's versions grow and its last event of each
/// task is the task as GET shows it now (`tasks`, final).
pub fn check_changes(name: &str, changes: &Changes, tasks: &[Value]) {
    assert!(changes.regressions.is_empty(), "{name}: versions went back: {:?}", changes.regressions);
    for t in tasks {
        let id = t["id"].as_i64().unwrap();
        assert_eq!(
            changes.latest.get(&id),
            Some(t),
            "{name}: the last event of task {id} is not the task as GET shows it"
        );
    }
}

/// Panics unless `client` got the first line of every task of `w` at least `ahead` before the task
/// finished: lines reached it live, not in one piece at the end (a buffering proxy would).
pub fn check_live(name: &str, client: &Logs, tasks: &[Value], ahead: Duration) {
    for t in tasks {
        let id = t["id"].as_i64().unwrap();
        let finished: SystemTime = t["finished_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc).into())
            .expect("a finished task has finished_at");
        let Some(first) = client.first.get(&id) else { continue };
        let ahead_by = finished.duration_since(*first).unwrap_or_default();
        assert!(ahead_by >= ahead, "{name} got the first line of task {id} only {ahead_by:?} before it finished");
    }
}

/// The bases after `first` among `all`, starting after it: where a client goes when it moves on.
pub fn after(all: &[String], first: usize) -> Vec<String> {
    (0..all.len()).map(|k| all[(first + k) % all.len()].clone()).collect()
}
