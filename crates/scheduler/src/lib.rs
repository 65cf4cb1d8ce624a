//! The scheduler: fires schedules and runs the periodic sweepers, on every node, with no leader.
//! It owns the schedules table and serves the internal `Schedules` gRPC service through which the
//! gateway changes it.
//!
//! - Firing (`fire.rs`, rules in `plan.rs`, expressions in `cron.rs`): each due time becomes one
//!   task together with a unique fire row, in one dispatcher transaction; nodes racing for the
//!   same due time are sorted out by that row, never by a lock.
//!
//! - Lease sweep (every `sweep_every`): the tasks of a runner that went silent are ended as lost,
//!   or queued again while attempts are left — a compare-and-set in the dispatcher, called over
//!   gRPC.
//! - Queue reconcile (every `reconcile_every`, and at once when coordination comes back): every
//!   task queued in SQL is put on the coordination queue, so a flushed or restarted Redis loses
//!   nothing. It writes no SQL.
//! - Retention (`retention.rs`): finished tasks past the configured age or count per template are
//!   deleted by the dispatcher in small paced batches.

mod api;
mod cron;
mod fire;
mod plan;
mod reconcile;
mod retention;

pub use retention::Limits as RetentionLimits;

pub use cron::Cron;

use std::time::Duration;

use baton_coord::Coord;
use baton_core::internal::Channel;
use baton_core::internal::ClusterAuth;
use baton_proto::v1::SweepRequest;
use baton_proto::v1::tasks_client::TasksClient;
use baton_store::Store;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the lease sweeper runs.
    pub sweep_every: Duration,
    /// How often the coordination queue is rebuilt from SQL.
    pub reconcile_every: Duration,
    /// Internal callers of the `Schedules` service present it as a bearer token.
    pub cluster_secret: baton_core::internal::ClusterSecret,
    /// How long finished tasks are kept, and how often that is enforced.
    pub retention: RetentionLimits,
    pub retention_every: Duration,
}

/// What the scheduler needs: a channel to a dispatcher and the cluster secret, the store (read
/// only) and the coordinator.
#[derive(Debug, Clone)]
pub struct Deps {
    pub dispatcher: Channel,
    pub auth: ClusterAuth,
    pub store: Store,
    pub coord: Coord,
}

type Tasks = TasksClient<InterceptedService<Channel, ClusterAuth>>;

#[derive(Debug, Clone)]
pub struct Service {
    opts: Options,
    tasks: Tasks,
    store: Store,
    coord: Coord,
}

impl Service {
    pub fn new(opts: Options, deps: Deps) -> Service {
        Service {
            opts,
            tasks: TasksClient::with_interceptor(deps.dispatcher, deps.auth),
            store: deps.store,
            coord: deps.coord,
        }
    }

    /// The internal `Schedules` service, for the gRPC server.
    pub fn schedules_server(&self) -> baton_proto::v1::schedules_server::SchedulesServer<api::SchedulesApi> {
        baton_proto::v1::schedules_server::SchedulesServer::new(api::SchedulesApi {
            tables: baton_store::scheduler::Tables::new(self.store.clone()),
            coord: self.coord.clone(),
            cluster_secret: self.opts.cluster_secret.clone(),
            clock: baton_store::now_ms,
        })
    }

    /// Fires schedules and sweeps until `shutdown`. A failed sweep or fire (dispatcher or
    /// database away) is retried.
    pub async fn run(self, shutdown: CancellationToken) {
        let reconciler = tokio::spawn(reconcile::run(
            self.store.clone(),
            self.coord.clone(),
            self.opts.reconcile_every,
            shutdown.clone(),
        ));
        let firing = fire::Firing {
            tables: baton_store::scheduler::Tables::new(self.store.clone()),
            tasks: self.tasks.clone(),
            coord: self.coord.clone(),
            clock: baton_store::now_ms,
        };
        let firing = tokio::spawn(firing.run(shutdown.clone()));
        let retention = tokio::spawn(retention::run(
            self.tasks.clone(),
            self.coord.clone(),
            self.opts.retention,
            self.opts.retention_every,
            shutdown.clone(),
        ));
        self.sweep_leases(shutdown).await;
        let _ = reconciler.await;
        let _ = firing.await;
        let _ = retention.await;
    }

    async fn sweep_leases(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.opts.sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // One node per period is enough; if the lock cannot be asked for, sweep anyway.
            let lock = match self.coord.try_lock("sweep:leases", self.opts.sweep_every).await {
                Ok(None) => continue,
                Ok(Some(lock)) => Some(lock),
                Err(_) => None,
            };
            match self.tasks.sweep(SweepRequest {}).await {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.lost > 0 {
                        tracing::info!(lost = r.lost, requeued = r.requeued, "swept expired runner leases");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e.message(), "lease sweep failed; retrying");
                    // Let another node try at once rather than after the lock expires.
                    if let Some(lock) = lock {
                        let _ = self.coord.unlock(&lock).await;
                    }
                }
            }
        }
    }
}
