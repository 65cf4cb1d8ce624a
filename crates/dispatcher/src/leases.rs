//! Runners' leases, renewed together. A heartbeat used to be an UPDATE of its own: 500 runners
//! beating every 2 s are 250 statements (and commits) a second before any task runs. Now a
//! heartbeat only notes its runner and when it was heard, and one UPDATE renews the leases of
//! every runner heard since the last write, a quarter of `dispatcher.heartbeat_seconds` later
//! at most.
//!
//! Each runner's lease is written with the time it was last heard, and never moved back (a
//! runner that moved to another node may have been written there since), so a lease is never
//! stretched past what a runner said; it reaches SQL a quarter heartbeat later than a write per
//! heartbeat did, inside the margin of a lease (at least two heartbeats: a stored lease is at
//! most a heartbeat and a quarter old while its runner beats). What a failed write held is
//! noted again for the next one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Service;

/// The runners heard from since their leases were last written.
#[derive(Debug, Default)]
pub struct Heard {
    pending: Mutex<Pending>,
    /// Rings when the first runner is noted after a write.
    noted: Notify,
}

/// Each runner heard from, with when it was last heard (ms).
type Pending = HashMap<i64, i64>;

impl Heard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `runner_id` was heard from at `at` (ms).
    pub fn note(&self, runner_id: i64, at: i64) {
        let first = {
            let mut p = self.lock();
            let first = p.is_empty();
            heard_at(&mut p, runner_id, at);
            first
        };
        if first {
            self.noted.notify_one();
        }
    }

    /// The runners noted so far, each with when it was last heard, forgetting them here.
    fn take(&self) -> Vec<(i64, i64)> {
        std::mem::take(&mut *self.lock()).into_iter().collect()
    }

    /// Notes again what a failed write held; a runner heard since keeps its later time.
    fn put_back(&self, seen: Vec<(i64, i64)>) {
        let mut p = self.lock();
        for (id, at) in seen {
            heard_at(&mut p, id, at);
        }
    }
}

/// Records that `runner_id` was heard at `at`, unless it was heard later already.
fn heard_at(p: &mut Pending, runner_id: i64, at: i64) {
    let t = p.entry(runner_id).or_insert(at);
    *t = (*t).max(at);
}

/// How long the first heartbeat after a write waits for others: a quarter of a heartbeat.
fn wait(heartbeat: Duration) -> Duration {
    heartbeat / 4
}

/// Writes the leases of the runners heard from, at most every quarter heartbeat, until
/// `shutdown`; then once more.
pub async fn run(svc: Service, shutdown: CancellationToken) {
    let heard = &svc.inner.heard;
    let wait = wait(svc.inner.opts.heartbeat);
    // Whether the last write failed: an outage is logged once, not every quarter heartbeat.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = heard.noted.notified() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        failing = write(&svc, failing).await;
    }
    write(&svc, failing).await;
}

/// Writes what was heard; returns whether that failed.
async fn write(svc: &Service, failing: bool) -> bool {
    let heard = &svc.inner.heard;
    let seen = heard.take();
    if seen.is_empty() {
        return false;
    }
    match svc.inner.tables.runners_seen(&seen).await {
        Ok(()) => {
            if failing {
                tracing::info!(runners = seen.len(), "runners' leases renewed again");
            }
            false
        }
        Err(e) => {
            // Leases expire only after the database has been steady for a whole lease (see
            // `database_steady` in `tasks_api.rs`), so the next write, a quarter heartbeat on,
            // is soon enough.
            if !failing {
                tracing::warn!(runners = seen.len(), error = %e, "cannot renew runners' leases; trying again");
            }
            heard.put_back(seen);
            heard.noted.notify_one();
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut taken: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
        taken.sort_unstable();
        taken
    }

    #[test]
    fn runners_heard_together_are_written_once_each_with_its_last_time() {
        let heard = Heard::default();
        assert_eq!(heard.take(), vec![], "nothing heard, nothing to write");
        heard.note(7, 1_000);
        heard.note(3, 1_200);
        heard.note(7, 1_900);
        assert_eq!(sorted(heard.take()), vec![(3, 1_200), (7, 1_900)]);
        assert_eq!(heard.take(), vec![], "a write forgets what it took");

        heard.note(5, 2_100);
        assert_eq!(heard.take(), vec![(5, 2_100)]);
    }

    #[test]
    fn what_a_failed_write_held_joins_the_next_and_a_later_beat_wins() {
        let heard = Heard::default();
        heard.note(1, 1_000);
        heard.note(4, 1_100);
        let taken = heard.take();
        heard.note(2, 1_300);
        heard.note(4, 1_500);
        heard.put_back(taken);
        assert_eq!(sorted(heard.take()), vec![(1, 1_000), (2, 1_300), (4, 1_500)]);
    }

    #[tokio::test]
    async fn the_first_runner_noted_rings_and_later_ones_do_not_ring_again() {
        let heard = Heard::default();
        heard.note(1, 1);
        heard.note(2, 2);
        tokio::time::timeout(Duration::from_millis(100), heard.noted.notified()).await.expect("rung");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), heard.noted.notified()).await.is_err(),
            "one ring for a batch"
        );
        assert_eq!(wait(Duration::from_secs(2)), Duration::from_millis(500));
    }
}
