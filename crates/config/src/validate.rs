//! Checks of values that parse but cannot work, and the defaults that depend on other keys.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton_core::names::valid_label;

use crate::{Config, Error, Result};

/// `scheme://host[:port]`, as browsers send in `Origin`.
fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else { return false };
    matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', ' '])
}

/// The shortest accepted `cluster.secret`: it is all that guards the internal services.
const MIN_SECRET: usize = 32;

/// Both files of a TLS key pair, or neither; each must exist.
fn check_tls(section: &str, cert: Option<&PathBuf>, key: Option<&PathBuf>) -> Result<()> {
    match (cert, key) {
        (None, None) => Ok(()),
        (Some(_), None) | (None, Some(_)) => Err(Error::invalid(
            &format!("{section}.{}", if cert.is_some() { "key_file" } else { "cert_file" }),
            "is missing: TLS needs both a certificate and its key",
            format!("set both {section}.cert_file and {section}.key_file (PEM), or neither"),
        )),
        (Some(cert), Some(key)) => {
            for (name, path) in [("cert_file", cert), ("key_file", key)] {
                if !path.is_file() {
                    return Err(Error::invalid(
                        &format!("{section}.{name}"),
                        format!("{} is not a readable file", path.display()),
                        "give the path of a PEM file",
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Validates `cfg` and fills in derived defaults (`database.url`, `ha.node_id`, `runner.name`,
/// `runner.work_dir`).
pub fn check(mut cfg: Config) -> Result<Config> {
    for (key, value) in
        [("http.listen", &cfg.http.listen), ("grpc.listen", &cfg.grpc.listen), ("cluster.listen", &cfg.cluster.listen)]
    {
        value.parse::<SocketAddr>().map_err(|e| {
            Error::invalid(key, format!("{value:?} is not an address ({e})"), "use host:port, such as 0.0.0.0:3000")
        })?;
    }
    if cfg.data_dir.as_os_str().is_empty() {
        return Err(Error::invalid("data_dir", "is empty", "give a directory Baton may write, such as ./baton-data"));
    }
    let url = match cfg.database.url.take().filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => format!("sqlite://{}/baton.db?mode=rwc", cfg.data_dir.display()),
    };
    let dialect = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    if !matches!(dialect, "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb") {
        return Err(Error::invalid(
            "database.url",
            format!("unsupported scheme {dialect:?}"),
            "use sqlite://PATH, postgres://USER:PASS@HOST/DB or mysql://USER:PASS@HOST/DB",
        ));
    }
    // sqlx speaks MariaDB through its MySQL driver.
    cfg.database.url = Some(url.replacen("mariadb://", "mysql://", 1));
    // Migrations hold their lock on one connection while they run on another.
    if cfg.database.max_connections < 2 {
        return Err(Error::invalid(
            "database.max_connections",
            format!("is {}", cfg.database.max_connections),
            "set it to at least 2 (default 10): migrations hold a lock on one connection while they run on another",
        ));
    }
    if cfg.ha.enabled {
        if dialect == "sqlite" {
            return Err(Error::invalid(
                "ha.enabled",
                "a cluster cannot share a SQLite database",
                "set database.url to a PostgreSQL or MySQL/MariaDB database, or turn ha.enabled off",
            ));
        }
        if cfg.ha.redis.url.is_none() && cfg.ha.redis.addr.is_none() {
            return Err(Error::invalid(
                "ha.redis.addr",
                "is required when ha.enabled is on",
                "set ha.redis.addr (host:port) or ha.redis.url",
            ));
        }
        if let Some(url) = &cfg.ha.redis.url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(Error::invalid(
                "ha.redis.url",
                "must start with redis:// or rediss://",
                "use redis://[USER:PASS@]HOST:PORT/DB, or rediss://… for TLS",
            ));
        }
        // Every node must open the others' secrets and accept their internal calls.
        if cfg.cluster.secret.is_none() {
            return Err(Error::invalid(
                "cluster.secret",
                "is required when ha.enabled is on",
                "set the same random value on every node (`openssl rand -hex 32`)",
            ));
        }
        if cfg.secrets.encryption_key.is_none() {
            return Err(Error::invalid(
                "secrets.encryption_key",
                "is required when ha.enabled is on",
                "set the same key on every node (`openssl rand -base64 32`)",
            ));
        }
    }
    if let Some(secret) = &cfg.cluster.secret
        && secret.expose().chars().count() < MIN_SECRET
    {
        return Err(Error::invalid(
            "cluster.secret",
            format!("is {} characters long; it must be at least {MIN_SECRET}", secret.expose().chars().count()),
            "set a long random value, the same on every node (`openssl rand -hex 32`)",
        ));
    }
    check_tls("grpc.tls", cfg.grpc.tls.cert_file.as_ref(), cfg.grpc.tls.key_file.as_ref())?;
    check_tls("cluster.tls", cfg.cluster.tls.cert_file.as_ref(), cfg.cluster.tls.key_file.as_ref())?;
    if let Some(ca) = &cfg.cluster.tls.ca_file
        && !ca.is_file()
    {
        return Err(Error::invalid(
            "cluster.tls.ca_file",
            format!("{} is not a readable file", ca.display()),
            "give the PEM file of the CA that signed the nodes' internal certificates",
        ));
    }
    for key in ["dispatcher_url", "scheduler_url"] {
        let url = if key == "dispatcher_url" { &cfg.cluster.dispatcher_url } else { &cfg.cluster.scheduler_url };
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::invalid(
                &format!("cluster.{key}"),
                format!("{url:?} is not an http:// or https:// URL"),
                "give the internal port's address, such as http://baton-dispatcher:7001 (https:// with cluster TLS)",
            ));
        }
    }
    for (key, v) in
        [("http.ws_ping_seconds", cfg.http.ws_ping_seconds), ("http.sse_ping_seconds", cfg.http.sse_ping_seconds)]
    {
        if !(1..=3600).contains(&v) {
            return Err(Error::invalid(key, format!("{v} is out of range"), "set it between 1 and 3600 seconds"));
        }
    }
    if let Some(bad) = cfg.http.allowed_origins.iter().find(|o| !valid_origin(o)) {
        return Err(Error::invalid(
            "http.allowed_origins",
            format!("{bad:?} is not an origin"),
            "give scheme://host[:port] without a path, such as https://console.example.com",
        ));
    }
    let node_id = match cfg.ha.node_id.take().filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "baton".into()),
    };
    if node_id.len() > 64 || !node_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(Error::invalid(
            "ha.node_id",
            format!("{node_id:?} is not a valid node id"),
            "use up to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    cfg.runner.name.get_or_insert_with(|| format!("local@{node_id}"));
    cfg.ha.node_id = Some(node_id);
    cfg.runner.work_dir.get_or_insert_with(|| cfg.data_dir.join("work"));
    if !(1..=1024).contains(&cfg.runner.capacity) {
        return Err(Error::invalid(
            "runner.capacity",
            format!("{} is out of range", cfg.runner.capacity),
            "set it between 1 and 1024",
        ));
    }
    if let Some(bad) = cfg.runner.labels.iter().find(|l| !valid_label(l)) {
        return Err(Error::invalid(
            "runner.labels",
            format!("{bad:?} is not a valid label"),
            "use letters, digits and - _ . : = (at most 64)",
        ));
    }
    // The runner crate checks the same range; this crate does not depend on it.
    if !((64 << 10)..=(1 << 40)).contains(&cfg.runner.max_log_bytes) {
        return Err(Error::invalid(
            "runner.max_log_bytes",
            format!("{} is out of range", cfg.runner.max_log_bytes),
            "set it between 65536 (64 KiB) and 1099511627776 (1 TiB); the default is 67108864 (64 MiB)",
        ));
    }
    if cfg.dispatcher.heartbeat_seconds == 0 {
        return Err(Error::invalid("dispatcher.heartbeat_seconds", "is 0", "set it to at least 1 (default 2)"));
    }
    if cfg.dispatcher.lease_seconds < 2 * cfg.dispatcher.heartbeat_seconds {
        return Err(Error::invalid(
            "dispatcher.lease_seconds",
            format!("{} is shorter than two heartbeats", cfg.dispatcher.lease_seconds),
            "set it to at least twice dispatcher.heartbeat_seconds (default 10)",
        ));
    }
    if cfg.http.session_ttl_hours == 0 {
        return Err(Error::invalid("http.session_ttl_hours", "is 0", "set it to at least 1 (default 168)"));
    }
    check_http_and_login(&cfg)?;
    if cfg.runtime.worker_threads > crate::MAX_WORKER_THREADS {
        return Err(Error::invalid(
            "runtime.worker_threads",
            format!("{} is out of range", cfg.runtime.worker_threads),
            format!("set it between 1 and {}, or 0 for half the CPUs", crate::MAX_WORKER_THREADS),
        ));
    }
    if cfg.admin.username.as_deref().is_some_and(str::is_empty) {
        return Err(Error::invalid("admin.username", "is empty", "give a user name or unset it"));
    }
    Ok(cfg)
}

fn check_http_and_login(cfg: &Config) -> Result<()> {
    let at_least_one = [
        ("http.header_read_timeout_seconds", cfg.http.header_read_timeout_seconds, "10"),
        ("http.idle_timeout_seconds", cfg.http.idle_timeout_seconds, "60"),
        ("http.max_connections", cfg.http.max_connections as u64, "10000"),
        ("login.max_failures_per_user", cfg.login.max_failures_per_user, "10"),
        ("login.max_failures_per_address", cfg.login.max_failures_per_address, "100"),
        ("login.window_seconds", cfg.login.window_seconds, "900"),
        ("login.sweep_every_seconds", cfg.login.sweep_every_seconds, "60"),
    ];
    if let Some((key, _, default)) = at_least_one.iter().find(|(_, v, _)| *v == 0) {
        return Err(Error::invalid(key, "is 0", format!("set it to at least 1 (default {default})")));
    }
    if let Some(bad) = cfg.http.trusted_proxies.iter().find(|p| crate::model::parse_net(p).is_none()) {
        return Err(Error::invalid(
            "http.trusted_proxies",
            format!("{bad:?} is not an address or a CIDR"),
            "list your load balancers as addresses or networks, such as 10.0.0.0/8,192.168.1.7",
        ));
    }
    Ok(())
}
