//! The gateway: Baton's HTTP API for people and tools (API.md). It owns users, sessions, API
//! tokens, projects and templates; it reads tasks and logs from SQL, and creates and cancels tasks
//! through the dispatcher's gRPC `Tasks` service, never by writing the dispatcher's tables.

mod access;
mod audit;
mod auth;
mod callers;
mod client_addr;
mod error;
mod events;
mod extract;
mod hashing;
mod http_metrics;
mod memo;
mod model;
mod openapi;
mod origin;
mod request_id;
mod routes;
mod serve;
mod sweeper;
mod templates_seen;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use baton_core::internal::Channel;
use baton_core::internal::ClusterAuth;
use baton_proto::v1::tasks_client::TasksClient;
use baton_store::Store;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

pub use auth::{hash_password, verify_password};
pub use client_addr::client_addr;
pub use error::Error;
pub use http_metrics::{record as record_http, render as render_metrics};
/// The OpenAPI document of the API, as `GET /api/v1/openapi.json` serves it.
pub use openapi::document as openapi_document;
pub use routes::{ROUTES, served as served_routes};
pub use serve::{Limits as HttpLimits, serve};
pub use throttle::Limits as LoginLimits;

/// The gateway's settings. `Debug` shows no secret: the seal key prints masked.
#[derive(Debug, Clone)]
pub struct Options {
    pub node_id: String,
    pub max_body_bytes: usize,
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    /// A runner not seen for this long shows as offline.
    pub runner_lease: Duration,
    /// Seals project secrets.
    pub seal_key: std::sync::Arc<baton_core::sealed::SealKey>,
    /// When failed logins are refused.
    pub login: LoginLimits,
    /// Password hashes computed at once; 0 = one per CPU.
    pub hash_concurrency: usize,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins besides the server's own whose pages may open the WebSocket.
    pub allowed_origins: Vec<String>,
    /// How often WebSocket clients are pinged (one silent for three pings is closed), and SSE
    /// streams carry a comment.
    pub ws_ping: Duration,
    pub sse_ping: Duration,
    /// Timeouts and the connection limit of the HTTP server.
    pub http: HttpLimits,
    /// How often expired sessions and API tokens (and old audit entries) are deleted.
    pub sweep_every: Duration,
    /// Audit entries older than this are deleted (`retention.max_age_seconds`); `None` keeps them.
    pub audit_max_age: Option<Duration>,
    /// Every gateway that may change templates shares this node's coordination (a cluster on
    /// Redis, or a single node), so it may remember templates (`templates_seen.rs`).
    pub remember_templates: bool,
}

/// What the gateway needs from outside.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// This node in the cluster: drain state, the list of nodes, drain requests to others.
    pub membership: Arc<baton_coord::Membership>,
    /// For the cluster view's coordination status.
    pub coord: baton_coord::Coord,
    /// A channel to a dispatcher (any: they are all equal).
    pub dispatcher: Channel,
    /// A channel to a scheduler (any).
    pub scheduler: Channel,
    pub auth: ClusterAuth,
    /// What this node's gateway did (HTTP, WebSockets, events), and the `/metrics` it serves.
    pub metrics: baton_metrics::Metrics,
}

type Tasks = TasksClient<InterceptedService<Channel, request_id::Outgoing>>;
type Schedules = baton_proto::v1::schedules_client::SchedulesClient<InterceptedService<Channel, request_id::Outgoing>>;

/// Shared by every request.
#[derive(Debug)]
struct State {
    opts: Options,
    tables: baton_store::gateway::Tables,
    tasks: Tasks,
    schedules: Schedules,
    /// Readiness fails while the node drains, so the load balancer moves traffic away.
    membership: Arc<baton_coord::Membership>,
    coord: baton_coord::Coord,
    metrics: baton_metrics::Metrics,
    /// Which database the node uses, for the cluster view.
    dialect: &'static str,
    throttle: throttle::Throttle,
    hasher: hashing::Hasher,
    /// This node's subscriptions to live events, shared by every client.
    feeds: events::feed::Feeds,
    /// Who credentials seen in the last second are.
    callers: callers::Callers,
    /// The projects of tasks seen lately, for log subscriptions.
    task_projects: events::topic::TaskProjects,
    /// Templates tasks were started from lately, on a node that is the whole installation.
    templates_seen: templates_seen::TemplatesSeen,
    /// Ends every WebSocket and SSE stream when the server stops (they would hold the graceful
    /// shutdown open).
    closing: CancellationToken,
}

type AppState = Arc<State>;

/// The gateway service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    state: AppState,
}

impl Service {
    pub fn new(opts: Options, deps: Deps) -> Service {
        let state = State {
            throttle: throttle::Throttle::new(deps.coord.clone(), opts.login),
            hasher: hashing::Hasher::new(opts.hash_concurrency),
            templates_seen: templates_seen::TemplatesSeen::new(opts.remember_templates),
            opts,
            dialect: deps.store.dialect(),
            tables: baton_store::gateway::Tables::new(deps.store),
            tasks: TasksClient::with_interceptor(deps.dispatcher, request_id::Outgoing(deps.auth.clone())),
            schedules: baton_proto::v1::schedules_client::SchedulesClient::with_interceptor(
                deps.scheduler,
                request_id::Outgoing(deps.auth),
            ),
            membership: deps.membership,
            feeds: events::feed::Feeds::new(deps.coord.clone()),
            callers: callers::Callers::default(),
            task_projects: Default::default(),
            coord: deps.coord,
            metrics: deps.metrics,
            closing: CancellationToken::new(),
        };
        Service { state: Arc::new(state) }
    }

    /// The whole HTTP API as an axum router.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Serves HTTP on `listener` and sweeps expired sessions and tokens until `shutdown`, then
    /// finishes in-flight requests.
    pub async fn run(self, listener: tokio::net::TcpListener, shutdown: CancellationToken) {
        let s = &self.state;
        // Long-lived streams end when shutdown begins, so in-flight requests can finish.
        let closing = s.closing.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            closing.cancel();
        });
        let sweep = sweeper::run(
            s.tables.clone(),
            s.coord.clone(),
            (s.opts.sweep_every, s.opts.audit_max_age),
            shutdown.clone(),
        );
        let callers = callers::listen(s.clone(), shutdown.clone());
        tokio::join!(serve(listener, self.router(), s.opts.http, shutdown.clone()), sweep, callers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_do_not_print_the_seal_key() {
        let key = "c2VjcmV0LXNlYWwta2V5LW9mLTMyLWJ5dGVzLWxvbmc=";
        let opts = Options {
            node_id: "n".into(),
            max_body_bytes: 1,
            secure_cookies: false,
            session_ttl: Duration::from_secs(1),
            runner_lease: Duration::from_secs(1),
            seal_key: Arc::new(baton_core::sealed::SealKey::from_base64(key).unwrap()),
            login: LoginLimits::default(),
            hash_concurrency: 1,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            ws_ping: Duration::from_secs(20),
            sse_ping: Duration::from_secs(15),
            http: HttpLimits::default(),
            sweep_every: Duration::from_secs(1),
            audit_max_age: None,
            remember_templates: true,
        };
        let shown = format!("{opts:?}");
        assert!(shown.contains("SealKey(********)"), "{shown}");
        assert!(!shown.contains(key) && !shown.contains("secret-seal-key"), "{shown}");
    }
}
