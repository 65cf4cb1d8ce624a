//! The dispatcher: the only writer of tasks, attempts, logs and runners. It serves two gRPC
//! services: `Tasks` (internal calls from the gateway and the scheduler, authenticated by the
//! cluster secret) and `Runner` (one long-lived stream per connected runner). Its placement loop
//! takes queued tasks off the queue and assigns them to the runners connected to it; every
//! assignment is a compare-and-set in SQL that bumps the task's epoch.

mod assign;
mod batch;
mod error;
mod events;
mod gauges;
mod known;
mod leases;
mod outbox;
mod placement;
mod registry;
mod runner_api;
mod session;
mod settle;
mod tasks_api;

use std::sync::Arc;
use std::time::Duration;

use baton_coord::Coord;
use baton_proto::v1::runner_server::RunnerServer;
use baton_proto::v1::tasks_server::TasksServer;
use baton_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub node_id: String,
    /// Internal callers present it as a bearer token.
    pub cluster_secret: baton_core::internal::ClusterSecret,
    /// A runner silent this long loses its tasks.
    pub lease: Duration,
    /// How often runners are asked to send heartbeats.
    pub heartbeat: Duration,
    /// Opens project secrets for the scripts that use them.
    pub seal_key: Arc<baton_core::sealed::SealKey>,
    /// When draining, ask connected runners to reconnect (to another node, through the load
    /// balancer). Only a cluster has another node to go to.
    pub move_runners_on_drain: bool,
}

/// What the dispatcher needs from outside.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    pub coord: Coord,
    /// What this dispatcher did, for `/metrics`.
    pub metrics: baton_metrics::Metrics,
}

/// The dispatcher service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    opts: Options,
    tables: baton_store::dispatcher::Tables,
    coord: Coord,
    metrics: baton_metrics::Metrics,
    registry: registry::Registry,
    /// The runners whose heartbeats are yet to be written (`leases.rs`).
    heard: leases::Heard,
    /// Wakes the placement loop: a task was queued or a runner slot freed up.
    wake: Notify,
    /// True while the node drains: no new assignments, no new runner streams.
    draining: tokio::sync::watch::Sender<bool>,
    /// Since when the database has answered without interruption (`None` while it does not).
    /// Leases expire only after a whole lease of reachability: during an outage no runner could
    /// renew its lease, and expiring them the moment the database returns would declare every
    /// busy runner lost.
    db_reachable_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Service {
    pub fn new(opts: Options, deps: Deps) -> Service {
        Service {
            inner: Arc::new(Inner {
                opts,
                tables: baton_store::dispatcher::Tables::new(deps.store),
                coord: deps.coord,
                metrics: deps.metrics,
                registry: registry::Registry::default(),
                heard: leases::Heard::default(),
                wake: Notify::new(),
                draining: tokio::sync::watch::channel(false).0,
                db_reachable_since: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The internal task API, for the gRPC server.
    pub fn tasks_server(&self) -> TasksServer<tasks_api::TasksApi> {
        TasksServer::new(tasks_api::TasksApi::new(self.clone()))
    }

    /// The runner stream API, for the gRPC server.
    pub fn runner_server(&self) -> RunnerServer<runner_api::RunnerApi> {
        RunnerServer::new(runner_api::RunnerApi::new(self.clone()))
    }

    /// Runs the placement loop and the cancellation listener until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let listener = tokio::spawn(events::listen(self.clone(), shutdown.clone()));
        let watcher = tokio::spawn(events::watch_queue(self.clone(), shutdown.clone()));
        let gauges = tokio::spawn(gauges::run(self.clone(), shutdown.clone()));
        let leases = tokio::spawn(leases::run(self.clone(), shutdown.clone()));
        placement::run(self.clone(), shutdown).await;
        let _ = listener.await;
        let _ = watcher.await;
        let _ = gauges.await;
        let _ = leases.await;
        // A runner stream never ends by itself, and the gRPC server waits for its streams before
        // it stops: end them, and the runners reconnect (elsewhere, or here once the node is
        // back) and re-send what is not acknowledged. Their scripts keep running meanwhile.
        for outbox in self.inner.registry.outboxes() {
            outbox.close(tonic::Status::unavailable(format!(
                "node {} is shutting down; reconnect",
                self.inner.opts.node_id
            )));
        }
        Ok(())
    }

    /// Stops taking new work; tasks already assigned run to the end.
    pub fn drain(&self) {
        self.set_draining(true);
    }

    /// Drains (no new assignments or runner streams; in a cluster the connected runners are sent
    /// to other nodes) or resumes.
    pub fn set_draining(&self, draining: bool) {
        if !self.inner.draining.send_if_modified(|d| std::mem::replace(d, draining) != draining) {
            return;
        }
        if !draining {
            self.inner.wake.notify_one();
        } else if self.inner.opts.move_runners_on_drain {
            for outbox in self.inner.registry.outboxes() {
                let msg = baton_proto::v1::ServerMessage {
                    msg: Some(baton_proto::v1::server_message::Msg::Reconnect(baton_proto::v1::Reconnect {
                        reason: format!("node {} is draining", self.inner.opts.node_id),
                    })),
                };
                // Never waits: a runner that does not take it is cut off and reconnects anyway.
                let _ = outbox.offer(msg);
            }
        }
    }

    fn is_draining(&self) -> bool {
        *self.inner.draining.borrow()
    }

    /// How many runners are connected to this dispatcher.
    pub fn connected_runners(&self) -> usize {
        self.inner.registry.len()
    }
}
