//! In-process servers for tests.

use std::path::{Path, PathBuf};

use baton::server::{Server, StartOptions};
use baton_config::Config;
use tempfile::TempDir;

use crate::{ADMIN_PASSWORD, Client, TestDatabase};

/// A server on 127.0.0.1 port 0 with its own data directory (kept until the `TestServer` drops,
/// so a test can restart on the same data).
pub struct TestServer {
    server: Option<Server>,
    /// The database of this run's dialect (`BATON_TEST_DATABASE`); kept across restarts.
    db: std::sync::Arc<TestDatabase>,
    dir: Option<TempDir>,
    data_dir: PathBuf,
    adjust: Adjust,
    pub url: String,
    /// Logged in as the admin.
    pub client: Client,
}

type Adjust = std::sync::Arc<dyn Fn(&mut Config) + Send + Sync>;

/// Everything a (re)start needs.
struct Boot {
    dir: Option<TempDir>,
    data_dir: PathBuf,
    db: std::sync::Arc<TestDatabase>,
    adjust: Adjust,
    opts: StartOptions,
}

/// A configuration for tests: loopback, port 0, fast leases, short grace periods.
pub fn test_config(data_dir: &Path, database_url: &str) -> Config {
    let vars = [
        ("BATON_DATABASE_URL", database_url.to_owned()),
        ("BATON_DATA_DIR", data_dir.display().to_string()),
        ("BATON_HTTP_LISTEN", "127.0.0.1:0".into()),
        ("BATON_GRPC_LISTEN", "127.0.0.1:0".into()),
        ("BATON_CLUSTER_LISTEN", "127.0.0.1:0".into()),
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
        TestServer::start_on(TestDatabase::create().await, adjust).await
    }

    /// A server on the given database.
    pub async fn start_on(db: TestDatabase, adjust: impl Fn(&mut Config) + Send + Sync + 'static) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        let db = std::sync::Arc::new(db);
        TestServer::boot(Boot {
            dir: Some(dir),
            data_dir,
            db,
            adjust: std::sync::Arc::new(adjust),
            opts: StartOptions::default(),
        })
        .await
    }

    async fn boot(b: Boot) -> TestServer {
        let Boot { dir, data_dir, db, adjust, opts } = b;
        let mut cfg = test_config(&data_dir, &db.url);
        adjust(&mut cfg);
        let server = baton::server::start(cfg, opts).await.expect("server starts");
        let url = format!("http://{}", server.http_addr);
        let client = Client::new(&url);
        client.login("admin", ADMIN_PASSWORD).await;
        TestServer { server: Some(server), db, dir, data_dir, adjust, url, client }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The gRPC URL runners dial.
    pub fn grpc_url(&self) -> String {
        self.server.as_ref().and_then(|s| s.grpc_addr).map(|a| format!("http://{a}")).unwrap_or_default()
    }

    /// The internal port (`Tasks`, `Schedules`), plaintext.
    pub fn cluster_url(&self) -> String {
        self.server.as_ref().and_then(|s| s.cluster_addr).map(|a| format!("http://{a}")).unwrap_or_default()
    }

    /// A server without the local runner: only remote runners take its work.
    pub async fn start_without_runner() -> TestServer {
        TestServer::start_with_no_runner(|_| {}).await
    }

    /// A server without the local runner whose test configuration `adjust` changes first.
    pub async fn start_with_no_runner(adjust: impl Fn(&mut Config) + Send + Sync + 'static) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        let db = std::sync::Arc::new(TestDatabase::create().await);
        TestServer::boot(Boot {
            dir: Some(dir),
            data_dir,
            db,
            adjust: std::sync::Arc::new(adjust),
            opts: StartOptions { no_runner: true, ..StartOptions::default() },
        })
        .await
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
    pub async fn restart(self) -> TestServer {
        self.reboot(StartOptions::default()).await
    }

    async fn reboot(mut self, opts: StartOptions) -> TestServer {
        self.crash();
        let b = Boot {
            dir: self.dir.take(),
            data_dir: self.data_dir.clone(),
            db: self.db.clone(),
            adjust: self.adjust.clone(),
            opts,
        };
        TestServer::boot(b).await
    }

    /// The database URL the server uses.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// A connection of its own to the server's database, to look under the API.
    pub async fn store(&self) -> baton_store::Store {
        let t = std::time::Duration::from_secs(5);
        let opts = baton_store::Options {
            url: self.db.url.clone(),
            max_connections: 1,
            connect_timeout: t,
            acquire_timeout: t,
        };
        baton_store::Store::connect(&opts).await.expect("the test database answers")
    }

    /// Like [`TestServer::restart`], without the local runner.
    pub async fn restart_without_runner(self) -> TestServer {
        self.reboot(StartOptions { no_runner: true, ..StartOptions::default() }).await
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
