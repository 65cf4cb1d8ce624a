//! The one table of the permission matrix: for every route of `baton_gateway::ROUTES`, who may call
//! it (API.md, "Roles"), the status of an allowed call, and what a call needs (a body, a query, a
//! fixture of its own). A route without a rule, or a rule for a route that is gone, fails the
//! matrix by name.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// A role in a project, weakest first (API.md's role table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Runner,
    Manager,
    Owner,
}

impl Role {
    /// How a 403 names the role an action needs.
    fn needed(self) -> &'static str {
        match self {
            Role::Viewer => "the viewer role",
            Role::Runner => "the runner role",
            Role::Manager => "the manager role",
            Role::Owner => "the owner role",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, without credentials.
    Public,
    /// Anyone authenticated.
    Anyone,
    /// Global administrators.
    Admin,
    /// Members of the project with at least this role (for `/runners/{id}`, of the runner's
    /// project), and administrators.
    Project(Role),
}

/// The kinds of caller the matrix sends every route as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Admin,
    Owner,
    Manager,
    Runner,
    Viewer,
    /// A user who is a member of no project the matrix uses.
    Outsider,
    Anonymous,
    /// An API token of the owner, narrowed to the shared project and the viewer role.
    OwnerTokenNarrowed,
    /// An API token of the administrator, narrowed to the viewer role: not an administrator.
    AdminTokenNarrowed,
}

impl Who {
    pub const ALL: [Who; 9] = [
        Who::Admin,
        Who::Owner,
        Who::Manager,
        Who::Runner,
        Who::Viewer,
        Who::Outsider,
        Who::Anonymous,
        Who::OwnerTokenNarrowed,
        Who::AdminTokenNarrowed,
    ];

    /// The caller's role in a project of the matrix (all have the same members), `None` if they
    /// cannot see it; `shared` says whether it is the shared project the owner's token sees.
    fn role(self, shared: bool) -> Option<Role> {
        match self {
            Who::Admin | Who::Owner => Some(Role::Owner),
            Who::Manager => Some(Role::Manager),
            Who::Runner => Some(Role::Runner),
            Who::Viewer | Who::AdminTokenNarrowed => Some(Role::Viewer),
            Who::OwnerTokenNarrowed => shared.then_some(Role::Viewer),
            Who::Outsider | Who::Anonymous => None,
        }
    }
}

/// What the matrix expects of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The rule's success status.
    Allowed,
    /// 403, with a message containing this.
    Forbidden(&'static str),
    NotFound,
    Unauthenticated,
}

/// What `rule` means for `who`; `shared` as in [`Who::role`].
pub fn want(rule: Rule, who: Who, shared: bool) -> Want {
    match (rule, who) {
        (Rule::Public, _) => Want::Allowed,
        (_, Who::Anonymous) => Want::Unauthenticated,
        (Rule::Anyone, _) | (_, Who::Admin) => Want::Allowed,
        (Rule::Admin, _) => Want::Forbidden("administrators"),
        (Rule::Project(need), _) => match who.role(shared) {
            None => Want::NotFound,
            Some(r) if r >= need => Want::Allowed,
            Some(_) => Want::Forbidden(need.needed()),
        },
    }
}

/// A fixture a call consumes, made afresh (by the administrator) before each call so that every
/// caller finds one to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    /// The shared fixtures do.
    No,
    /// A project with the same members as the shared one (`{pid}`).
    Project,
    Template,
    Schedule,
    Secret,
    /// A queued task (`{id}` of `tasks`).
    Task,
    /// A task that has ended (cancelled while queued).
    FinishedTask,
    /// The spare user as a member of the shared project (`{uid}` of `members`).
    Member,
    User,
    /// An API token of the caller's own (`{id}` of `tokens`).
    Token,
    /// A runner of the shared project (`{id}` of `runners`).
    Runner,
}

/// What a request body may depend on.
pub struct Ctx {
    /// Unique for each call, for names that must not repeat.
    pub n: u64,
    pub template: i64,
    /// The calling user's password.
    pub password: String,
    /// A user who is in no project, whose login always works.
    pub spare: (String, String),
}

type MakeBody = fn(&Ctx) -> Value;

/// One route's rule.
pub struct Row {
    pub method: &'static str,
    pub path: &'static str,
    pub rule: Rule,
    /// The status of an allowed call.
    pub ok: u16,
    pub fresh: Fresh,
    pub body: Option<MakeBody>,
    /// A query string the call needs to succeed (without the `?`).
    pub query: Option<&'static str>,
}

impl Row {
    fn new(method: &'static str, path: &'static str, rule: Rule, ok: u16) -> Row {
        Row { method, path, rule, ok, fresh: Fresh::No, body: None, query: None }
    }

    fn body(self, body: MakeBody) -> Row {
        Row { body: Some(body), ..self }
    }

    fn fresh(self, fresh: Fresh) -> Row {
        Row { fresh, ..self }
    }

    fn query(self, query: &'static str) -> Row {
        Row { query: Some(query), ..self }
    }
}

/// Every route and its rule.
pub fn table() -> Vec<Row> {
    use Role::{Manager, Owner, Runner, Viewer};
    use Rule::{Admin, Anyone, Project, Public};
    let r = Row::new;
    vec![
        r("GET", "/api/health", Public, 200),
        r("GET", "/api/ready", Public, 200),
        r("GET", "/api/v1/openapi.json", Public, 200),
        r("GET", "/metrics", Public, 200),
        r("POST", "/api/v1/auth/login", Public, 200).body(|c| json!({"username": c.spare.0, "password": c.spare.1})),
        // A browser whose session expired must still be able to clear its cookie.
        r("POST", "/api/v1/auth/logout", Public, 204).body(|_| json!({})),
        r("GET", "/api/v1/users/me", Anyone, 200),
        r("PATCH", "/api/v1/users/me", Anyone, 200)
            .body(|c| json!({"current_password": c.password, "password": c.password})),
        r("GET", "/api/v1/users", Admin, 200),
        r("POST", "/api/v1/users", Admin, 201)
            .body(|c| json!({"username": format!("made-{}", c.n), "password": "made-password"})),
        r("PATCH", "/api/v1/users/{uid}", Admin, 200).body(|_| json!({"admin": false})),
        r("DELETE", "/api/v1/users/{uid}", Admin, 204).fresh(Fresh::User),
        r("GET", "/api/v1/tokens", Anyone, 200),
        r("POST", "/api/v1/tokens", Anyone, 201).body(|c| json!({"name": format!("t{}", c.n)})),
        r("DELETE", "/api/v1/tokens/{id}", Anyone, 204).fresh(Fresh::Token),
        r("GET", "/api/v1/projects", Anyone, 200),
        r("POST", "/api/v1/projects", Admin, 201).body(|c| json!({"name": format!("made-{}", c.n)})),
        r("GET", "/api/v1/projects/{pid}", Project(Viewer), 200),
        r("PATCH", "/api/v1/projects/{pid}", Project(Owner), 200).body(|c| json!({"description": format!("d{}", c.n)})),
        r("DELETE", "/api/v1/projects/{pid}", Project(Owner), 204).fresh(Fresh::Project),
        r("GET", "/api/v1/projects/{pid}/members", Project(Viewer), 200),
        r("PUT", "/api/v1/projects/{pid}/members/{uid}", Project(Owner), 200).body(|_| json!({"role": "viewer"})),
        r("DELETE", "/api/v1/projects/{pid}/members/{uid}", Project(Owner), 204).fresh(Fresh::Member),
        r("GET", "/api/v1/projects/{pid}/secrets", Project(Viewer), 200),
        r("POST", "/api/v1/projects/{pid}/secrets", Project(Manager), 201)
            .body(|c| json!({"name": format!("MADE_{}", c.n), "value": "made-value"})),
        r("PUT", "/api/v1/projects/{pid}/secrets/{name}", Project(Manager), 200)
            .body(|c| json!({"value": format!("value-{}", c.n)})),
        r("DELETE", "/api/v1/projects/{pid}/secrets/{name}", Project(Manager), 204).fresh(Fresh::Secret),
        r("GET", "/api/v1/projects/{pid}/templates", Project(Viewer), 200),
        r("POST", "/api/v1/projects/{pid}/templates", Project(Manager), 201)
            .body(|c| json!({"name": format!("made-{}", c.n), "script": "true"})),
        r("GET", "/api/v1/projects/{pid}/templates/{tid}", Project(Viewer), 200),
        r("PATCH", "/api/v1/projects/{pid}/templates/{tid}", Project(Manager), 200)
            .body(|c| json!({"script": format!("echo {}", c.n)})),
        r("DELETE", "/api/v1/projects/{pid}/templates/{tid}", Project(Manager), 204).fresh(Fresh::Template),
        r("POST", "/api/v1/projects/{pid}/tasks", Project(Runner), 201).body(|c| json!({"template_id": c.template})),
        r("GET", "/api/v1/projects/{pid}/tasks", Project(Viewer), 200),
        r("GET", "/api/v1/projects/{pid}/tasks/{id}", Project(Viewer), 200),
        r("GET", "/api/v1/projects/{pid}/tasks/{id}/attempts", Project(Viewer), 200),
        r("GET", "/api/v1/projects/{pid}/tasks/{id}/log", Project(Viewer), 200),
        r("GET", "/api/v1/projects/{pid}/tasks/{id}/log/raw", Project(Viewer), 200),
        // A finished task of its own, so that the event stream ends (after `event: end`).
        r("GET", "/api/v1/projects/{pid}/tasks/{id}/log/stream", Project(Viewer), 200).fresh(Fresh::FinishedTask),
        // A queued task of its own, so that the allowed answer is 202, not 409.
        r("POST", "/api/v1/projects/{pid}/tasks/{id}/cancel", Project(Runner), 202).fresh(Fresh::Task),
        r("GET", "/api/v1/projects/{pid}/schedules", Project(Viewer), 200),
        r("POST", "/api/v1/projects/{pid}/schedules", Project(Manager), 201)
            .body(|c| json!({"template_id": c.template, "cron": "0 0 1 1 *"})),
        r("GET", "/api/v1/projects/{pid}/schedules/preview", Project(Viewer), 200)
            .query("cron=0+3+*+*+*&timezone=Europe%2FBerlin&count=3"),
        r("GET", "/api/v1/projects/{pid}/schedules/{sid}", Project(Viewer), 200),
        r("PATCH", "/api/v1/projects/{pid}/schedules/{sid}", Project(Manager), 200).body(|_| json!({"enabled": true})),
        r("DELETE", "/api/v1/projects/{pid}/schedules/{sid}", Project(Manager), 204).fresh(Fresh::Schedule),
        r("GET", "/api/v1/projects/{pid}/schedules/{sid}/next", Project(Viewer), 200),
        r("GET", "/api/v1/projects/{pid}/schedules/{sid}/fires", Project(Viewer), 200),
        r("POST", "/api/v1/projects/{pid}/runner-registration-tokens", Project(Owner), 201).body(|_| json!({})),
        r("GET", "/api/v1/projects/{pid}/audit", Project(Owner), 200),
        r("POST", "/api/v1/runner-registration-tokens", Admin, 201).body(|_| json!({})),
        // Everyone may list; each sees the runners of the projects they own (tested in `runners`).
        r("GET", "/api/v1/runners", Anyone, 200),
        r("GET", "/api/v1/runners/{id}", Project(Owner), 200),
        r("PATCH", "/api/v1/runners/{id}", Project(Owner), 200).body(|_| json!({"paused": true})),
        r("DELETE", "/api/v1/runners/{id}", Project(Owner), 204).fresh(Fresh::Runner),
        r("GET", "/api/v1/audit", Admin, 200),
        r("GET", "/api/v1/cluster", Admin, 200),
        r("POST", "/api/v1/cluster/nodes/{node_id}/drain", Admin, 200).body(|_| json!({"draining": false})),
        // Without an upgrade a caller gets 400 (this route speaks WebSocket only); who may read
        // which topic is checked per subscription (the `events` tests).
        r("GET", "/api/v1/ws", Anyone, 400),
    ]
}

/// Asserts that the table has exactly one rule for every route of the gateway, and no other.
pub fn assert_covers_every_route(table: &[Row]) {
    let mut ours = BTreeSet::new();
    for row in table {
        assert!(ours.insert((row.method, row.path)), "two rules for {} {}", row.method, row.path);
    }
    let routes: BTreeSet<(&str, &str)> = baton_gateway::ROUTES.iter().copied().collect();
    let missing: Vec<String> = routes.difference(&ours).map(|(m, p)| format!("{m} {p}")).collect();
    let gone: Vec<String> = ours.difference(&routes).map(|(m, p)| format!("{m} {p}")).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "routes without a rule in the permission table: {missing:?}; rules for routes the gateway does not have: \
         {gone:?}"
    );
}
