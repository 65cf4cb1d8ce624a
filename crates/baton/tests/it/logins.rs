//! Login throttling (API.md: repeated failures for one user name or one client address → 429
//! with `Retry-After`, across every node of a cluster), the client address behind trusted
//! proxies, and failures spread over two nodes that share Redis and the database.

use baton_config::Config;
use baton_testkit::{ADMIN_PASSWORD, Client, Dialect, PrivateRedis, Resp, TestDatabase, TestServer};
use serde_json::json;

/// A server whose logins are refused after `per_user` failures for a name or `per_address` from
/// an address.
async fn server(per_user: u64, per_address: u64, adjust: impl Fn(&mut Config) + Send + Sync + 'static) -> TestServer {
    TestServer::start_with(move |cfg| {
        cfg.login.max_failures_per_user = per_user;
        cfg.login.max_failures_per_address = per_address;
        adjust(cfg);
    })
    .await
}

async fn login(c: &Client, user: &str, password: &str) -> Resp {
    c.post("/api/v1/auth/login", json!({"username": user, "password": password})).await
}

/// A login sent as if through a proxy that says the client is `forwarded_for`.
async fn login_via(srv: &TestServer, forwarded_for: &str, user: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", srv.url))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts a 429 of API.md: the error body, and a `Retry-After` within the window.
fn assert_throttled(r: &Resp) {
    assert_eq!(r.status.as_u16(), 429, "{}", r.text);
    assert_eq!(r.error_code(), "rate_limited", "{}", r.text);
    assert!(!r.error_message().is_empty());
    let after: u64 = r.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&after), "Retry-After {after}");
}

async fn add_user(srv: &TestServer, name: &str) {
    let body = json!({"username": name, "password": format!("{name}-password")});
    srv.client.post("/api/v1/users", body).await.expect(201);
}

#[tokio::test]
async fn repeated_failures_for_a_user_name_are_throttled_and_a_success_clears_them() {
    let srv = server(3, 100, |_| {}).await;
    add_user(&srv, "bob").await;
    let anon = srv.anonymous();
    for _ in 0..2 {
        assert_eq!(login(&anon, "bob", "wrong-password").await.status.as_u16(), 401);
    }
    login(&anon, "bob", "bob-password").await.expect(200);
    // The success cleared the count: three more failures are needed.
    for _ in 0..3 {
        assert_eq!(login(&anon, "bob", "wrong-password").await.status.as_u16(), 401);
    }
    assert_throttled(&login(&anon, "bob", "wrong-password").await);
    let right = login(&anon, "bob", "bob-password").await;
    assert_throttled(&right);
    assert!(right.headers.get("set-cookie").is_none(), "a throttled login must not log in");
    assert_throttled(&login(&anon, " BOB ", "bob-password").await);
    // Another name from the same address is not affected.
    login(&anon, "admin", ADMIN_PASSWORD).await.expect(200);
}

#[tokio::test]
async fn failures_from_one_address_throttle_every_user_name() {
    let srv = server(100, 4, |_| {}).await;
    add_user(&srv, "carol").await;
    let anon = srv.anonymous();
    for name in ["mallory", "trent", "carol", "peggy"] {
        assert_eq!(login(&anon, name, "guessed-password").await.status.as_u16(), 401, "{name}");
    }
    assert_throttled(&login(&anon, "victor", "guessed-password").await);
    assert_throttled(&login(&anon, "carol", "carol-password").await);
    assert_throttled(&login(&anon, "admin", ADMIN_PASSWORD).await);
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_through_a_trusted_proxy() {
    // Behind a trusted proxy (the test's loopback), each forwarded address counts on its own.
    let trusting = server(100, 2, |cfg| cfg.http.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    for _ in 0..2 {
        assert_eq!(login_via(&trusting, "203.0.113.1", "nobody", "guessed-password").await, 401);
    }
    assert_eq!(login_via(&trusting, "203.0.113.1", "admin", ADMIN_PASSWORD).await, 429);
    // A forged entry left of the proxy's does not move the count elsewhere.
    assert_eq!(login_via(&trusting, "198.51.100.7, 203.0.113.1", "admin", ADMIN_PASSWORD).await, 429);
    assert_eq!(login_via(&trusting, "203.0.113.2", "admin", ADMIN_PASSWORD).await, 200);

    // Without trusted proxies the header is ignored: the peer is the client, however it varies.
    let plain = server(100, 2, |_| {}).await;
    assert_eq!(login_via(&plain, "203.0.113.1", "nobody", "guessed-password").await, 401);
    assert_eq!(login_via(&plain, "203.0.113.2", "nobody", "guessed-password").await, 401);
    assert_eq!(login_via(&plain, "203.0.113.3", "admin", ADMIN_PASSWORD).await, 429);
}

/// Makes `cfg` one node of an HA cluster on `redis`.
fn cluster_node(cfg: &mut Config, node_id: &str, redis_url: &str, prefix: &str) {
    cfg.ha.enabled = true;
    cfg.ha.node_id = Some(node_id.into());
    cfg.runner.name = Some(format!("local@{node_id}"));
    cfg.ha.redis.url = Some(redis_url.into());
    cfg.ha.redis.key_prefix = prefix.into();
    cfg.cluster.secret = Some(baton_config::Secret::new("login-test-cluster-secret"));
    cfg.secrets.encryption_key = Some(baton_config::Secret::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    cfg.login.max_failures_per_user = 4;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_spread_over_two_nodes_are_counted_together() {
    // A cluster needs a shared server database: the run's dialect, or PostgreSQL on SQLite runs.
    let dialect = match Dialect::current() {
        Dialect::Sqlite => Dialect::Postgres,
        other => other,
    };
    let db = TestDatabase::create_on(dialect).await;
    let url = db.url.clone();
    let redis = PrivateRedis::start();
    let (redis_url, prefix) = (redis.url(), format!("logins-{}:", std::process::id()));
    let (r, p) = (redis_url.clone(), prefix.clone());
    let one = TestServer::start_on(db, move |cfg| cluster_node(cfg, "node-1", &r, &p)).await;
    let two =
        TestServer::start_on(TestDatabase::existing(&url), move |cfg| cluster_node(cfg, "node-2", &redis_url, &prefix))
            .await;
    add_user(&one, "dave").await;
    let (a, b) = (one.anonymous(), two.anonymous());
    for c in [&a, &b, &a, &b] {
        assert_eq!(login(c, "dave", "wrong-password").await.status.as_u16(), 401);
    }
    // Two failures on each node: only the shared count reaches the limit of four.
    assert_throttled(&login(&a, "dave", "dave-password").await);
    assert_throttled(&login(&b, "dave", "dave-password").await);
    assert_eq!(b.get("/api/health").await.headers["x-baton-node"], "node-2");
}
