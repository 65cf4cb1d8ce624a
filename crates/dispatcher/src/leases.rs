//! Runners' leases, renewed together. A heartbeat used to be an UPDATE of its own: 500 runners
//! beating every 2 s are 250 statements (and commits) a second before any task runs. Now a
//! heartbeat only notes its runner here, and one UPDATE renews the leases of every runner heard
//! since the last write, a quarter of `dispatcher.heartbeat_seconds` later at most.
//!
//! The time written is when the earliest of them was heard, so a lease is never stretched past
//! what a runner said; it lags the truth by that quarter heartbeat at most, well inside a lease
//! (which is at least two heartbeats). What a failed write held is noted again for the next one.

use std::collections::HashSet;
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

#[derive(Debug, Default, PartialEq)]
struct Pending {
    ids: HashSet<i64>,
    /// When the earliest of them was heard (ms); meaningless while `ids` is empty.
    since: i64,
}

impl Heard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `runner_id` was heard from at `at` (ms).
    pub fn note(&self, runner_id: i64, at: i64) {
        let first = {
            let mut p = self.lock();
            let first = p.ids.is_empty();
            p.since = if first { at } else { p.since.min(at) };
            p.ids.insert(runner_id);
            first
        };
        if first {
            self.noted.notify_one();
        }
    }

    /// The runners noted so far and when the earliest was heard, forgetting them here.
    fn take(&self) -> Option<(Vec<i64>, i64)> {
        let p = std::mem::take(&mut *self.lock());
        (!p.ids.is_empty()).then(|| (p.ids.into_iter().collect(), p.since))
    }

    /// Notes again what a failed write held.
    fn put_back(&self, ids: Vec<i64>, since: i64) {
        let mut p = self.lock();
        p.since = if p.ids.is_empty() { since } else { p.since.min(since) };
        p.ids.extend(ids);
    }
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = heard.noted.notified() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        write(&svc).await;
    }
    write(&svc).await;
}

async fn write(svc: &Service) {
    let heard = &svc.inner.heard;
    let Some((ids, since)) = heard.take() else { return };
    if let Err(e) = svc.inner.tables.runners_seen(&ids, since).await {
        // Leases expire only after the database has been back for a whole lease, so the next
        // write, a quarter heartbeat on, is soon enough.
        tracing::warn!(runners = ids.len(), error = %e, "cannot renew runners' leases; trying again");
        heard.put_back(ids, since);
        heard.noted.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(taken: Option<(Vec<i64>, i64)>) -> Option<(Vec<i64>, i64)> {
        taken.map(|(mut ids, since)| {
            ids.sort_unstable();
            (ids, since)
        })
    }

    #[test]
    fn runners_heard_together_are_written_once_with_the_earliest_time() {
        let heard = Heard::default();
        assert_eq!(heard.take(), None, "nothing heard, nothing to write");
        heard.note(7, 1_000);
        heard.note(3, 1_200);
        heard.note(7, 1_900);
        assert_eq!(sorted(heard.take()), Some((vec![3, 7], 1_000)));
        assert_eq!(heard.take(), None, "a write forgets what it took");

        heard.note(5, 2_100);
        assert_eq!(heard.take(), Some((vec![5], 2_100)), "a new batch starts from its own first");
    }

    #[test]
    fn what_a_failed_write_held_joins_the_next_at_its_own_time() {
        let heard = Heard::default();
        heard.note(1, 1_000);
        let (ids, since) = heard.take().unwrap();
        heard.note(2, 1_300);
        heard.put_back(ids, since);
        assert_eq!(sorted(heard.take()), Some((vec![1, 2], 1_000)));

        heard.put_back(vec![4], 900);
        heard.note(4, 1_500);
        assert_eq!(heard.take(), Some((vec![4], 900)), "never later than the runner was first heard");
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
