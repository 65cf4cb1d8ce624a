//! The sweep of expired sessions and API tokens, and of audit entries past
//! `retention.max_age_seconds`. Expired ones already authenticate nobody; the sweep keeps the
//! tables from growing with every login forever. The gateway owns these tables,
//! so the gateway sweeps: every period, on one node at a time (a coordination lock; if
//! coordination is down every node sweeps, which is harmless since deleting is idempotent), in
//! small batches with a pause between them so logins never wait long behind it.

use std::time::Duration;

use baton_coord::Coord;
use baton_store::gateway::Tables;
use tokio_util::sync::CancellationToken;

/// Rows per delete, and the pause between batches.
const BATCH: u64 = 500;
const PAUSE: Duration = Duration::from_millis(20);

/// Sweeps every `every` until `shutdown`; audit entries older than `audit_max_age` go too.
pub async fn run(
    tables: Tables,
    coord: Coord,
    (every, audit_max_age): (Duration, Option<Duration>),
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(None) = coord.try_lock("sweep:identity", every).await {
            continue;
        }
        match sweep(&tables, &shutdown).await {
            Ok((0, 0)) => {}
            Ok((sessions, tokens)) => tracing::info!(sessions, tokens, "deleted expired sessions and API tokens"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired sessions and tokens failed; retrying next period"),
        }
        if let Some(max_age) = audit_max_age {
            let cutoff = baton_store::now_ms() - max_age.as_millis() as i64;
            match sweep_audit(&tables, cutoff, &shutdown).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "deleted audit entries past retention"),
                Err(e) => tracing::warn!(error = %e, "sweeping the audit log failed; retrying next period"),
            }
        }
    }
}

/// Deletes every session and token expired by now, batch by batch; how many of each.
pub async fn sweep(tables: &Tables, shutdown: &CancellationToken) -> baton_store::Result<(u64, u64)> {
    let now = baton_store::now_ms();
    let mut sessions = 0;
    loop {
        let n = tables.delete_expired_sessions(now, BATCH).await?;
        sessions += n;
        if n < BATCH || !pause(shutdown).await {
            break;
        }
    }
    let mut tokens = 0;
    loop {
        let n = tables.delete_expired_tokens(now, BATCH).await?;
        tokens += n;
        if n < BATCH || !pause(shutdown).await {
            break;
        }
    }
    Ok((sessions, tokens))
}

/// Deletes the audit entries made before `cutoff` (ms), batch by batch; how many.
pub async fn sweep_audit(tables: &Tables, cutoff: i64, shutdown: &CancellationToken) -> baton_store::Result<u64> {
    let mut deleted = 0;
    loop {
        let n = tables.delete_audit_before(cutoff, BATCH).await?;
        deleted += n;
        if n < BATCH || !pause(shutdown).await {
            return Ok(deleted);
        }
    }
}

/// Waits between batches; `false` when the server stops meanwhile.
async fn pause(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(PAUSE) => true,
    }
}
