//! Tests of loading: layering, environment names, unknown keys, errors that name the key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_are_valid_and_fill_in_derived_values() {
    let cfg = load_from(None, env(&[])).unwrap();
    assert_eq!(cfg.http.listen, "0.0.0.0:3000");
    assert_eq!(cfg.grpc.listen, "0.0.0.0:7000");
    assert_eq!(cfg.database_url(), "sqlite://./baton-data/baton.db?mode=rwc");
    assert!(!cfg.node_id().is_empty());
    assert_eq!(cfg.runner.name.as_deref(), Some(format!("local@{}", cfg.node_id()).as_str()));
}

#[test]
fn environment_names_follow_the_key_paths() {
    let cfg = load_from(
        None,
        env(&[
            ("BATON_DATABASE_URL", "postgres://u:p@h/db"),
            ("BATON_HA_NODE_ID", "node-7"),
            ("BATON_HTTP_LISTEN", "127.0.0.1:8080"),
            ("BATON_RUNNER_CAPACITY", "9"),
            ("BATON_RUNNER_LABELS", "linux, docker"),
            ("BATON_ADMIN_PASSWORD", "123456"),
            ("BATON_TASK_ID", "5"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.database_url(), "postgres://u:p@h/db");
    assert_eq!(cfg.node_id(), "node-7");
    assert_eq!(cfg.http.listen, "127.0.0.1:8080");
    assert_eq!(cfg.runner.capacity, 9);
    assert_eq!(cfg.runner.labels, vec!["linux", "docker"]);
    assert_eq!(cfg.admin.password.as_ref().map(Secret::expose), Some("123456"));
    assert!(env::key_paths().contains(&"ha.redis.tls_skip_verify".to_string()));
    assert_eq!(env::var_name("ha.redis.tls_skip_verify"), "BATON_HA_REDIS_TLS_SKIP_VERIFY");
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:1\"\n[runner]\ncapacity = 2\nlabels = [\"a\"]\n").unwrap();
    let cfg = load_from(Some(&path), env(&[("BATON_HTTP_LISTEN", "127.0.0.1:2")])).unwrap();
    assert_eq!(cfg.http.listen, "127.0.0.1:2");
    assert_eq!(cfg.runner.capacity, 2);
    assert_eq!(cfg.runner.labels, vec!["a"]);
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, "[http]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let err = load_from(Some(&path), env(&[])).unwrap_err().to_string();
    assert!(err.contains("lisen") && err.contains("unknown field"), "{err}");

    let err = load_from(None, env(&[("BATON_HTTP_LISEN", "x")])).unwrap_err().to_string();
    assert!(err.contains("BATON_HTTP_LISEN") && err.contains("not a configuration key"), "{err}");
}

#[test]
fn bad_values_name_the_key_and_the_fix() {
    let err = load_from(None, env(&[("BATON_RUNNER_CAPACITY", "lots")])).unwrap_err().to_string();
    assert!(err.contains("runner.capacity") && err.contains("BATON_RUNNER_CAPACITY"), "{err}");

    let err = load_from(None, env(&[("BATON_HTTP_LISTEN", "nowhere")])).unwrap_err().to_string();
    assert!(err.contains("http.listen") && err.contains("host:port"), "{err}");

    let err = load_from(None, env(&[("BATON_DATABASE_URL", "oracle://x")])).unwrap_err().to_string();
    assert!(err.contains("database.url") && err.contains("postgres://"), "{err}");

    let err = load_from(None, env(&[("BATON_HA_ENABLED", "true")])).unwrap_err().to_string();
    assert!(err.contains("ha.enabled") && err.contains("PostgreSQL"), "{err}");

    let pg = ("BATON_DATABASE_URL", "postgres://b@db/b");
    let err = load_from(None, env(&[("BATON_HA_ENABLED", "true"), pg])).unwrap_err().to_string();
    assert!(err.contains("ha.redis.addr"), "{err}");
    let redis = ("BATON_HA_REDIS_ADDR", "redis:6379");
    let err = load_from(None, env(&[("BATON_HA_ENABLED", "true"), pg, redis])).unwrap_err().to_string();
    assert!(err.contains("cluster.secret") && err.contains("every node"), "{err}");
    let secret = ("BATON_CLUSTER_SECRET", "x-cluster-secret-of-32-characters");
    let err = load_from(None, env(&[("BATON_HA_ENABLED", "true"), pg, redis, secret])).unwrap_err().to_string();
    assert!(err.contains("secrets.encryption_key"), "{err}");
    let key = ("BATON_SECRETS_ENCRYPTION_KEY", "k");
    let cfg = load_from(None, env(&[("BATON_HA_ENABLED", "true"), pg, redis, secret, key])).unwrap();
    assert!(!cfg.node_id().is_empty(), "the host name is the default node id");

    let err = load_from(None, env(&[("BATON_RUNNER_LABELS", "ok,not ok")])).unwrap_err().to_string();
    assert!(err.contains("runner.labels"), "{err}");

    for bad in ["0", "65535", "1099511627777"] {
        let err = load_from(None, env(&[("BATON_RUNNER_MAX_LOG_BYTES", bad)])).unwrap_err().to_string();
        assert!(err.contains("runner.max_log_bytes") && err.contains("BATON_RUNNER_MAX_LOG_BYTES"), "{err}");
        assert!(err.contains("between 65536 (64 KiB) and 1099511627776 (1 TiB)"), "{err}");
    }
}

#[test]
fn the_log_cap_defaults_to_64_mib_and_follows_its_key() {
    assert_eq!(load_from(None, env(&[])).unwrap().runner.max_log_bytes, 64 << 20);
    let cfg = load_from(None, env(&[("BATON_RUNNER_MAX_LOG_BYTES", "1048576")])).unwrap();
    assert_eq!(cfg.runner.max_log_bytes, 1 << 20);
    assert!(cfg.to_masked_toml().contains("max_log_bytes = 1048576"), "{}", cfg.to_masked_toml());
}

#[test]
fn a_cluster_node_is_accepted_and_builds_its_redis_url_from_parts() {
    let cfg = load_from(
        None,
        env(&[
            ("BATON_HA_ENABLED", "true"),
            ("BATON_HA_NODE_ID", "node-1"),
            ("BATON_DATABASE_URL", "mysql://b:p@db/b"),
            ("BATON_HA_REDIS_ADDR", "cache:6380"),
            ("BATON_HA_REDIS_DB", "2"),
            ("BATON_HA_REDIS_PASS", "p@ss word"),
            ("BATON_HA_REDIS_TLS", "true"),
            ("BATON_HA_REDIS_TLS_SKIP_VERIFY", "true"),
            ("BATON_CLUSTER_SECRET", "c-cluster-secret-of-32-characters"),
            ("BATON_SECRETS_ENCRYPTION_KEY", "k"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.redis_url().unwrap(), "rediss://:p%40ss%20word@cache:6380/2#insecure");
    assert!(!cfg.to_masked_toml().contains("p@ss"));
}

#[test]
fn masked_output_hides_every_secret() {
    let cfg = load_from(
        None,
        env(&[
            ("BATON_DATABASE_URL", "postgres://baton:hunter2@db/baton"),
            ("BATON_CLUSTER_SECRET", "s3cr3t-cluster-of-32-characters-x"),
            ("BATON_ADMIN_PASSWORD", "p4ssw0rd"),
        ]),
    )
    .unwrap();
    let out = cfg.to_masked_toml();
    for secret in ["hunter2", "s3cr3t-cluster", "p4ssw0rd"] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        assert!(!format!("{cfg:?}").contains(secret), "{secret} in Debug");
    }
    assert!(out.contains("postgres://baton:********@db/baton"), "{out}");
}

#[test]
fn a_short_cluster_secret_is_refused_naming_the_key_and_the_fix() {
    let err = load_from(None, env(&[("BATON_CLUSTER_SECRET", "too-short")])).unwrap_err().to_string();
    assert!(err.contains("cluster.secret") && err.contains("at least 32") && err.contains("openssl rand"), "{err}");
    let err = load_from(None, env(&[("BATON_CLUSTER_SECRET", "")])).unwrap_err().to_string();
    assert!(err.contains("cluster.secret"), "{err}");
    let ok = "x".repeat(32);
    assert!(load_from(None, env(&[("BATON_CLUSTER_SECRET", &ok)])).is_ok());
}

#[test]
fn the_internal_port_is_separate_and_tls_needs_both_files() {
    let cfg = load_from(None, env(&[])).unwrap();
    assert_eq!(cfg.cluster.listen, "0.0.0.0:7001");
    assert!(!cfg.grpc.tls.enabled() && !cfg.cluster.tls.enabled());
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "x").unwrap();
    let cert = cert.display().to_string();
    let err = load_from(None, env(&[("BATON_GRPC_TLS_CERT_FILE", &cert)])).unwrap_err().to_string();
    assert!(err.contains("grpc.tls.key_file") && err.contains("both"), "{err}");
    let missing = dir.path().join("nope.pem").display().to_string();
    let vars = env(&[("BATON_CLUSTER_TLS_CERT_FILE", &cert), ("BATON_CLUSTER_TLS_KEY_FILE", &missing)]);
    let err = load_from(None, vars).unwrap_err().to_string();
    assert!(err.contains("cluster.tls.key_file") && err.contains("not a readable file"), "{err}");
    let err = load_from(None, env(&[("BATON_CLUSTER_DISPATCHER_URL", "baton:7001")])).unwrap_err().to_string();
    assert!(err.contains("cluster.dispatcher_url"), "{err}");
}

#[test]
fn debug_never_shows_a_secret() {
    let cfg = load_from(
        None,
        env(&[
            ("BATON_DATABASE_URL", "postgres://u:db-password-1@h/db"),
            ("BATON_HA_REDIS_URL", "redis://:redis-password-2@r:6379/0"),
            ("BATON_HA_REDIS_PASS", "redis-password-3"),
            ("BATON_CLUSTER_SECRET", "cluster-secret-4-cluster-secret-4-xx"),
            ("BATON_ADMIN_PASSWORD", "admin-password-5"),
            ("BATON_SECRETS_ENCRYPTION_KEY", "encryption-key-6"),
        ]),
    )
    .unwrap();
    for printed in [format!("{cfg:?}"), format!("{:?}", cfg.database), format!("{:?}", cfg.ha), format!("{:#?}", cfg)] {
        for secret in [
            "db-password-1",
            "redis-password-2",
            "redis-password-3",
            "cluster-secret-4",
            "admin-password-5",
            "encryption-key-6",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("********"), "{printed}");
    }
}

#[test]
fn trusted_proxies_and_limits_are_checked() {
    let cfg = load_from(None, env(&[("BATON_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,fd00::/8")])).unwrap();
    assert_eq!(cfg.http.trusted_proxies, vec!["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
    let nets: Vec<String> = cfg.trusted_proxies().iter().map(ToString::to_string).collect();
    assert_eq!(nets, vec!["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]);
    assert!(load_from(None, env(&[])).unwrap().trusted_proxies().is_empty(), "no proxy is trusted by default");

    let err = load_from(None, env(&[("BATON_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,lb.internal")])).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("http.trusted_proxies") && err.contains("lb.internal"), "{err}");
    let err = load_from(None, env(&[("BATON_LOGIN_WINDOW_SECONDS", "0")])).unwrap_err().to_string();
    assert!(err.contains("login.window_seconds") && err.contains("900"), "{err}");
    let err = load_from(None, env(&[("BATON_HTTP_MAX_CONNECTIONS", "0")])).unwrap_err().to_string();
    assert!(err.contains("http.max_connections"), "{err}");
    for n in ["0", "1"] {
        let err = load_from(None, env(&[("BATON_DATABASE_MAX_CONNECTIONS", n)])).unwrap_err().to_string();
        assert!(err.contains("database.max_connections") && err.contains("at least 2"), "{err}");
    }
    assert_eq!(load_from(None, env(&[("BATON_DATABASE_MAX_CONNECTIONS", "2")])).unwrap().database.max_connections, 2);
}

#[test]
fn worker_threads_default_to_half_the_cpus_and_follow_their_key() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let cfg = load_from(None, env(&[])).unwrap();
    assert_eq!(cfg.runtime.worker_threads, 0);
    assert_eq!(cfg.runtime.workers(), cpus.div_ceil(2));
    assert!(cfg.runtime.workers() >= 1);
    let cfg = load_from(None, env(&[("BATON_RUNTIME_WORKER_THREADS", "3")])).unwrap();
    assert_eq!(cfg.runtime.workers(), 3);
    let err = load_from(None, env(&[("BATON_RUNTIME_WORKER_THREADS", "1025")])).unwrap_err().to_string();
    assert!(err.contains("runtime.worker_threads") && err.contains("between 1 and 1024"), "{err}");
}
