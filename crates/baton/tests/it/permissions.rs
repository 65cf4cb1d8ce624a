//! Teams (API.md, "Roles"): every route against the role table for every kind of caller (`matrix`,
//! generated from the one table in `table`), members and roles, narrowed API tokens, the audit log
//! and its client addresses, and runners that serve one project.

mod audit;
mod matrix;
mod members;
mod runners;
mod table;
mod tokens;

use baton_proto::v1::RegisterRequest;
use baton_proto::v1::runner_client::RunnerClient;
use baton_testkit::{Client, Resp, TestServer};
use serde_json::{Value, json};

/// A user made through the API (never an administrator), logged in with a session of their own.
pub struct User {
    pub id: i64,
    pub name: String,
    pub password: String,
    pub client: Client,
}

impl User {
    /// A new API token of this user, narrowed by `narrow` (`{project_id?, role?}`): its id and a
    /// client that sends it.
    pub async fn token(&self, narrow: Value) -> (i64, Client) {
        token_of(&self.client, narrow).await
    }
}

/// A new API token of `c`'s user, narrowed by `narrow`: its id and a client that sends it.
pub async fn token_of(c: &Client, mut narrow: Value) -> (i64, Client) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    narrow["name"] = json!(format!("token-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let t = c.post("/api/v1/tokens", narrow).await.expect(201);
    (t["id"].as_i64().unwrap(), c.with_token(t["token"].as_str().unwrap()))
}

/// Creates the user `name` (password `<name>-password`) through the API and logs them in.
pub async fn user(srv: &TestServer, name: &str) -> User {
    let password = format!("{name}-password");
    let u = srv.client.post("/api/v1/users", json!({"username": name, "password": password})).await.expect(201);
    let client = srv.anonymous();
    client.login(name, &password).await;
    User { id: u["id"].as_i64().unwrap(), name: name.to_owned(), password, client }
}

/// `PUT path` with a JSON body.
pub async fn put(c: &Client, path: &str, body: Value) -> Resp {
    c.send(reqwest::Method::PUT, path, Some(body)).await
}

/// Makes user `uid` a member of `pid` with `role`, or changes their role, as `c`.
pub async fn set_role(c: &Client, pid: i64, uid: i64, role: &str) -> Resp {
    put(c, &format!("/api/v1/projects/{pid}/members/{uid}"), json!({ "role": role })).await
}

/// A project made by the administrator (its first owner), with one member of each role.
pub struct Team {
    pub pid: i64,
    pub owner: User,
    pub manager: User,
    pub runner: User,
    pub viewer: User,
}

/// A project with an owner, a manager, a runner and a viewer named `<prefix>-<role>`.
pub async fn team(srv: &TestServer, prefix: &str) -> Team {
    let pid = srv.client.project().await;
    let mut members = Vec::new();
    for role in ["owner", "manager", "runner", "viewer"] {
        let u = user(srv, &format!("{prefix}-{role}")).await;
        set_role(&srv.client, pid, u.id, role).await.expect(200);
        members.push(u);
    }
    let [owner, manager, runner, viewer] = <[User; 4]>::try_from(members).ok().unwrap();
    Team { pid, owner, manager, runner, viewer }
}

/// Asserts that `r` is an API error with `status` and `code` whose message mentions `mention`.
pub fn assert_error(r: &Resp, status: u16, code: &str, mention: &str) {
    assert_eq!(r.status.as_u16(), status, "unexpected status; body: {}", r.text);
    assert_eq!(r.error_code(), code, "unexpected error code; body: {}", r.text);
    assert!(r.error_message().contains(mention), "the message does not mention {mention:?}: {}", r.text);
}

/// A 403 whose message names the role the action needs.
pub fn assert_needs(r: &Resp, role: &str) {
    assert_error(r, 403, "forbidden", &format!("the {role} role"));
}

/// Registers a runner named `name` with the registration token `token` over gRPC, as
/// `baton runner register` does; returns the runner's id.
pub async fn register_runner(srv: &TestServer, token: &str, name: &str) -> i64 {
    let mut grpc = RunnerClient::connect(srv.grpc_url()).await.expect("the runner port answers");
    let req = RegisterRequest {
        token: token.to_owned(),
        name: name.to_owned(),
        labels: Vec::new(),
        capacity: 1,
        version: "0.1.0".into(),
    };
    grpc.register(req).await.expect("the runner registers").into_inner().runner_id
}

/// The ids of a list page's items.
pub fn ids(page: &Value) -> Vec<i64> {
    items(page).iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

/// The items of a list page.
pub fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap_or_else(|| panic!("not a list: {page}"))
}
