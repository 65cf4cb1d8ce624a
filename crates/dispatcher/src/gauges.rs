//! The dispatcher's gauges for `/metrics`, sampled rather than counted at each change: the
//! runners connected here and their free slots (from memory, every second), and the number of
//! tasks queued in the whole cluster (from SQL, every 5 s; every dispatcher reads the same
//! number, so dashboards take the maximum over nodes). The counters — tasks submitted and
//! finished, dispatch latency — are recorded where those things happen (`tasks_api.rs`,
//! `session.rs`, `events.rs`, `placement.rs`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Service;

/// How often the runners' gauges are sampled.
const RUNNERS_EVERY: Duration = Duration::from_secs(1);
/// How often the queue is counted in SQL, in runner samples.
const QUEUE_EVERY: u32 = 5;

pub async fn run(svc: Service, shutdown: CancellationToken) {
    let inner = &svc.inner;
    let mut tick = tokio::time::interval(RUNNERS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u32.. {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        inner.metrics.set_runners(inner.registry.len(), inner.registry.total_free());
        if n % QUEUE_EVERY == 0 {
            // While the database is away the last count stays; `baton_database_up` says why.
            match inner.tables.queue_depth().await {
                Ok(depth) => inner.metrics.set_queue_depth(depth),
                Err(e) => tracing::debug!(error = %e, "cannot count the queue for /metrics"),
            }
        }
    }
}
