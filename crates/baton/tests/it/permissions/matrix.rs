//! The permission matrix: every route of the gateway, sent by every kind of caller, answers what
//! the role table of API.md says (`table.rs`): the success status when allowed, a 403 naming the
//! role (or the administrators) when refused on a visible project or an admin route, a 404 when
//! the project is not visible, a 401 without credentials.

use std::sync::atomic::{AtomicU64, Ordering};

use baton_testkit::{ADMIN_PASSWORD, Client, Resp, TestServer};
use serde_json::json;

use super::table::{self, Ctx, Fresh, Row, Want, Who};
use super::{User, register_runner, set_role, token_of, user};

/// Everything the calls act on. The shared project has one member of each role; fixtures a call
/// consumes are made afresh for each call (see [`Fresh`]).
struct World {
    /// The administrator's token: it makes every fixture, and no call of the matrix can end it.
    admin: Client,
    owner: User,
    manager: User,
    runner: User,
    viewer: User,
    /// In no project; logs in, is patched, is made a member and removed again.
    spare: User,
    /// Each kind of caller's client (API tokens: a password change, which the matrix makes as
    /// every caller, ends sessions) and their user's password.
    callers: Vec<(Who, Client, String)>,
    shared: Ids,
    n: AtomicU64,
}

/// What the placeholders of a route's path stand for.
#[derive(Debug, Clone)]
struct Ids {
    project: i64,
    template: i64,
    schedule: i64,
    secret: String,
    task: i64,
    runner: i64,
    user: i64,
    member: i64,
    token: i64,
    node: String,
}

impl Ids {
    /// `path` with each `{placeholder}` replaced by the id of the collection it follows.
    fn fill(&self, path: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut after = "";
        for seg in path.split('/') {
            let filled = if seg.starts_with('{') {
                match after {
                    "projects" => self.project.to_string(),
                    "templates" => self.template.to_string(),
                    "schedules" => self.schedule.to_string(),
                    "secrets" => self.secret.clone(),
                    "tasks" => self.task.to_string(),
                    "runners" => self.runner.to_string(),
                    "users" => self.user.to_string(),
                    "members" => self.member.to_string(),
                    "tokens" => self.token.to_string(),
                    "nodes" => self.node.clone(),
                    other => panic!("the matrix has no fixture for {seg} after /{other}/ in {path}"),
                }
            } else {
                seg.to_owned()
            };
            out.push(filled);
            after = seg;
        }
        out.join("/")
    }
}

impl World {
    async fn build(srv: &TestServer) -> World {
        let (_, admin) = token_of(&srv.client, json!({})).await;
        let pid = admin.project().await;
        let mut users = Vec::new();
        for name in ["owner", "manager", "runner", "viewer", "outsider", "spare"] {
            users.push(user(srv, name).await);
        }
        let [owner, manager, runner, viewer, outsider, spare] = <[User; 6]>::try_from(users).ok().unwrap();
        let template = admin.template(pid, json!({"script": "true"})).await;
        add_members(&admin, pid, [&owner, &manager, &runner, &viewer]).await;
        let mut callers = vec![(Who::Admin, admin.clone(), ADMIN_PASSWORD.to_owned())];
        for (who, u) in [
            (Who::Owner, &owner),
            (Who::Manager, &manager),
            (Who::Runner, &runner),
            (Who::Viewer, &viewer),
            (Who::Outsider, &outsider),
        ] {
            callers.push((who, u.token(json!({})).await.1, u.password.clone()));
        }
        callers.push((Who::Anonymous, srv.anonymous(), "no-password".into()));
        let narrowed = owner.token(json!({"project_id": pid, "role": "viewer"})).await.1;
        callers.push((Who::OwnerTokenNarrowed, narrowed, owner.password.clone()));
        let narrowed = token_of(&srv.client, json!({"role": "viewer"})).await.1;
        callers.push((Who::AdminTokenNarrowed, narrowed, ADMIN_PASSWORD.to_owned()));
        let mut world = World {
            callers,
            shared: Ids {
                project: pid,
                template,
                schedule: 0,
                secret: "SHARED".into(),
                task: 0,
                runner: 0,
                user: spare.id,
                member: spare.id,
                token: 0,
                node: srv.node_id(),
            },
            admin,
            owner,
            manager,
            runner,
            viewer,
            spare,
            n: AtomicU64::new(0),
        };
        let body = json!({"template_id": template, "cron": "0 0 1 1 *"});
        let s = world.admin.post(&format!("/api/v1/projects/{pid}/schedules"), body).await.expect(201);
        world.shared.schedule = s["id"].as_i64().unwrap();
        let secret = json!({"name": "SHARED", "value": "shared-value"});
        world.admin.post(&format!("/api/v1/projects/{pid}/secrets"), secret).await.expect(201);
        world.shared.task = world.admin.submit(pid, template).await;
        world.shared.runner = world.runner_of(srv, pid).await;
        world
    }

    /// Registers a runner of project `pid` with a token the administrator mints for it.
    async fn runner_of(&self, srv: &TestServer, pid: i64) -> i64 {
        let t = self.admin.post(&format!("/api/v1/projects/{pid}/runner-registration-tokens"), json!({})).await;
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        register_runner(srv, t.expect(201)["token"].as_str().unwrap(), &format!("matrix-{n}")).await
    }

    /// The client a caller sends with, and the password of their user. The anonymous caller's is
    /// new each time: a login of the matrix must not leave it a session cookie.
    fn caller(&self, who: Who) -> (Client, &str) {
        let (_, c, password) = self.callers.iter().find(|(w, _, _)| *w == who).unwrap();
        match who {
            Who::Anonymous => (Client::new(&c.base), password),
            _ => (c.clone(), password),
        }
    }

    /// The ids for one call of `row` by `who`, with its fresh fixture made.
    async fn ids_for(&self, srv: &TestServer, row: &Row, who: Who) -> Ids {
        let mut ids = self.shared.clone();
        let (a, pid, n) = (&self.admin, ids.project, self.n.fetch_add(1, Ordering::Relaxed));
        let id = |v: serde_json::Value| v["id"].as_i64().unwrap();
        match row.fresh {
            Fresh::No => {}
            Fresh::Project => {
                ids.project = a.project().await;
                add_members(a, ids.project, [&self.owner, &self.manager, &self.runner, &self.viewer]).await;
            }
            Fresh::Template => ids.template = a.template(pid, json!({"script": "true"})).await,
            Fresh::Schedule => {
                let body = json!({"template_id": ids.template, "cron": "0 0 1 1 *"});
                ids.schedule = id(a.post(&format!("/api/v1/projects/{pid}/schedules"), body).await.expect(201));
            }
            Fresh::Secret => {
                ids.secret = format!("FRESH_{n}");
                let body = json!({"name": ids.secret, "value": "fresh-value"});
                a.post(&format!("/api/v1/projects/{pid}/secrets"), body).await.expect(201);
            }
            Fresh::Task => ids.task = a.submit(pid, ids.template).await,
            Fresh::FinishedTask => {
                ids.task = a.submit(pid, ids.template).await;
                a.post(&format!("/api/v1/projects/{pid}/tasks/{}/cancel", ids.task), json!({})).await.expect(202);
            }
            Fresh::Member => {
                set_role(a, pid, self.spare.id, "viewer").await.expect(200);
            }
            Fresh::User => {
                let body = json!({"username": format!("fresh-{n}"), "password": "fresh-password"});
                ids.user = id(a.post("/api/v1/users", body).await.expect(201));
            }
            Fresh::Token => {
                // The caller's own token; the anonymous caller gets the administrator's.
                let maker = if who == Who::Anonymous { a.clone() } else { self.caller(who).0 };
                ids.token = token_of(&maker, json!({})).await.0;
            }
            Fresh::Runner => ids.runner = self.runner_of(srv, pid).await,
        }
        ids
    }

    /// Sends one call of `row` as `who`; returns a description of what disagrees with the table.
    async fn check(&self, srv: &TestServer, row: &Row, who: Who) -> Option<String> {
        let ids = self.ids_for(srv, row, who).await;
        let (client, password) = self.caller(who);
        let ctx = Ctx {
            n: self.n.fetch_add(1, Ordering::Relaxed),
            template: ids.template,
            password: password.to_owned(),
            spare: (self.spare.name.clone(), self.spare.password.clone()),
        };
        let path = match row.query {
            Some(q) => format!("{}?{q}", ids.fill(row.path)),
            None => ids.fill(row.path),
        };
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
        let r = client.send(method, &path, row.body.map(|b| b(&ctx))).await;
        let want = table::want(row.rule, who, ids.project == self.shared.project);
        let problem = judge(&r, want, row.ok)?;
        Some(format!("{} {path} ({}) as {who:?}: got {}, {problem}; body: {}", row.method, row.path, r.status, r.text))
    }
}

/// Makes the users owner, manager, runner and viewer of `pid`, in this order.
async fn add_members(admin: &Client, pid: i64, users: [&User; 4]) {
    for (u, role) in users.into_iter().zip(["owner", "manager", "runner", "viewer"]) {
        set_role(admin, pid, u.id, role).await.expect(200);
    }
}

/// What is wrong with `r` for `want`, if anything.
fn judge(r: &Resp, want: Want, ok: u16) -> Option<String> {
    let status = r.status.as_u16();
    if r.headers.get("x-baton-node").is_none() {
        return Some("no X-Baton-Node header".into());
    }
    let (status_want, code, mention) = match want {
        Want::Allowed => return (status != ok).then(|| format!("allowed, so {ok} was expected")),
        Want::Forbidden(mention) => (403, "forbidden", mention),
        Want::NotFound => (404, "not_found", ""),
        Want::Unauthenticated => (401, "unauthenticated", ""),
    };
    if status != status_want || r.error_code() != code {
        return Some(format!("{status_want} {code} was expected"));
    }
    (!r.error_message().contains(mention)).then(|| format!("the message should mention {mention:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_every_kind_of_caller_as_the_role_table_says() {
    let table = table::table();
    table::assert_covers_every_route(&table);
    let srv = TestServer::start_without_runner().await;
    let world = World::build(&srv).await;
    let started = std::time::Instant::now();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for row in &table {
        for who in Who::ALL {
            wrong.extend(world.check(&srv, row, who).await);
            checked += 1;
        }
    }
    eprintln!(
        "permission matrix: {checked} (route, caller) cases ({} routes x {} callers) in {:?}",
        table.len(),
        Who::ALL.len(),
        started.elapsed()
    );
    assert!(wrong.is_empty(), "{} of {checked} cases disagree with the role table:\n{}", wrong.len(), wrong.join("\n"));
    assert!(checked >= baton_gateway::ROUTES.len() * 7, "only {checked} cases were checked");
}

#[tokio::test]
async fn a_project_the_caller_is_not_in_looks_exactly_like_one_that_does_not_exist() {
    let srv = TestServer::start_without_runner().await;
    let pid = srv.client.project().await;
    let tid = srv.client.template(pid, json!({"script": "true"})).await;
    let outsider = user(&srv, "outsider").await;
    let missing = pid + 1000;
    let get = reqwest::Method::GET;
    let calls = [
        (get.clone(), "/api/v1/projects/{pid}", None),
        (get.clone(), "/api/v1/projects/{pid}/templates/{tid}", None),
        (get, "/api/v1/projects/{pid}/audit", None),
        (reqwest::Method::POST, "/api/v1/projects/{pid}/tasks", Some(json!({"template_id": tid}))),
        (reqwest::Method::DELETE, "/api/v1/projects/{pid}", None),
    ];
    for (method, path, body) in calls {
        let at = |p: i64| path.replace("{pid}", &p.to_string()).replace("{tid}", &tid.to_string());
        let hidden = outsider.client.send(method.clone(), &at(pid), body.clone()).await;
        let absent = srv.client.send(method, &at(missing), body).await;
        assert_eq!(
            (hidden.status.as_u16(), absent.status.as_u16()),
            (404, 404),
            "{path}: {} / {}",
            hidden.text,
            absent.text
        );
        assert_eq!(hidden.error_code(), absent.error_code(), "{path}");
        let absent_message = absent.error_message().replace(&missing.to_string(), &pid.to_string());
        assert_eq!(hidden.error_message(), absent_message, "{path}: the answers differ beyond the id");
    }
    srv.client.get(&format!("/api/v1/projects/{pid}")).await.expect(200);
}
