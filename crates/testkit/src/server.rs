//! In-process servers for tests.

use std::path::{Path, PathBuf};

use baton::server::{Server, StartOptions};
use baton_config::Config;
use tempfile::TempDir;

use crate::{ADMIN_PASSWORD, Client};

/// A server on 127.0.0.1 port 0 with its own data directory (kept until the `TestServer` drops,
/// so a test can restart on the same data).
pub struct TestServer {
    server: Option<Server>,
    dir: Option<TempDir>,
    data_dir: PathBuf,
    adjust: Adjust,
    pub url: String,
    /// Logged in as the admin.
    pub client: Client,
}

type Adjust = std::sync::Arc<dyn Fn(&mut Config) + Send + Sync>;

/// A configuration for tests: loopback, port 0, fast leases, short grace periods.
pub fn test_config(data_dir: &Path) -> Config {
    let vars = [
        ("BATON_DATA_DIR", data_dir.display().to_string()),
        ("BATON_HTTP_LISTEN", "127.0.0.1:0".into()),
        ("BATON_GRPC_LISTEN", "127.0.0.1:0".into()),
        ("BATON_HA_NODE_ID", "test-node".into()),
        ("BATON_ADMIN_USERNAME", "admin".into()),
        ("BATON_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ("BATON_DISPATCHER_LEASE_SECONDS", "4".into()),
        ("BATON_DISPATCHER_HEARTBEAT_SECONDS", "1".into()),
        ("BATON_SHUTDOWN_GRACE_SECONDS", "10".into()),
        ("BATON_RUNNER_KILL_GRACE_MS", "500".into()),
        ("BATON_LOG_LEVEL", "warn".into()),
    ];
    baton_config::load_from(None, vars.map(|(k, v)| (k.to_owned(), v))).expect("test config")
}

impl TestServer {
    /// A server with the test configuration.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose test configuration `adjust` changes first (kept for restarts).
    pub async fn start_with(adjust: impl Fn(&mut Config) + Send + Sync + 'static) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        TestServer::boot(Some(dir), data_dir, std::sync::Arc::new(adjust), StartOptions::default()).await
    }

    async fn boot(dir: Option<TempDir>, data_dir: PathBuf, adjust: Adjust, opts: StartOptions) -> TestServer {
        let mut cfg = test_config(&data_dir);
        adjust(&mut cfg);
        let server = baton::server::start(cfg, opts).await.expect("server starts");
        let url = format!("http://{}", server.http_addr);
        let client = Client::new(&url);
        client.login("admin", ADMIN_PASSWORD).await;
        TestServer { server: Some(server), dir, data_dir, adjust, url, client }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node id in `X-Baton-Node`.
    pub fn node_id(&self) -> String {
        self.server.as_ref().map(|s| s.node_id.clone()).unwrap_or_default()
    }

    /// A new client that is not logged in.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url)
    }

    /// Drains and stops the server (as on SIGTERM).
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }

    /// Stops the server at once, as a crash would, leaving the database as it is.
    pub fn crash(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    /// Starts a server again on the same data directory (new ports), after `shutdown` or `crash`.
    pub async fn restart(mut self) -> TestServer {
        self.crash();
        let dir = self.dir.take();
        TestServer::boot(dir, self.data_dir.clone(), self.adjust.clone(), StartOptions::default()).await
    }

    /// Like [`TestServer::restart`], without the local runner.
    pub async fn restart_without_runner(mut self) -> TestServer {
        self.crash();
        let dir = self.dir.take();
        TestServer::boot(dir, self.data_dir.clone(), self.adjust.clone(), StartOptions { no_runner: true }).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A TCP port that was free a moment ago, for servers in child processes.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}
