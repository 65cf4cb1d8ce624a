//! The whole cluster of one test: its database, a private Redis, three HA nodes, HAProxy and two
//! runners connected through HAProxy, plus the views the tests check (`/api/v1/cluster`, the
//! runners list). When a test fails, dropping the cluster prints the tail of every log first.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use baton_testkit::{ADMIN_PASSWORD, Client, Dialect, PrivateRedis, TestDatabase};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::api::Api;
use crate::haproxy::{Backend, Haproxy};
use crate::node::{Node, Shared, tail};
use crate::runner::Runner;

/// Fields drop in declaration order: runners and HAProxy first, then the nodes, and the database
/// last, so nothing still holds a connection when it is dropped.
pub struct Cluster {
    pub runners: Vec<Runner>,
    pub haproxy: Haproxy,
    pub nodes: Vec<Node>,
    pub redis: PrivateRedis,
    pub api: Api,
    /// Admin client through HAProxy, for set-up steps that must succeed.
    pub admin: Client,
    pub dir: TempDir,
    _db: TestDatabase,
}

/// A key prefix no other test (or earlier run) uses, so clusters could share a Redis.
fn unique_prefix() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("cluster-{}-{n}-{nanos}:", std::process::id())
}

impl Cluster {
    /// Starts everything on a fresh database of `dialect` and waits until HAProxy routes to all
    /// three nodes and both runners are online.
    pub async fn start(dialect: Dialect) -> Cluster {
        Cluster::start_sized(dialect, 3, &["runner-a", "runner-b"]).await
    }

    /// Like [`Cluster::start`] with `nodes` nodes (2 or 3) and the named runners (through HAProxy).
    pub async fn start_sized(dialect: Dialect, size: usize, runners: &[&str]) -> Cluster {
        assert!(matches!(size, 2 | 3), "a test cluster has 2 or 3 nodes");
        remember_panics();
        let started = Instant::now();
        let db = TestDatabase::create_on(dialect).await;
        let redis = PrivateRedis::start();
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared {
            database_url: db.url.clone(),
            redis_url: redis.url(),
            key_prefix: unique_prefix(),
            cluster_secret: hex(&rand::random::<[u8; 24]>()),
            encryption_key: base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()),
        };
        // The first node migrates the empty database; the others start together once it is done.
        let first = Node::start(dir.path(), 1, &shared).await;
        let mut nodes = vec![first];
        if size == 3 {
            let (second, third) =
                tokio::join!(Node::start(dir.path(), 2, &shared), Node::start(dir.path(), 3, &shared));
            nodes.extend([second, third]);
        } else {
            nodes.push(Node::start(dir.path(), 2, &shared).await);
        }
        for n in &nodes {
            n.wait_ready_status(200, Duration::from_secs(30)).await;
        }
        let backends: Vec<Backend> = nodes
            .iter()
            .map(|n| Backend { name: n.id.clone(), http_port: n.http_port, grpc_port: n.grpc_port })
            .collect();
        let haproxy = Haproxy::start(dir.path(), &backends).await;

        let login = Client::new(&haproxy.http_url());
        login.login("admin", ADMIN_PASSWORD).await;
        let token = login.post("/api/v1/tokens", json!({"name": "cluster-tests"})).await.expect(201)["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let api = Api::new(&token);
        let admin = login.with_token(&token);
        let mut cluster = Cluster { runners: Vec::new(), haproxy, nodes, redis, api, admin, dir, _db: db };
        let ids: Vec<String> = cluster.nodes.iter().map(|n| n.id.clone()).collect();
        for id in &ids {
            cluster.wait_routed_to(id, Duration::from_secs(15)).await;
        }
        for name in runners {
            let r = Runner::start(&cluster.api, &cluster.haproxy, cluster.dir.path(), name).await;
            cluster.runners.push(r);
        }
        for i in 0..cluster.runners.len() {
            cluster.wait_runner_online(i, Duration::from_secs(20)).await;
        }
        eprintln!("cluster up in {:?} ({dialect:?})", started.elapsed());
        cluster
    }

    pub fn http(&self) -> String {
        self.haproxy.http_url()
    }

    pub fn node(&self, id: &str) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node_mut(&mut self, id: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    /// `GET /api/v1/cluster` through HAProxy.
    pub async fn view(&self) -> Value {
        self.api.get(&self.http(), "/api/v1/cluster", 200).await.body
    }

    /// Polls the cluster view until `pred` holds (panics with the last view after `timeout`).
    pub async fn wait_view(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.view().await;
            if pred(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "the cluster view never showed {what} within {timeout:?}: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The runners list (`GET /api/v1/runners`) through HAProxy.
    pub async fn runners_view(&self) -> Vec<Value> {
        let body = self.api.get(&self.http(), "/api/v1/runners", 200).await.body;
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// The node that holds runner `i`'s stream, per the runners list.
    pub async fn runner_node(&self, i: usize) -> Option<String> {
        let id = self.runners[i].id;
        let all = self.runners_view().await;
        all.iter().find(|r| r["id"].as_i64() == Some(id)).and_then(|r| r["node_id"].as_str()).map(str::to_owned)
    }

    pub async fn wait_runner_online(&self, i: usize, timeout: Duration) {
        let id = self.runners[i].id;
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.api.get(&self.http(), &format!("/api/v1/runners/{id}"), 200).await.body;
            if r["online"] == true && r["version"] != "" {
                return;
            }
            assert!(Instant::now() < deadline, "runner {id} not online within {timeout:?}: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until HAProxy sends requests to node `id` (its health checks passed).
    pub async fn wait_routed_to(&self, id: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.api.get(&self.http(), "/api/ready", 200).await;
            if r.node.as_deref() == Some(id) {
                return;
            }
            assert!(Instant::now() < deadline, "HAProxy sent nothing to {id} within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until HAProxy has stopped sending requests to node `id`: no answer from it in a row
    /// of twenty (round robin over three nodes would have picked it several times).
    pub async fn wait_not_routed_to(&self, id: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut clean = 0;
        while clean < 20 {
            let r = self.api.get(&self.http(), "/api/health", 200).await;
            clean = if r.node.as_deref() == Some(id) { 0 } else { clean + 1 };
            assert!(Instant::now() < deadline, "HAProxy still sends requests to {id} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The node entry `id` of a cluster view.
pub fn view_node<'a>(view: &'a Value, id: &str) -> Option<&'a Value> {
    view["nodes"].as_array()?.iter().find(|n| n["id"] == id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn print_file_tail(title: &str, path: &Path, lines: usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    eprintln!("----- {title}, {} -----\n{}", path.display(), tail(&text, lines));
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("===== the test failed; the end of every log follows =====");
        for n in &self.nodes {
            eprint!("{}", n.log_tails(80));
        }
        for r in &self.runners {
            eprintln!("----- runner {} (id {}) -----\n{}", r.name, r.id, tail(&r.log_text(), 40));
        }
        print_file_tail("haproxy", &self.dir.path().join("haproxy.log"), 30);
        // Again after the logs, which would otherwise bury it.
        let why = LAST_PANIC.lock().map(|p| p.clone()).unwrap_or_default();
        eprintln!("===== the test failed: {} =====", why.unwrap_or_else(|| "(no message)".into()));
    }
}

/// The message of the last panic in this process, for the end of the failure dump.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Keeps every panic's place and message in `LAST_PANIC`, then reports it as usual.
fn remember_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info.payload_as_str().unwrap_or("(no message)");
            let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(format!("{place}: {text}"));
            }
            report(info);
        }));
    });
}
