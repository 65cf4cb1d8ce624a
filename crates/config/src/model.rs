//! The configuration's shape and defaults. Every struct denies unknown keys.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Secret;

/// `Debug` prints what `baton config check` prints: secrets masked, passwords in URLs too.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, runner working directories and node state live.
    pub data_dir: PathBuf,
    pub database: Database,
    pub http: Http,
    pub login: Login,
    pub grpc: Grpc,
    pub ha: Ha,
    pub cluster: Cluster,
    pub secrets: Secrets,
    pub admin: Admin,
    pub runner: Runner,
    pub dispatcher: Dispatcher,
    pub shutdown: Shutdown,
    pub retention: Retention,
    pub log: Log,
    pub runtime: Runtime,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./baton-data"),
            database: Database::default(),
            http: Http::default(),
            login: Login::default(),
            grpc: Grpc::default(),
            ha: Ha::default(),
            cluster: Cluster::default(),
            secrets: Secrets::default(),
            admin: Admin::default(),
            runner: Runner::default(),
            dispatcher: Dispatcher::default(),
            shutdown: Shutdown::default(),
            retention: Retention::default(),
            log: Log::default(),
            runtime: Runtime::default(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite://…`, `postgres://…` or `mysql://…`; empty = SQLite in `data_dir`. Printed with its
    /// password masked.
    #[serde(serialize_with = "crate::secret::masked_url")]
    pub url: Option<String>,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
    pub acquire_timeout_seconds: u64,
}

impl Default for Database {
    fn default() -> Database {
        Database { url: None, max_connections: 10, connect_timeout_seconds: 5, acquire_timeout_seconds: 5 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    pub listen: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Marks the session cookie `Secure`; turn on behind HTTPS.
    pub secure_cookies: bool,
    pub session_ttl_hours: u64,
    /// A request's headers must arrive within this long of its first byte (of the connection,
    /// for the first request): slow clients cannot hold connections open.
    pub header_read_timeout_seconds: u64,
    /// A keep-alive connection with no request in flight is closed after this long.
    pub idle_timeout_seconds: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` is believed when finding a client's
    /// address; `a,b` in the environment.
    #[serde(deserialize_with = "list")]
    pub trusted_proxies: Vec<String>,
    /// Origins besides the server's own whose pages may open the WebSocket (e.g.
    /// `https://console.example.com`); `a,b` in the environment.
    #[serde(deserialize_with = "list")]
    pub allowed_origins: Vec<String>,
    /// How often the server pings a WebSocket client; one silent for three pings is closed.
    pub ws_ping_seconds: u64,
    /// How often an SSE log stream carries a comment, so proxies keep it open.
    pub sse_ping_seconds: u64,
}

impl Default for Http {
    fn default() -> Http {
        Http {
            listen: "0.0.0.0:3000".into(),
            max_body_bytes: 1 << 20,
            secure_cookies: false,
            session_ttl_hours: 24 * 7,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 10_000,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            ws_ping_seconds: 20,
            sse_ping_seconds: 15,
        }
    }
}

/// Login throttling, password hashing and the sweep of expired sessions and tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Login {
    /// Failed logins for one user name within a window before logins for it are refused.
    pub max_failures_per_user: u64,
    /// Failed logins from one client address (IPv6: its /64) within a window before logins
    /// from it are refused.
    pub max_failures_per_address: u64,
    /// The counting window, counted from a key's first failure.
    pub window_seconds: u64,
    /// Password hashes computed at once (each takes ~19 MiB); 0 = the number of CPUs.
    pub hash_concurrency: usize,
    /// How often expired sessions and API tokens are deleted.
    pub sweep_every_seconds: u64,
}

impl Default for Login {
    fn default() -> Login {
        Login {
            max_failures_per_user: 10,
            max_failures_per_address: 100,
            window_seconds: 900,
            hash_concurrency: 0,
            sweep_every_seconds: 60,
        }
    }
}

/// The runner port: runners register and keep their streams here (and gRPC health and
/// reflection answer). It may go behind the load balancer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grpc {
    pub listen: String,
    pub tls: Tls,
}

impl Default for Grpc {
    fn default() -> Grpc {
        Grpc { listen: "0.0.0.0:7000".into(), tls: Tls::default() }
    }
}

/// TLS of a gRPC port: on when both files are given (PEM).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Tls {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// TLS of the internal port, and what internal clients trust.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterTls {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The CA that signed the nodes' internal certificates, for internal clients dialling
    /// `https://` URLs; without it they trust the system roots and this node's own certificate.
    pub ca_file: Option<PathBuf>,
}

impl ClusterTls {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ha {
    pub enabled: bool,
    /// Stable name of this node; defaults to the host name.
    pub node_id: Option<String>,
    pub redis: Redis,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Redis {
    /// `redis://…` or `rediss://…`; overrides the separate fields below.
    #[serde(serialize_with = "crate::secret::masked_url")]
    pub url: Option<String>,
    pub addr: Option<String>,
    pub db: u32,
    pub user: Option<String>,
    pub pass: Option<Secret>,
    pub tls: bool,
    pub tls_skip_verify: bool,
    /// Prefix of every key, so clusters can share a Redis.
    pub key_prefix: String,
}

impl Default for Redis {
    fn default() -> Redis {
        Redis {
            url: None,
            addr: None,
            db: 0,
            user: None,
            pass: None,
            tls: false,
            tls_skip_verify: false,
            key_prefix: "baton:".into(),
        }
    }
}

/// The internal port: the services' own gRPC (`Tasks`, `Schedules`), for other nodes only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    pub listen: String,
    /// Authenticates internal gRPC calls (at least 32 characters); generated per process when
    /// unset on a single node.
    pub secret: Option<Secret>,
    /// The dispatchers' internal address, for `baton gateway` and `baton scheduler` run apart
    /// from a dispatcher (e.g. `http://baton-dispatcher:7001`).
    pub dispatcher_url: Option<String>,
    /// The schedulers' internal address, for `baton gateway` run apart from a scheduler.
    pub scheduler_url: Option<String>,
    pub tls: ClusterTls,
}

impl Default for Cluster {
    fn default() -> Cluster {
        Cluster {
            listen: "0.0.0.0:7001".into(),
            secret: None,
            dispatcher_url: None,
            scheduler_url: None,
            tls: ClusterTls::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Secrets {
    /// Key for project secrets at rest (32 bytes, base64).
    pub encryption_key: Option<Secret>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// The first admin, created when the database has no user yet.
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Runner {
    /// Name of `baton server`'s local runner; defaults to `local@<node id>`.
    pub name: Option<String>,
    /// Scripts run at once.
    pub capacity: u32,
    #[serde(deserialize_with = "list")]
    pub labels: Vec<String>,
    /// Where task working directories go; defaults to `<data_dir>/work`.
    pub work_dir: Option<PathBuf>,
    /// Between SIGTERM and SIGKILL when a script is cancelled or times out.
    pub kill_grace_ms: u64,
    /// Log text kept per task attempt; later output is read and dropped, and one last line says
    /// how much. From 64 KiB to 1 TiB (the range `baton_runner::MAX_LOG_BYTES`).
    pub max_log_bytes: u64,
}

impl Default for Runner {
    fn default() -> Runner {
        Runner {
            name: None,
            capacity: 4,
            labels: Vec::new(),
            work_dir: None,
            kill_grace_ms: 1000,
            max_log_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dispatcher {
    /// A runner silent this long loses its tasks.
    pub lease_seconds: u64,
    /// How often runners send heartbeats.
    pub heartbeat_seconds: u64,
}

impl Default for Dispatcher {
    fn default() -> Dispatcher {
        Dispatcher { lease_seconds: 10, heartbeat_seconds: 2 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shutdown {
    /// How long running scripts may take to finish on SIGTERM before they are killed.
    pub grace_seconds: u64,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown { grace_seconds: 30 }
    }
}

/// How long finished tasks (with their logs) are kept. Both limits off by default: nothing is
/// deleted unless asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Finished tasks older than this go; 0 = no age limit.
    pub max_age_seconds: u64,
    /// Per template, only this many newest finished tasks stay; 0 = no count limit.
    pub max_tasks_per_template: u64,
    /// How often the retention sweep runs.
    pub sweep_every_seconds: u64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { max_age_seconds: 0, max_tasks_per_template: 0, sweep_every_seconds: 60 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// A tracing filter such as `info` or `baton_dispatcher=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Log {
        Log { level: "info".into(), format: LogFormat::Auto }
    }
}

/// How the process runs its asynchronous work.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Runtime {
    /// Threads that run the node's asynchronous work (HTTP, gRPC, coordination, the local
    /// runner's streams); 0 = half the CPUs the process may use, at least one. SQLite's
    /// connections and the scripts run on threads and processes of their own besides these.
    pub worker_threads: usize,
}

/// The most `runtime.worker_threads` accepted.
pub const MAX_WORKER_THREADS: usize = 1024;

impl Runtime {
    /// The worker threads to start: `worker_threads`, or half the CPUs this process may use
    /// (rounded up, at least one) when it is 0. A node waits on its database and its runners far
    /// more than it computes, and shares the machine with them: a worker per CPU only added
    /// wake-ups between workers (measured on two CPUs: a task cost the server 10–18% more CPU
    /// with two workers than with one, at the same throughput).
    pub fn workers(&self) -> usize {
        match self.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2)),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable on a terminal, JSON otherwise.
    Auto,
    Text,
    Json,
}

/// `Debug` as the masked dump of `baton config check`: these hold URLs with passwords, and a
/// derived `Debug` would print them.
macro_rules! debug_masked {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_string(self) {
                    Ok(s) => f.write_str(&s),
                    Err(_) => f.write_str(concat!(stringify!($t), " { .. }")),
                }
            }
        }
    )*};
}

debug_masked!(Config, Database, Ha, Redis);

/// A list, or one comma-separated string (the form environment variables give).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(v) => v,
        Raw::Csv(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    })
}

impl Config {
    /// The Redis URL: `ha.redis.url`, or one made of `ha.redis.addr`, `.db`, `.user`, `.pass`,
    /// `.tls` and `.tls_skip_verify`. Contains the password: never print it.
    pub fn redis_url(&self) -> Option<String> {
        let r = &self.ha.redis;
        if let Some(url) = &r.url {
            return Some(url.clone());
        }
        let addr = r.addr.as_ref()?;
        let scheme = if r.tls { "rediss" } else { "redis" };
        let enc = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        let auth = match (&r.user, &r.pass) {
            (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p.expose())),
            (None, Some(p)) => format!(":{}@", enc(p.expose())),
            (Some(u), None) => format!("{}@", enc(u)),
            (None, None) => String::new(),
        };
        // The Redis client's way of saying "do not verify the server's certificate".
        let insecure = if r.tls && r.tls_skip_verify { "#insecure" } else { "" };
        Some(format!("{scheme}://{auth}{addr}/{}{insecure}", r.db))
    }

    /// The database URL; always set once the configuration is validated.
    pub fn database_url(&self) -> &str {
        self.database.url.as_deref().unwrap_or_default()
    }

    /// This node's id; always set once the configuration is validated.
    pub fn node_id(&self) -> &str {
        self.ha.node_id.as_deref().unwrap_or("baton")
    }

    /// `http.trusted_proxies` as networks (an address is a network of one); always all of them
    /// once the configuration is validated.
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.http.trusted_proxies.iter().filter_map(|p| parse_net(p)).collect()
    }

    pub fn work_dir(&self) -> PathBuf {
        self.runner.work_dir.clone().unwrap_or_else(|| self.data_dir.join("work"))
    }
}

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub(crate) fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}
