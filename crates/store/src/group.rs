//! Group commit: writes that arrive together are applied together. Each caller waits until the
//! batch holding its write is committed, so nothing is acknowledged before it is durable; under
//! load one statement and one commit serve many callers (and each batch waits a moment for more
//! while writes keep coming), and a lone write goes at once (it does not wait for company).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

type Reply<R> = oneshot::Sender<Result<R>>;
type Queue<T, R> = mpsc::Sender<(T, Reply<R>)>;
type Apply<T, R> = Arc<dyn Fn(Vec<T>) -> futures::future::BoxFuture<'static, Result<Vec<R>>> + Send + Sync>;

/// How long a batch waits for more writes after one that had company. Under load the writes of
/// a node arrive spread over a few milliseconds (and split between nodes in a cluster), and a
/// commit costs the database far more than the wait costs the caller: measured with
/// `scripts/bench-cluster.sh`, 2 ms takes a SQLite node from 0.9 to 0.65 statements per task and
/// three PostgreSQL nodes from 1.57 to 1.38. A runner's reports wait as long (the dispatcher's
/// session). A write that comes alone after one that came alone goes at once.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// A queue of writes of `T` applied in batches of at most `max` by one writer task, started on
/// first use (inside the runtime), each answered with an `R`. The writer ends when the last
/// handle is dropped.
pub struct Group<T, R = ()> {
    max: usize,
    apply: Apply<T, R>,
    tx: Arc<OnceLock<Queue<T, R>>>,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Group { max: self.max, apply: self.apply.clone(), tx: self.tx.clone() }
    }
}

impl<T, R> std::fmt::Debug for Group<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("max", &self.max).finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// `apply` writes one batch, all or nothing, and answers each item in order.
    pub fn new<F, Fut>(max: usize, apply: F) -> Group<T, R>
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<R>>> + Send + 'static,
    {
        let apply: Apply<T, R> = Arc::new(move |items| Box::pin(apply(items)));
        Group { max: max.max(1), apply, tx: Arc::new(OnceLock::new()) }
    }

    /// Writes `item` with whatever else is waiting; returns once that batch is committed (or
    /// failed: every write of a failed batch gets its error).
    pub async fn write(&self, item: T) -> Result<R> {
        let tx = self.tx.get_or_init(|| self.spawn());
        let (reply, done) = oneshot::channel();
        let stopped = || Error::Unavailable("the batch writer has stopped".into());
        tx.send((item, reply)).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    fn spawn(&self) -> Queue<T, R> {
        let (tx, mut rx) = mpsc::channel::<(T, Reply<R>)>(self.max * 4);
        let (apply, max) = (self.apply.clone(), self.max);
        tokio::spawn(async move {
            let mut waiting = Vec::with_capacity(max);
            // Whether the last batch had company: the writes are coming faster than they are
            // committed, so the next batch waits a moment for more.
            let mut busy = false;
            while rx.recv_many(&mut waiting, max).await > 0 {
                if busy {
                    let until = tokio::time::Instant::now() + LINGER;
                    while waiting.len() < max {
                        let room = max - waiting.len();
                        match tokio::time::timeout_at(until, rx.recv_many(&mut waiting, room)).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
                if waiting.len() < max {
                    // Let the tasks already runnable on this worker go first: callers woken with
                    // the first one (requests read in the same turn) join its batch instead of
                    // each starting the next one. One turn of the scheduler, not a timer: a lone
                    // write waits only for work that was ready anyway.
                    tokio::task::yield_now().await;
                    while waiting.len() < max {
                        let Ok(next) = rx.try_recv() else { break };
                        waiting.push(next);
                    }
                }
                busy = waiting.len() > 1;
                let (items, replies): (Vec<T>, Vec<Reply<R>>) = waiting.drain(..).unzip();
                let n = replies.len();
                match apply(items).await {
                    Ok(answers) if answers.len() == n => {
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                    Ok(answers) => {
                        let e = Error::Database(format!("a batch of {n} writes was answered {} times", answers.len()));
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        tx
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    type Batches = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A group of at most `max` that takes `pause` over each batch, fails every batch with 13 in
    /// it, and records the batches it committed.
    fn recording(max: usize, pause: Option<std::time::Duration>) -> (Group<u32, ()>, Batches) {
        let batches = Batches::default();
        let seen = batches.clone();
        let group = Group::new(max, move |items: Vec<u32>| {
            let seen = seen.clone();
            async move {
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
                if items.contains(&13) {
                    return Err(Error::Database("unlucky".into()));
                }
                let n = items.len();
                seen.lock().unwrap().push(items);
                Ok(vec![(); n])
            }
        });
        (group, batches)
    }

    #[tokio::test]
    async fn writes_made_together_share_a_batch_and_each_waits_for_its_own() {
        // Slow enough that the others queue up behind the first.
        let (group, batches) = recording(8, Some(std::time::Duration::from_millis(20)));
        group.write(1).await.unwrap();
        let results = futures::future::join_all((2..=20).map(|i| {
            let g = group.clone();
            async move { (i, g.write(i).await) }
        }))
        .await;
        let batches = batches.lock().unwrap().clone();
        assert_eq!(batches[0], vec![1], "a lone write goes alone");
        assert!(batches.iter().all(|b| b.len() <= 8));
        assert!(batches.len() < 19, "concurrent writes were batched: {batches:?}");
        // Every write either landed in a committed batch or got its batch's error, never both.
        for (i, r) in results {
            let landed = batches.iter().any(|b| b.contains(&i));
            assert_eq!(r.is_ok(), landed, "write {i}");
        }
        assert!(!batches.iter().any(|b| b.contains(&13)));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_batch_with_company_the_next_waits_for_more_and_a_lone_one_goes_at_once() {
        let (group, batches) = recording(8, None);
        let write_after = |i: u32, after: Duration| {
            let g = group.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                g.write(i).await.map(|()| tokio::time::Instant::now())
            })
        };
        let start = tokio::time::Instant::now();
        // Idle: a lone write is committed at once.
        group.write(1).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "a lone write did not wait");
        // Two at once share a batch, which makes the writer busy...
        let (a, b) = (write_after(2, Duration::ZERO), write_after(3, Duration::ZERO));
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        // ...so the next write waits for one that comes a millisecond later, and both are
        // answered once their batch is committed, LINGER after the first arrived.
        let first = write_after(4, Duration::ZERO);
        let second = write_after(5, Duration::from_millis(1));
        let (done4, done5) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
        assert_eq!(done4, done5);
        assert_eq!(done4 - start, LINGER);
        // Still busy: a write alone waits the full moment, finds no company, and so the one
        // after it is idle again and goes at once.
        let alone = write_after(6, Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(alone - done4, LINGER);
        let at_once = write_after(7, Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(at_once, alone);
        let mut batches = batches.lock().unwrap().clone();
        batches.iter_mut().for_each(|b| b.sort());
        assert_eq!(batches, vec![vec![1], vec![2, 3], vec![4, 5], vec![6], vec![7]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn writers_runnable_together_share_a_batch_however_fast_the_writes() {
        // Done at once: nothing else gets a turn while a batch is written.
        let (group, batches) = recording(64, None);
        group.write(0).await.unwrap();
        // Ten writers made runnable together on the one worker, as requests read in one turn are.
        let g = group.clone();
        tokio::spawn(async move {
            let writers: Vec<_> = (1..=10)
                .map(|i| {
                    tokio::spawn({
                        let g = g.clone();
                        async move { g.write(i).await }
                    })
                })
                .collect();
            for w in writers {
                w.await.unwrap().unwrap();
            }
        })
        .await
        .unwrap();
        let mut batches = batches.lock().unwrap().clone();
        // In whichever order the scheduler ran them.
        batches.iter_mut().for_each(|b| b.sort());
        assert_eq!(batches, vec![vec![0], (1..=10).collect()], "the first woken writer waited a turn for the others");
    }
}
