//! The workload: N tasks of one template whose script appends the task's own mark (an env value
//! unique per task) to one shared file, submitted by concurrent workers round-robin across the
//! nodes (or through HAProxy), while the test breaks things.
//!
//! A submission that fails is ambiguous: the node may have created the task before the answer was
//! lost. So before retrying, the load pauses every other submission and looks for tasks it does not
//! know in the project; each one's mark is read from its log. Only a mark that no task carries is
//! submitted again, so the load itself never creates a duplicate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::cluster::Cluster;

pub const FINAL: [&str; 5] = ["succeeded", "failed", "cancelled", "timed_out", "lost"];

/// How much to submit, and how fast.
pub struct Plan {
    pub tasks: usize,
    pub concurrency: usize,
    /// Submissions per second at most (`None`: as fast as the cluster takes them). A steady rate
    /// keeps submissions and runs going while a test breaks something in the middle.
    pub per_second: Option<f64>,
}

impl Plan {
    pub fn steady(per_second: f64) -> Plan {
        Plan { tasks: 1000, concurrency: 64, per_second: Some(per_second) }
    }

    pub fn full_speed() -> Plan {
        Plan { tasks: 1000, concurrency: 64, per_second: None }
    }
}

/// Where submissions go.
pub enum Route {
    /// Each node's own HTTP port, round-robin, skipping paused nodes.
    Nodes,
    /// HAProxy's HTTP port, which balances by itself.
    Haproxy,
}

/// The mark of task number `i`.
pub fn mark(i: usize) -> String {
    format!("mark-{i:04}")
}

struct Target {
    name: String,
    base: String,
}

/// One accepted submission: its mark number, the target it was sent to and the `X-Baton-Node`
/// that answered.
#[derive(Debug, Clone)]
pub struct Served {
    pub index: usize,
    pub target: String,
    pub node: Option<String>,
}

#[derive(Default)]
pub struct Record {
    /// Task id → mark number, for every task the load knows it created.
    pub by_task: BTreeMap<i64, usize>,
    /// Tasks created by a failed submission whose mark could not be read.
    pub orphans: Vec<i64>,
    /// Every failed submission attempt, described.
    pub failures: Vec<String>,
    pub served: Vec<Served>,
}

struct Inner {
    api: Api,
    pid: i64,
    tid: i64,
    plan: Plan,
    targets: Vec<Target>,
    /// Where the task list and logs are read: HAProxy, which always has a live node behind it.
    poll_base: String,
    paused: Mutex<Vec<String>>,
    /// Submitters hold it shared while a POST is in flight; pausing a node or resolving a failed
    /// submission takes it exclusively, so no POST is in flight then.
    gate: RwLock<()>,
    next: AtomicUsize,
    /// Submissions from this number on wait until released.
    hold: AtomicUsize,
    started: Instant,
    record: Mutex<Record>,
}

pub struct Load {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    pub marks_file: PathBuf,
    pub pid: i64,
}

impl Load {
    /// Creates the project and template and starts submitting.
    pub async fn start(c: &Cluster, route: Route, plan: Plan) -> Load {
        let marks_file = c.dir.path().join("marks.txt");
        let pid = c.admin.project().await;
        // The mark goes to the shared file (the proof of how often the script ran) and to the
        // log (how a failed submission's task is recognised). One attempt only: a task whose
        // runner's node died is adopted by another node, never run again.
        let script = format!("echo \"$TASK_MARK\" >> '{}'; echo \"$TASK_MARK\"", marks_file.display());
        let tid = c.admin.template(pid, json!({"script": script, "max_attempts": 1, "timeout_seconds": 120})).await;
        let targets = match route {
            Route::Nodes => c.nodes.iter().map(|n| Target { name: n.id.clone(), base: n.url.clone() }).collect(),
            Route::Haproxy => vec![Target { name: "haproxy".into(), base: c.http() }],
        };
        let inner = Arc::new(Inner {
            api: c.api.clone(),
            pid,
            tid,
            targets,
            poll_base: c.http(),
            paused: Mutex::new(Vec::new()),
            gate: RwLock::new(()),
            next: AtomicUsize::new(0),
            hold: AtomicUsize::new(usize::MAX),
            started: Instant::now(),
            record: Mutex::new(Record::default()),
            plan,
        });
        let workers = (0..inner.plan.concurrency).map(|_| tokio::spawn(worker(inner.clone()))).collect();
        Load { inner, workers, marks_file, pid }
    }

    /// Sends nothing more to node `name`, and returns once no submission to it is in flight.
    pub async fn pause(&self, name: &str) {
        self.inner.paused.lock().unwrap().push(name.to_owned());
        drop(self.inner.gate.write().await);
    }

    pub fn resume(&self, name: &str) {
        self.inner.paused.lock().unwrap().retain(|n| n != name);
    }

    /// Submissions numbered `n` and up wait for [`Load::release`].
    pub fn hold(&self, n: usize) {
        self.inner.hold.store(n, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.inner.hold.store(usize::MAX, Ordering::SeqCst);
    }

    /// Waits until `n` submissions were accepted.
    pub async fn wait_submitted(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.inner.record.lock().unwrap().by_task.len() < n {
            assert!(Instant::now() < deadline, "{n} submissions were not accepted within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn failures(&self) -> Vec<String> {
        self.inner.record.lock().unwrap().failures.clone()
    }

    pub fn served(&self) -> Vec<Served> {
        self.inner.record.lock().unwrap().served.clone()
    }

    /// Waits for every submission, then for every task to end (at most `timeout` after the last
    /// submission); returns the project's tasks.
    pub async fn finish(&mut self, timeout: Duration) -> Vec<Value> {
        for w in self.workers.drain(..) {
            w.await.expect("a submitter panicked");
        }
        let submitted = self.inner.started.elapsed();
        let deadline = Instant::now() + timeout;
        loop {
            let tasks = self.inner.api.all_tasks(&self.inner.poll_base, self.pid).await;
            let open: Vec<&Value> = tasks.iter().filter(|t| !FINAL.contains(&status(t))).collect();
            if open.is_empty() {
                eprintln!(
                    "{} tasks submitted in {submitted:?}, all ended after {:?}",
                    tasks.len(),
                    self.inner.started.elapsed()
                );
                return tasks;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} tasks still open {timeout:?} after the last submission ({}); e.g. {}",
                open.len(),
                tasks.len(),
                count_statuses(&tasks),
                open[0]
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What the load knows: which task carries which mark, and what failed.
    pub fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.inner.record.lock().unwrap()
    }
}

impl Drop for Load {
    /// A failed test must not leave submitters running against nodes that are being killed.
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
    }
}

pub fn status(t: &Value) -> &str {
    t["status"].as_str().unwrap_or("")
}

/// "succeeded: 990, running: 10" for a list of tasks.
pub fn count_statuses(tasks: &[Value]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tasks {
        *counts.entry(status(t)).or_default() += 1;
    }
    counts.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", ")
}

async fn worker(inner: Arc<Inner>) {
    loop {
        let i = inner.next.fetch_add(1, Ordering::SeqCst);
        if i >= inner.plan.tasks {
            return;
        }
        while i >= inner.hold.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(rate) = inner.plan.per_second {
            let at = inner.started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
        }
        inner.submit(i).await;
    }
}

impl Inner {
    /// The target for attempt `k` of a submission: round-robin over the targets not paused.
    fn pick(&self, k: usize) -> Option<&Target> {
        let paused = self.paused.lock().unwrap();
        let live: Vec<&Target> = self.targets.iter().filter(|t| !paused.contains(&t.name)).collect();
        (!live.is_empty()).then(|| live[k % live.len()])
    }

    async fn submit(&self, i: usize) {
        let body = json!({"template_id": self.tid, "env": {"TASK_MARK": mark(i)}});
        let path = format!("/api/v1/projects/{}/tasks", self.pid);
        for attempt in 0..20 {
            let failure = {
                let _in_flight = self.gate.read().await;
                let Some(target) = self.pick(i + attempt) else {
                    drop(_in_flight);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                match self.api.try_send(reqwest::Method::POST, &target.base, &path, Some(&body)).await {
                    Ok(r) if r.status == 201 => {
                        let id = r.body["id"].as_i64().expect("a created task has an id");
                        // Recorded before the gate is let go: a resolver must never take this
                        // task for one it does not know.
                        let mut rec = self.record.lock().unwrap();
                        rec.by_task.insert(id, i);
                        rec.served.push(Served { index: i, target: target.name.clone(), node: r.node });
                        return;
                    }
                    Ok(r) => format!("{} via {}: {} {}", mark(i), target.name, r.status, r.body),
                    Err(e) => format!("{} via {}: {e}", mark(i), target.name),
                }
            };
            eprintln!("submission failed: {failure}");
            self.record.lock().unwrap().failures.push(failure);
            if self.resolve(i).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{} could not be submitted in 20 attempts", mark(i));
    }

    /// After a failed submission of mark `i`: identifies every task of the project the load does
    /// not know (by the mark in its log) and tells whether one of them carries mark `i`.
    async fn resolve(&self, i: usize) -> bool {
        let _no_submission_in_flight = self.gate.write().await;
        let known = |rec: &Record| rec.by_task.values().any(|m| *m == i);
        if known(&self.record.lock().unwrap()) {
            return true;
        }
        let tasks = self.api.all_tasks(&self.poll_base, self.pid).await;
        let unknown: Vec<i64> = {
            let rec = self.record.lock().unwrap();
            tasks
                .iter()
                .filter_map(|t| t["id"].as_i64())
                .filter(|id| !rec.by_task.contains_key(id) && !rec.orphans.contains(id))
                .collect()
        };
        for id in unknown {
            let found = self.mark_of(id).await;
            eprintln!("task {id}, created by a failed submission, carries {found:?}");
            let mut rec = self.record.lock().unwrap();
            match found {
                Some(m) => drop(rec.by_task.insert(id, m)),
                None => rec.orphans.push(id),
            }
        }
        known(&self.record.lock().unwrap())
    }

    /// The mark task `id` printed, once it has ended (`None` if it never does or printed none).
    async fn mark_of(&self, id: i64) -> Option<usize> {
        let pid = self.pid;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self.api.get(&self.poll_base, &format!("/api/v1/projects/{pid}/tasks/{id}"), 200).await.body;
            if FINAL.contains(&status(&t)) {
                break;
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self.api.get(&self.poll_base, &format!("/api/v1/projects/{pid}/tasks/{id}/log?limit=500"), 200).await;
        let items = log.body["items"].as_array().cloned().unwrap_or_default();
        items.iter().filter_map(|l| l["text"].as_str()?.trim().strip_prefix("mark-")?.parse().ok()).next()
    }
}
