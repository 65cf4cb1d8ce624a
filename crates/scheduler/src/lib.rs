//! The scheduler: runs the periodic sweepers on every node (and, with schedules, fires them).
//! Sweeps are idempotent compare-and-sets in the dispatcher, so every node may run them at once
//! without a leader. Today it sweeps expired runner leases: the tasks of a runner that went silent
//! are ended as lost, or queued again while attempts are left.

use std::time::Duration;

use baton_core::internal::ClusterAuth;
use baton_proto::v1::SweepRequest;
use baton_proto::v1::tasks_client::TasksClient;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the lease sweeper runs.
    pub sweep_every: Duration,
}

/// What the scheduler needs: a channel to a dispatcher and the cluster secret.
#[derive(Debug, Clone)]
pub struct Deps {
    pub dispatcher: Channel,
    pub auth: ClusterAuth,
}

#[derive(Debug, Clone)]
pub struct Service {
    opts: Options,
    tasks: TasksClient<InterceptedService<Channel, ClusterAuth>>,
}

impl Service {
    pub fn new(opts: Options, deps: Deps) -> Service {
        Service { opts, tasks: TasksClient::with_interceptor(deps.dispatcher, deps.auth) }
    }

    /// Sweeps until `shutdown`. A failed sweep (dispatcher or database away) is retried on the
    /// next tick.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.opts.sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.tasks.sweep(SweepRequest {}).await {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.lost > 0 {
                        tracing::info!(lost = r.lost, requeued = r.requeued, "swept expired runner leases");
                    }
                }
                Err(e) => tracing::warn!(error = %e.message(), "lease sweep failed; retrying"),
            }
        }
    }
}
