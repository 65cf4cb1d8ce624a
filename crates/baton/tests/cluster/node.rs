//! One cluster node: `baton server --no-runner` in HA mode as a child process, with its own ports,
//! data directory and log file. It can be SIGKILLed, SIGTERMed and started again on the same ports
//! with the same node id, as an operator's restart would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use baton_testkit::{ADMIN_PASSWORD, free_port};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What every node of one cluster shares.
#[derive(Clone)]
pub struct Shared {
    pub database_url: String,
    pub redis_url: String,
    pub key_prefix: String,
    pub cluster_secret: String,
    pub encryption_key: String,
}

pub struct Node {
    pub id: String,
    pub http_port: u16,
    pub grpc_port: u16,
    /// The internal port (`Tasks`, `Schedules`).
    pub cluster_port: u16,
    pub url: String,
    dir: PathBuf,
    shared: Shared,
    child: Option<Child>,
    /// Starts so far: each writes its own log file, so a restart keeps the crash's log.
    runs: u32,
    /// The command line after `baton`, and settings beyond the shared ones.
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Node {
    /// Starts node `n` on fresh ports under `root` and waits until it answers `/api/health`.
    pub async fn start(root: &Path, n: usize, shared: &Shared) -> Node {
        Node::start_as(root, &format!("node-{n}"), shared, &["server", "--no-runner"], &[]).await
    }

    /// Starts `baton <args>` (e.g. one service alone) as node `id`, with extra settings.
    pub async fn start_as(root: &Path, id: &str, shared: &Shared, args: &[&str], env: &[(&str, String)]) -> Node {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        // A port from `free_port` is free only until someone binds it; other tests bind port 0
        // too. When it was taken in between, try again with new ports.
        for _ in 0..5 {
            let (http_port, grpc_port, cluster_port) = (free_port(), free_port(), free_port());
            let mut node = Node {
                id: id.to_owned(),
                http_port,
                grpc_port,
                cluster_port,
                url: format!("http://127.0.0.1:{http_port}"),
                dir: dir.clone(),
                shared: shared.clone(),
                child: None,
                runs: 0,
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                env: env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            };
            match node.try_start().await {
                Ok(()) => return node,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("{} did not start; log:\n{log}", node.id),
            }
        }
        panic!("{id} found no free ports in five tries");
    }

    /// What this node shares with the rest of its cluster, to start more processes into it.
    pub fn shared(&self) -> Shared {
        self.shared.clone()
    }

    /// Starts the (stopped) node again on the same ports, data directory and node id.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "{} still runs", self.id);
        if let Err(log) = self.try_start().await {
            panic!("{} did not start again; log:\n{log}", self.id);
        }
    }

    async fn try_start(&mut self) -> Result<(), String> {
        self.runs += 1;
        let out = std::fs::File::create(self.log_path()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        // The harness's own variables are no configuration keys: a real server would refuse them.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_")) {
            cmd.env_remove(k);
        }
        let s = &self.shared;
        let child = cmd
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .current_dir(&self.dir)
            .env("BATON_HA_ENABLED", "true")
            .env("BATON_HA_NODE_ID", &self.id)
            .env("BATON_HA_REDIS_URL", &s.redis_url)
            .env("BATON_HA_REDIS_KEY_PREFIX", &s.key_prefix)
            .env("BATON_DATABASE_URL", &s.database_url)
            .env("BATON_CLUSTER_SECRET", &s.cluster_secret)
            .env("BATON_SECRETS_ENCRYPTION_KEY", &s.encryption_key)
            .env("BATON_HTTP_LISTEN", format!("127.0.0.1:{}", self.http_port))
            .env("BATON_GRPC_LISTEN", format!("127.0.0.1:{}", self.grpc_port))
            .env("BATON_CLUSTER_LISTEN", format!("127.0.0.1:{}", self.cluster_port))
            .env("BATON_ADMIN_USERNAME", "admin")
            .env("BATON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BATON_DATA_DIR", &self.dir)
            .env("BATON_DISPATCHER_LEASE_SECONDS", "4")
            .env("BATON_DISPATCHER_HEARTBEAT_SECONDS", "1")
            .env("BATON_SHUTDOWN_GRACE_SECONDS", "20")
            .env("BATON_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("baton binary starts");
        self.child = Some(child);
        self.wait_healthy().await
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/api/health", self.url)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                self.child = None;
                return Err(format!("exited with {st} before it was healthy\n{}", self.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!("not healthy within 60 s\n{}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The status of `GET /api/ready` on this node itself (0 when it does not answer).
    pub async fn ready_status(&self) -> u16 {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        match http.get(format!("{}/api/ready", self.url)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Polls `/api/ready` until it answers `want` (panics after `timeout`).
    pub async fn wait_ready_status(&self, want: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.ready_status().await;
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "{}: /api/ready is {got}, not {want}, after {timeout:?}", self.id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, as a crash; reaps the process.
    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn sigterm(&self) {
        let child = self.child.as_ref().expect("node process");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    }

    /// Waits for the process to exit (panics after `timeout`, killing it).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.as_mut().expect("node process").try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if Instant::now() >= deadline {
                self.sigkill();
                panic!("{} did not exit within {timeout:?} of SIGTERM", self.id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("server-{}.log", self.runs))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every log this node wrote, one per start: (start, path, text).
    fn logs(&self) -> impl Iterator<Item = (u32, PathBuf, String)> + '_ {
        (1..=self.runs).map(|run| {
            let path = self.dir.join(format!("server-{run}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (run, path, text)
        })
    }

    /// How many lines of every log this node wrote contain `text`.
    pub fn count_in_logs(&self, text: &str) -> usize {
        self.logs().map(|(_, _, log)| log.lines().filter(|l| l.contains(text)).count()).sum()
    }

    /// The last `lines` lines of every log this node wrote, for a failing test's output.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (run, path, text) in self.logs() {
            out.push_str(&format!("----- {} (start {run}), {} -----\n", self.id, path.display()));
            out.push_str(&tail(&text, lines));
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    out.push('\n');
    out
}

/// A value of a node's own `/metrics`, by its name with labels (`name{label="x"}`).
pub async fn metric(node: &Node, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", node.url)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {}'s metrics", node.id))
}
