//! The Prometheus metrics of one Baton process: a registry the services record into, rendered by
//! `GET /metrics` in the Prometheus text format (0.0.4), which every scraper and `promtool` read.
//!
//! One [`Metrics`] per process (per server: tests run several in one process and each keeps its
//! own), made by `server::start` and handed to each service in its `Deps`. Services never import
//! each other; they only record here, each what it does itself:
//!
//! - the dispatcher: tasks submitted, tasks finished by status, dispatch latency (when a task's
//!   script starts), runners connected and their free slots, and the cluster's queue depth;
//! - the gateway: HTTP requests by route template, WebSocket connections, events delivered;
//! - the node (`crates/baton/src/node.rs`): whether the database and coordination answer;
//! - `process.rs`: CPU, memory, file descriptors and threads of the process, read at each scrape;
//! - `sql.rs`: the statements the store sent, from the store's own counters, read at each scrape.
//!
//! Counters and histograms count what this node did; a gauge that describes the whole cluster
//! (the queue depth) says so in its help text. Label values come from fixed sets or from the
//! route table, never from a request's path or an id, so the number of series stays bounded.

mod process;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use baton_core::TaskStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
pub use sql::SqlStatements;

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of requests that matched no route: one value for all of them, so a scan of
/// random paths cannot add series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Final states a task can be recorded in; their counters exist from the start at zero, so a
/// rate over the first one is not missed.
const FINAL: [TaskStatus; 5] =
    [TaskStatus::Succeeded, TaskStatus::Failed, TaskStatus::Cancelled, TaskStatus::TimedOut, TaskStatus::Lost];

/// From a moment to minutes: a task waits for a runner as long as the queue is.
const DISPATCH_BUCKETS: [f64; 15] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
/// Prometheus' default buckets: API calls take milliseconds to seconds.
const HTTP_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// What this process is: its version and node id (in `baton_build_info`), and the services it
/// runs. A process shows only the metrics of the services it runs, so a split gateway reports no
/// queue depth of zero that it never measured.
#[derive(Debug, Clone)]
pub struct Build<'a> {
    pub version: &'a str,
    pub node_id: &'a str,
    pub dispatcher: bool,
    pub gateway: bool,
    /// The store's statement counts, shown as `baton_sql_statements_total` (none: not shown).
    pub sql_statements: Option<SqlStatements>,
}

/// The health of a node, as it samples it every second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The database answered.
    pub database: bool,
    /// Coordination answers (always, for the in-process coordination of a single node).
    pub coordination: bool,
    /// The node drains: it takes no new work (and reports not ready).
    pub draining: bool,
    /// The node reports ready (`/api/ready`): its database answers and it does not drain.
    pub ready: bool,
}

/// How a live event left this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket message (one `task.log` message may carry many lines).
    WebSocket,
    /// A server-sent event (one per log line, and the end).
    Sse,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::WebSocket => "ws",
            Transport::Sse => "sse",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metrics of this process; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    tasks_submitted: Counter,
    claims_lost: Counter,
    takes_lost: Counter,
    queue_returns: Counter,
    tasks_finished: Family<StatusLabels, Counter>,
    dispatch_latency: Histogram,
    queue_depth: Gauge,
    runners_connected: Gauge,
    runner_slots_free: Gauge,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    coordination_up: Gauge,
    database_up: Gauge,
    ready: Gauge,
    draining: Gauge,
    ws_connections: Gauge,
    events_delivered: Family<TransportLabels, Counter>,
}

impl Metrics {
    /// A registry with every metric of Baton and of the process.
    pub fn new(build: Build<'_>) -> Metrics {
        let inner = Inner {
            registry: Registry::default(),
            tasks_submitted: Counter::default(),
            claims_lost: Counter::default(),
            takes_lost: Counter::default(),
            queue_returns: Counter::default(),
            tasks_finished: Family::default(),
            dispatch_latency: Histogram::new(DISPATCH_BUCKETS),
            queue_depth: Gauge::default(),
            runners_connected: Gauge::default(),
            runner_slots_free: Gauge::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
            coordination_up: Gauge::default(),
            database_up: Gauge::default(),
            ready: Gauge::default(),
            draining: Gauge::default(),
            ws_connections: Gauge::default(),
            events_delivered: Family::default(),
        };
        for status in FINAL {
            let _ = inner.tasks_finished.get_or_create(&StatusLabels { status: status.as_str() });
        }
        for transport in [Transport::WebSocket, Transport::Sse] {
            let _ = inner.events_delivered.get_or_create(&TransportLabels { transport: transport.label() });
        }
        Metrics { inner: Arc::new(inner.registered(build)) }
    }

    /// Every metric in the Prometheus text format (0.0.4), the process metrics read now.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)?;
        Ok(out)
    }

    // The dispatcher's.

    /// Recorded by the dispatcher that created a task (by API or by a schedule's fire).
    pub fn task_submitted(&self) {
        self.inner.tasks_submitted.inc();
    }

    /// Recorded by a dispatcher whose claim of a queued task found it taken or changed since it
    /// read the queue: with several nodes, mostly another node claiming the same task first.
    pub fn claim_lost(&self) {
        self.inner.claims_lost.inc();
    }

    /// Recorded by a dispatcher that chose queued tasks and found another node had taken them
    /// off the queue first: one Redis answer, no SQL.
    pub fn takes_lost(&self, n: usize) {
        self.inner.takes_lost.inc_by(n as u64);
    }

    /// Recorded by a dispatcher that took queued tasks off the queue and put them back, none of
    /// its runners being able to take them (labels, project, limits).
    pub fn queue_returns(&self, n: usize) {
        self.inner.queue_returns.inc_by(n as u64);
    }

    /// Recorded by the dispatcher that recorded a task's final state, once per task.
    pub fn task_finished(&self, status: TaskStatus) {
        self.inner.tasks_finished.get_or_create(&StatusLabels { status: status.as_str() }).inc();
    }

    /// Recorded by the dispatcher that marked a task running: how long it waited from its
    /// submission until its script started.
    pub fn task_started(&self, waited: Duration) {
        self.inner.dispatch_latency.observe(waited.as_secs_f64());
    }

    /// Sampled by each dispatcher from SQL: tasks queued in the whole cluster.
    pub fn set_queue_depth(&self, tasks: u64) {
        self.inner.queue_depth.set(saturate(tasks));
    }

    /// Sampled by each dispatcher: the runners connected to it, and their free slots.
    pub fn set_runners(&self, connected: usize, free_slots: usize) {
        self.inner.runners_connected.set(saturate(connected as u64));
        self.inner.runner_slots_free.set(saturate(free_slots as u64));
    }

    // The gateway's.

    /// Recorded by the gateway for every response: `route` is the route template that matched
    /// (`None`: no route did), never the path itself.
    pub fn http_request(&self, route: Option<&str>, method: &str, status: u16, took: Duration) {
        let route = route.unwrap_or(UNMATCHED_ROUTE).to_owned();
        let method = method_label(method);
        self.inner
            .http_duration
            .get_or_create(&RouteLabels { route: route.clone(), method })
            .observe(took.as_secs_f64());
        self.inner.http_requests.get_or_create(&RequestLabels { route, method, status }).inc();
    }

    /// Recorded by the gateway while an event WebSocket is open: counts it until the guard drops.
    pub fn ws_connection(&self) -> WsConnection {
        self.inner.ws_connections.inc();
        WsConnection { metrics: self.clone() }
    }

    /// Recorded by the gateway when it sent live events to a client.
    pub fn events_delivered(&self, transport: Transport, events: u64) {
        self.inner.events_delivered.get_or_create(&TransportLabels { transport: transport.label() }).inc_by(events);
    }

    // The node's.

    /// Sampled every second by the node (`node.rs`, with the readiness it reports).
    pub fn set_health(&self, h: Health) {
        self.inner.database_up.set(i64::from(h.database));
        self.inner.coordination_up.set(i64::from(h.coordination));
        self.inner.draining.set(i64::from(h.draining));
        self.inner.ready.set(i64::from(h.ready));
    }
}

impl Inner {
    fn registered(mut self, build: Build<'_>) -> Inner {
        let info = Info::new(vec![("version", build.version.to_owned()), ("node", build.node_id.to_owned())]);
        // Taken out while the metrics' handles (fields of `self`) are registered in it.
        let mut registry = std::mem::take(&mut self.registry);
        let r = registry.sub_registry_with_prefix("baton");
        r.register("build", "The Baton version this process runs, and its node id", info);
        // Every process serves HTTP (the API, or its probes) and watches its database and
        // coordination.
        r.register(
            "http_requests",
            "HTTP responses of this node, by route template (unmatched: no route), method and status",
            self.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time until this node sent a response's head (a stream's body is not counted), by route template and method",
            Unit::Seconds,
            self.http_duration.clone(),
        );
        r.register(
            "coordination_up",
            "1 while this node reaches its coordination (Redis in a cluster; in process on a single node), 0 while degraded",
            self.coordination_up.clone(),
        );
        r.register(
            "database_up",
            "1 while the database answers this node (checked every second), else 0",
            self.database_up.clone(),
        );
        r.register(
            "ready",
            "1 while this node reports ready (database reachable, not draining), as /api/ready does",
            self.ready.clone(),
        );
        r.register("draining", "1 while this node drains (takes no new work, for a restart)", self.draining.clone());
        if build.dispatcher {
            self.register_dispatcher(r);
        }
        if build.gateway {
            r.register("ws_connections", "Event WebSockets open on this node", self.ws_connections.clone());
            r.register(
                "events_delivered",
                "Live events this node sent to clients: WebSocket messages (one may carry many log lines) and SSE events (one per line)",
                self.events_delivered.clone(),
            );
        }
        registry.register_collector(Box::new(process::Collector::new()));
        if let Some(source) = build.sql_statements {
            registry.register_collector(Box::new(sql::Collector(source)));
        }
        Inner { registry, ..self }
    }

    fn register_dispatcher(&self, r: &mut Registry) {
        r.register(
            "tasks_submitted",
            "Tasks created by this node's dispatcher (by API or schedule)",
            self.tasks_submitted.clone(),
        );
        r.register(
            "claims_lost",
            "Claims of queued tasks this node's dispatcher lost (another node claimed the task first, or it changed since the queue was read): wasted work",
            self.claims_lost.clone(),
        );
        r.register(
            "queue_takes_lost",
            "Queued tasks this node's dispatcher chose but another node took off the queue first (a Redis answer, no SQL): nodes racing for the queue head",
            self.takes_lost.clone(),
        );
        r.register(
            "queue_returns",
            "Queued tasks this node's dispatcher took off the queue and put back because none of its runners could take them (labels, project, limits); at most once per task and node a minute",
            self.queue_returns.clone(),
        );
        r.register(
            "tasks_finished",
            "Tasks whose final state this node's dispatcher recorded, by that state",
            self.tasks_finished.clone(),
        );
        r.register_with_unit(
            "dispatch_latency",
            "Time from a task's submission to its script starting, for first attempts started through this node",
            Unit::Seconds,
            self.dispatch_latency.clone(),
        );
        r.register(
            "queue_depth",
            "Tasks queued in the whole cluster, not only this node's (read from SQL every 5 s by each dispatcher)",
            self.queue_depth.clone(),
        );
        r.register(
            "runners_connected",
            "Runners whose stream is connected to this node",
            self.runners_connected.clone(),
        );
        r.register(
            "runner_slots_free",
            "Free task slots of the runners connected to this node (paused and draining runners have none)",
            self.runner_slots_free.clone(),
        );
    }
}

/// An open event WebSocket, counted in `baton_ws_connections` until it drops.
#[derive(Debug)]
pub struct WsConnection {
    metrics: Metrics,
}

impl Drop for WsConnection {
    fn drop(&mut self) {
        self.metrics.inner.ws_connections.dec();
    }
}

/// The method label: the standard methods by name, anything else as one value (a client may
/// send any token as a method).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
