//! A `baton server` in a child process, for tests that need real signals (SIGKILL, SIGTERM) or the
//! server's own environment; the guard kills it, and every script that left a pid file, on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use baton_testkit::{ADMIN_PASSWORD, Client, TestDatabase, free_port};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// A child `baton server` process on a data directory it may share with the next one.
pub struct ChildServer {
    child: Option<Child>,
    data_dir: PathBuf,
    /// Scripts write `$$` (their process group) to files in here; they are killed on drop.
    pub pid_dir: PathBuf,
    pub url: String,
    pub client: Client,
    log: PathBuf,
}

/// How to start a child server.
pub struct ChildOptions {
    pub http_port: u16,
    pub grpc_port: u16,
    pub no_runner: bool,
    pub lease_seconds: u64,
    /// More configuration, as `BATON_…` variables.
    pub env: Vec<(&'static str, String)>,
}

impl ChildServer {
    /// Starts `baton server` on `data_dir` and the database `db` with fresh ports, and waits until
    /// it answers and the admin is logged in.
    pub async fn start(data_dir: &Path, pid_dir: &Path, db: &TestDatabase) -> ChildServer {
        // A port from `free_port` is free only until someone binds it: tests running beside this
        // one bind port 0 too. When it was taken in between, try again with new ports.
        for _ in 0..5 {
            let opts = ChildOptions {
                http_port: free_port(),
                grpc_port: free_port(),
                no_runner: false,
                lease_seconds: 4,
                env: Vec::new(),
            };
            match ChildServer::try_start(data_dir, pid_dir, db, &opts).await {
                Ok(srv) => return srv,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("baton server did not start; log:\n{log}"),
            }
        }
        panic!("baton server found no free ports in five tries");
    }

    /// Like [`ChildServer::start`], with the ports and settings given (a restart on the same
    /// ports lets remote runners find the server again).
    pub async fn start_with(data_dir: &Path, pid_dir: &Path, db: &TestDatabase, opts: &ChildOptions) -> ChildServer {
        match ChildServer::try_start(data_dir, pid_dir, db, opts).await {
            Ok(srv) => srv,
            Err(log) => panic!("baton server did not start; log:\n{log}"),
        }
    }

    /// Starts the server; `Err` carries its log when it exited before it was healthy.
    async fn try_start(
        data_dir: &Path,
        pid_dir: &Path,
        db: &TestDatabase,
        opts: &ChildOptions,
    ) -> Result<ChildServer, String> {
        let http = format!("127.0.0.1:{}", opts.http_port);
        let grpc = format!("127.0.0.1:{}", opts.grpc_port);
        let log = data_dir.join(format!("server-{}.log", free_port()));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        // The harness's own variables are no configuration keys: a real server would refuse them.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_TEST_")) {
            cmd.env_remove(k);
        }
        cmd.arg("server");
        if opts.no_runner {
            cmd.arg("--no-runner");
        }
        let child = cmd
            .current_dir(data_dir)
            .env("BATON_DATA_DIR", data_dir)
            .env("BATON_DATABASE_URL", &db.url)
            .env("BATON_HTTP_LISTEN", &http)
            .env("BATON_GRPC_LISTEN", &grpc)
            // The internal port is not used from outside: any free one.
            .env("BATON_CLUSTER_LISTEN", "127.0.0.1:0")
            .env("BATON_ADMIN_USERNAME", "admin")
            .env("BATON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BATON_DISPATCHER_LEASE_SECONDS", opts.lease_seconds.to_string())
            .env("BATON_DISPATCHER_HEARTBEAT_SECONDS", "1")
            .env("BATON_SHUTDOWN_GRACE_SECONDS", "10")
            .env("BATON_RUNNER_KILL_GRACE_MS", "500")
            .env("BATON_LOG_LEVEL", "info")
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("baton binary starts");
        let url = format!("http://{http}");
        let mut srv = ChildServer {
            child: Some(child),
            data_dir: data_dir.to_owned(),
            pid_dir: pid_dir.to_owned(),
            client: Client::new(&url),
            url,
            log,
        };
        srv.wait_healthy().await?;
        srv.client.login("admin", ADMIN_PASSWORD).await;
        Ok(srv)
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
                return Err(format!("exited with {st} before it was healthy\n{}", self.log_text()));
            }
            assert!(Instant::now() < deadline, "baton server not healthy within 60 s; log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// What the server printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("server process").id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// Waits for the process to exit (panics after `timeout`, killing it).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.as_mut().expect("server process").try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if Instant::now() >= deadline {
                let log = self.log_text();
                self.kill_server();
                panic!("baton server did not exit within {timeout:?}; log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash, and reaps the process. Scripts it started are left alone.
    pub fn kill_server(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the process group of every script that wrote its pid under `pid_dir`.
    pub fn kill_scripts(&self) {
        for e in std::fs::read_dir(&self.pid_dir).into_iter().flatten().flatten() {
            let pid = std::fs::read_to_string(e.path()).ok().and_then(|s| s.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|p| *p > 1) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill_server();
        self.kill_scripts();
    }
}
