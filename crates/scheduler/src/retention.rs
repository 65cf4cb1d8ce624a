//! The retention sweeper: every `every`, it asks the dispatcher (the owner of tasks) to delete
//! finished tasks past the configured age or count, one small batch at a time with a pause in
//! between, so the hot tables are never locked for long. A coordination lock keeps it to one node
//! per period; the deletes are idempotent anyway.

use std::time::Duration;

use baton_coord::Coord;
use baton_proto::v1::RetainRequest;
use tokio_util::sync::CancellationToken;

use crate::Tasks;

/// Tasks per batch, and the pause between batches.
const BATCH: u32 = 200;
const PAUSE: Duration = Duration::from_millis(50);

/// What to keep; `None` = no limit of that kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_age: Option<Duration>,
    pub max_per_template: Option<u64>,
}

pub async fn run(mut tasks: Tasks, coord: Coord, limits: Limits, every: Duration, shutdown: CancellationToken) {
    if limits.max_age.is_none() && limits.max_per_template.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(None) = coord.try_lock("sweep:retention", every).await {
            continue;
        }
        let mut deleted = 0;
        loop {
            let req = RetainRequest {
                finished_before_ms: limits.max_age.map(|a| baton_store::now_ms() - a.as_millis() as i64),
                keep_per_template: limits.max_per_template,
                batch: BATCH,
            };
            match tasks.retain(req).await {
                Ok(r) => {
                    let n = r.into_inner().deleted;
                    deleted += n;
                    if n < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e.message(), "retention sweep failed; retrying next period");
                    break;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PAUSE) => {}
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "retention: deleted finished tasks past their limits");
        }
    }
}
