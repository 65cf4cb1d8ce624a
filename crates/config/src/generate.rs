//! `baton config generate`: a commented configuration file for a new installation, with fresh
//! secrets, for a single node or for the nodes of a cluster. Every key of the configuration is
//! in it, set or commented out; the commented-out defaults are read from [`Config::default`], so
//! the file cannot drift from the values Baton really uses.

use baton_core::sealed::SealKey;
use baton_core::token;

use crate::Config;

/// Which installation a generated file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installation {
    /// One node: SQLite in `data_dir`, coordination in process, a local runner.
    Single,
    /// Every node of a cluster: PostgreSQL or MySQL, Redis, the same secrets everywhere.
    Cluster,
}

/// Characters of a generated admin password: 144 random bits, short enough to type once.
const ADMIN_PASSWORD_CHARS: usize = 24;

/// A commented TOML configuration for a new installation, with a fresh `cluster.secret`,
/// `secrets.encryption_key` and admin password. It holds secrets: write it where only Baton
/// reads it, never into a log.
pub fn generate(installation: Installation) -> String {
    let cluster = installation == Installation::Cluster;
    let mut f = File::new();
    header(&mut f, cluster);
    database(&mut f, cluster);
    listeners(&mut f, cluster);
    coordination(&mut f, cluster);
    secrets(&mut f, cluster);
    work(&mut f, cluster);
    f.text
}

fn header(f: &mut File, cluster: bool) {
    if cluster {
        f.comment("Baton configuration for the nodes of a cluster, made by `baton config generate --cluster`.");
        f.comment("");
        f.comment("Every node gets this same file: one database, one Redis, and the same cluster.secret and");
        f.comment("secrets.encryption_key on all of them. Replace the CHANGE-ME parts below, and give each node");
        f.comment("its own id with BATON_HA_NODE_ID (or let it be the host name).");
    } else {
        f.comment("Baton configuration for a single node, made by `baton config generate`.");
        f.comment("");
        f.comment("It keeps its state in SQLite under data_dir and coordinates in process; for a cluster,");
        f.comment("see `baton config generate --cluster`.");
    }
    f.comment("");
    f.comment("The file holds fresh secrets: keep it readable by Baton alone (chmod 600), out of version");
    f.comment("control, and backed up with the database: project secrets cannot be read without");
    f.comment("secrets.encryption_key. Commented-out keys show their defaults, or an example where a key");
    f.comment("has none. The environment wins over this file: BATON_ plus the key path in upper case");
    f.comment("(http.listen is BATON_HTTP_LISTEN). `baton config check --config FILE` checks the file.");
    f.blank();
    f.comment("SQLite database (on a single node), secrets.key when no key is set, runner work directories.");
    f.default("data_dir");
}

fn database(f: &mut File, cluster: bool) {
    f.table("database", "");
    if cluster {
        f.comment("The database every node shares: PostgreSQL, or MySQL/MariaDB (mysql://USER:PASS@HOST/DB).");
        f.comment("CHANGE-ME: its address and password (or set BATON_DATABASE_URL and drop this line).");
        f.set("url", "postgres://baton:CHANGE-ME@db.internal:5432/baton");
    } else {
        f.comment("Unset: SQLite in data_dir, as below. postgres://… or mysql://… when the node joins a cluster.");
        f.example("url", "sqlite://./baton-data/baton.db?mode=rwc");
    }
    f.defaults(&["max_connections", "connect_timeout_seconds", "acquire_timeout_seconds"]);
}

fn listeners(f: &mut File, cluster: bool) {
    f.table("http", "The HTTP API and the web console; in a cluster, behind the load balancer.");
    f.listen(cluster);
    f.comment("Mark the session cookie Secure: turn on when people reach Baton over HTTPS.");
    f.default("secure_cookies");
    f.comment("Your load balancers (addresses or CIDRs): their X-Forwarded-For names the client, which");
    f.comment("login throttling and the audit log use.");
    if cluster {
        f.example_value("trusted_proxies", toml::Value::Array(vec!["10.0.0.0/8".into()]));
    } else {
        f.default("trusted_proxies");
    }
    f.comment("Origins besides the server's own whose pages may open the event WebSocket.");
    f.default("allowed_origins");
    f.defaults(&[
        "max_body_bytes",
        "session_ttl_hours",
        "header_read_timeout_seconds",
        "idle_timeout_seconds",
        "max_connections",
        "ws_ping_seconds",
        "sse_ping_seconds",
    ]);

    f.table("login", "Failed logins allowed per user name and per address within the window (then 429).");
    f.comment("hash_concurrency: password hashes computed at once (~19 MiB each); 0 = the number of CPUs.");
    f.defaults(&[
        "max_failures_per_user",
        "max_failures_per_address",
        "window_seconds",
        "hash_concurrency",
        "sweep_every_seconds",
    ]);

    f.table("grpc", "The runner port: runner registration and streams, gRPC health and reflection.");
    f.listen(cluster);
    f.table("grpc.tls", "TLS on the runner port: a PEM certificate chain and its key, both or neither.");
    f.example("cert_file", "/etc/baton/runner-port.crt");
    f.example("key_file", "/etc/baton/runner-port.key");

    f.table("cluster", "The internal port: the services' own gRPC between Baton processes. Never publish it.");
    f.listen(cluster);
    f.comment("Authenticates the internal calls: at least 32 characters, the same on every node.");
    if !cluster {
        f.comment("A single node uses it for its calls to itself (without one, it makes one at every start).");
    }
    f.set("secret", &token::generate(""));
    f.comment("Only for `baton gateway` and `baton scheduler` run apart from the dispatchers and");
    f.comment("schedulers: where their internal port is (https:// with cluster TLS).");
    f.example("dispatcher_url", "http://baton-dispatcher:7001");
    f.example("scheduler_url", "http://baton-scheduler:7001");
    f.table("cluster.tls", "TLS on the internal port, and the CA internal clients trust for https:// URLs.");
    f.example("cert_file", "/etc/baton/internal.crt");
    f.example("key_file", "/etc/baton/internal.key");
    f.example("ca_file", "/etc/baton/internal-ca.crt");
}

fn coordination(f: &mut File, cluster: bool) {
    f.table("ha", "");
    if cluster {
        f.comment("Cluster mode: needs the shared database above and the Redis below.");
        f.set_value("enabled", toml::Value::Boolean(true));
    } else {
        f.comment("Cluster mode: off on a single node (it needs PostgreSQL or MySQL, and Redis).");
        f.default("enabled");
    }
    f.comment("This node's id, in X-Baton-Node and the cluster view: the host name unless set. Each node");
    f.comment("needs its own: with one file for all nodes, set BATON_HA_NODE_ID per node instead.");
    f.example("node_id", "baton-1");

    f.table("ha.redis", "");
    f.comment("The Redis the nodes coordinate through: redis://[USER:PASS@]HOST:PORT/DB, rediss:// for TLS.");
    if cluster {
        f.comment("CHANGE-ME: its address (or give it in parts below instead).");
        f.set("url", "redis://redis.internal:6379/0");
    } else {
        f.example("url", "redis://redis.internal:6379/0");
    }
    f.comment("Or in parts, when url is unset:");
    f.example("addr", "redis.internal:6379");
    f.default("db");
    f.example("user", "baton");
    f.example("pass", "CHANGE-ME");
    f.defaults(&["tls", "tls_skip_verify"]);
    f.comment("Prefix of every key, so that clusters can share one Redis.");
    f.default("key_prefix");
}

fn secrets(f: &mut File, cluster: bool) {
    f.table("secrets", "");
    f.comment("The AES-256-GCM key of project secrets (32 bytes in base64). Lose it, and the secrets");
    f.comment("stored with it cannot be read: back it up.");
    if cluster {
        f.comment("The same on every node.");
    } else {
        f.comment("Unset, a single node would keep one in <data_dir>/secrets.key: set it before the first start.");
    }
    f.set("encryption_key", &SealKey::generate());

    f.table("admin", "");
    f.comment("The first administrator, created when the database has no user yet; the password is read");
    f.comment("only then. Change it after logging in (PATCH /api/v1/users/me), then remove it from here.");
    f.set("username", "admin");
    f.set("password", &token::generate("").chars().take(ADMIN_PASSWORD_CHARS).collect::<String>());
}

fn work(f: &mut File, cluster: bool) {
    f.table("runner", "The node's own runner (`baton server` without --no-runner).");
    if cluster {
        f.comment("Cluster nodes usually run with --no-runner, and runners register from elsewhere.");
    }
    f.comment("name: local@<node id> unless set; work_dir: <data_dir>/work unless set.");
    f.example("name", "local@baton-1");
    f.defaults(&["capacity", "labels"]);
    f.example("work_dir", "./baton-data/work");
    f.defaults(&["kill_grace_ms", "max_log_bytes"]);

    f.table("dispatcher", "A runner silent for lease_seconds loses its tasks; it reports every heartbeat_seconds.");
    f.defaults(&["lease_seconds", "heartbeat_seconds"]);

    f.table("shutdown", "How long running scripts may finish on SIGTERM before they are killed.");
    f.default("grace_seconds");

    f.table("retention", "What is deleted: finished tasks (with their logs) and audit entries older than");
    f.comment("max_age_seconds, and finished tasks beyond the newest max_tasks_per_template per template.");
    f.comment("0 keeps them.");
    f.defaults(&["max_age_seconds", "max_tasks_per_template", "sweep_every_seconds"]);

    f.table("log", "level: a tracing filter (RUST_LOG wins); format: text, json, or auto (text on a terminal).");
    f.defaults(&["level", "format"]);

    f.table("runtime", "worker_threads: threads for the node's asynchronous work; 0 = half the CPUs, at least one.");
    f.default("worker_threads");
}

/// The file being written: TOML text, the table lines go into, and the defaults to show.
struct File {
    text: String,
    table: String,
    defaults: serde_json::Value,
}

impl File {
    fn new() -> File {
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        File { text: String::new(), table: String::new(), defaults }
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    fn comment(&mut self, line: &str) {
        let sep = if line.is_empty() { "" } else { " " };
        self.text.push_str(&format!("#{sep}{line}\n"));
    }

    /// Starts `[name]`, after a comment saying what it is for (none when `about` is empty).
    fn table(&mut self, name: &str, about: &str) {
        self.blank();
        if !about.is_empty() {
            self.comment(about);
        }
        self.text.push_str(&format!("[{name}]\n"));
        self.table = name.to_owned();
    }

    fn set(&mut self, key: &str, value: &str) {
        self.set_value(key, value.into());
    }

    fn set_value(&mut self, key: &str, value: toml::Value) {
        self.text.push_str(&format!("{key} = {value}\n"));
    }

    fn example(&mut self, key: &str, value: &str) {
        self.example_value(key, value.into());
    }

    fn example_value(&mut self, key: &str, value: toml::Value) {
        self.text.push_str(&format!("# {key} = {value}\n"));
    }

    /// `# key = <its default>`. A key without a default comes out as `# key =`, which the tests
    /// catch: such a key wants an example instead.
    fn default(&mut self, key: &str) {
        match self.default_of(key) {
            Some(value) => self.example_value(key, value),
            None => self.text.push_str(&format!("# {key} =\n")),
        }
    }

    fn defaults(&mut self, keys: &[&str]) {
        for key in keys {
            self.default(key);
        }
    }

    /// The listen address of the current table: set in a cluster, where the load balancer and the
    /// other nodes depend on it; commented out on a single node.
    fn listen(&mut self, cluster: bool) {
        match self.default_of("listen") {
            Some(value) if cluster => self.set_value("listen", value),
            _ => self.default("listen"),
        }
    }

    fn default_of(&self, key: &str) -> Option<toml::Value> {
        let mut value = &self.defaults;
        for part in self.table.split('.').filter(|p| !p.is_empty()).chain([key]) {
            value = value.get(part)?;
        }
        if value.is_null() { None } else { toml::Value::try_from(value).ok() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file with every commented-out `key = value` line taken in: every key name and value type
    /// must be right, or parsing it as a [`Config`] fails.
    fn uncommented(text: &str) -> String {
        text.lines()
            .map(|line| match line.strip_prefix("# ").and_then(|rest| rest.split_once(" = ")) {
                Some((key, _)) if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                    &line[2..]
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn key_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (k, v) in table {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    key_paths(v, &path, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    #[test]
    fn every_key_is_in_the_file_with_its_right_name_and_type() {
        for installation in [Installation::Single, Installation::Cluster] {
            let text = uncommented(&generate(installation));
            let parsed: Result<Config, _> = toml::from_str(&text);
            assert!(parsed.is_ok(), "{installation:?}: {:?}\n{text}", parsed.err());
            let mut keys = Vec::new();
            key_paths(&toml::from_str(&text).unwrap(), "", &mut keys);
            let mut want = crate::env::key_paths();
            keys.sort();
            want.sort();
            assert_eq!(keys, want, "{installation:?}");
        }
    }

    #[test]
    fn the_file_is_valid_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        for installation in [Installation::Single, Installation::Cluster] {
            let path = dir.path().join("baton.toml");
            std::fs::write(&path, generate(installation)).unwrap();
            let cfg = crate::load_from(Some(&path), Vec::new()).unwrap();
            assert_eq!(cfg.ha.enabled, installation == Installation::Cluster);
            assert!(cfg.cluster.secret.unwrap().expose().len() >= 32);
            baton_core::sealed::SealKey::from_base64(cfg.secrets.encryption_key.unwrap().expose()).unwrap();
            assert!(cfg.admin.password.unwrap().expose().len() >= 8);
        }
    }

    #[test]
    fn secrets_are_fresh_every_time() {
        let secrets = |text: &str| -> Vec<String> {
            let v: toml::Value = toml::from_str(text).unwrap();
            ["cluster.secret", "secrets.encryption_key", "admin.password"]
                .iter()
                .map(|path| {
                    let (table, key) = path.split_once('.').unwrap();
                    v[table][key].as_str().unwrap().to_owned()
                })
                .collect()
        };
        let (a, b) = (secrets(&generate(Installation::Single)), secrets(&generate(Installation::Single)));
        for (x, y) in a.iter().zip(&b) {
            assert_ne!(x, y);
        }
    }
}
