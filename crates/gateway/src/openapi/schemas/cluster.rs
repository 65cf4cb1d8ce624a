//! Probes, runners and their registration tokens, the cluster view and the audit log.

use utoipa::ToSchema;

/// The answer of `/api/health`.
#[derive(ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// The answer of `/api/ready` while the node can serve.
#[derive(ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// `degraded` while the coordination service (Redis) is unreachable: the node goes on, polling SQL.
    pub coordination: String,
}

/// A runner registration token, shown once.
#[derive(ToSchema)]
pub struct RegistrationToken {
    pub id: i64,
    /// What `baton runner register --token` takes.
    pub token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// How many runners it may register; 0 = any number until it expires.
    pub max_uses: i64,
}

/// A registered runner.
#[derive(ToSchema)]
pub struct Runner {
    pub id: i64,
    pub name: String,
    pub labels: Vec<String>,
    /// Tasks it runs at once.
    pub capacity: i32,
    /// Tasks it runs now.
    pub running: i64,
    /// A paused runner takes no new task.
    pub paused: bool,
    /// Seen within its lease.
    pub online: bool,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    /// The runner's Baton version.
    pub version: String,
    /// The node its stream is connected to.
    pub node_id: Option<String>,
    /// The only project it serves, if it was registered for one.
    pub project_id: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The cluster as any node sees it.
#[derive(ToSchema)]
pub struct Cluster {
    /// The live nodes.
    pub nodes: Vec<Node>,
    pub database: Database,
    /// `null` without Redis (a single node).
    pub redis: Option<Redis>,
}

/// A live node of the cluster.
#[derive(ToSchema)]
pub struct Node {
    pub id: String,
    /// Which of `gateway`, `scheduler`, `dispatcher` it runs.
    pub services: Vec<String>,
    pub version: String,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub last_seen: String,
    pub draining: bool,
    pub ready: bool,
    /// The most database connections its pool may open (its `database.max_connections`; 0 for
    /// a node that does not say).
    pub database_pool: u32,
}

/// The database, as the answering node sees it.
#[derive(ToSchema)]
pub struct Database {
    /// `sqlite`, `postgres` or `mysql`.
    pub dialect: String,
    pub ok: bool,
    /// The server's connection limit and what is open on it; `null` on SQLite, and when the
    /// database does not answer.
    pub connections: Option<Connections>,
}

/// Connections on the database server, from every client: each node's pool opens up to its
/// `database.max_connections`.
#[derive(ToSchema)]
pub struct Connections {
    /// Connections the server allows ordinary clients (PostgreSQL: `max_connections` less
    /// `superuser_reserved_connections`).
    pub limit: u64,
    /// Client connections open now.
    pub open: u64,
    /// The connections the live nodes' pools may open together (the sum of their
    /// `database_pool`): more than `limit`, and under load nodes fail to connect.
    pub pools: u64,
}

/// Redis, as the answering node sees it.
#[derive(ToSchema)]
pub struct Redis {
    pub ok: bool,
}

/// A write through the API.
#[derive(ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    #[schema(format = DateTime)]
    pub time: String,
    pub user_id: Option<i64>,
    pub username: String,
    /// The API token the request came with, if any.
    pub token_id: Option<i64>,
    pub client_ip: String,
    /// The node that served the request.
    pub node: String,
    /// The route, e.g. `POST /api/v1/projects/{pid}/tasks`.
    pub action: String,
    /// What it acted on.
    pub target: String,
    pub detail: String,
    pub project_id: Option<i64>,
    /// The HTTP status of the answer.
    pub status: i32,
}
