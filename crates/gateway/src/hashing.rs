//! Password hashing with bounded concurrency. Argon2id with its default parameters (m = 19 MiB,
//! t = 2, p = 1) allocates 19 MiB per hash and keeps a CPU busy for it, so a flood of logins
//! hashing all at once would exhaust memory long before the CPUs: at most `permits` hashes run at
//! once (memory bound: `permits` × 19 MiB, e.g. 152 MiB with 8), at most `4 × permits` requests
//! wait for one, and any request beyond that is refused at once with 429 and `Retry-After`
//! instead of queueing without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_core::ErrorCode;
use tokio::sync::Semaphore;

use crate::auth;
use crate::error::{Error, Result};

/// Requests that may wait for a permit, per permit.
const WAITERS_PER_PERMIT: usize = 4;

/// The hashing pool; shared by every request of a node.
#[derive(Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Counts a waiting request for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    /// `concurrency` hashes at once; 0 = one per CPU.
    pub fn new(concurrency: usize) -> Hasher {
        let permits = match concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Hasher {
            permits: Arc::new(Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            max_waiting: permits * WAITERS_PER_PERMIT,
        }
    }

    /// Whether `password` matches `hash` (argon2id PHC string). Without a hash (no such user)
    /// it checks against a dummy one, so the answer takes as long and reveals nothing.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        self.run(move || {
            let ok = auth::verify_password(&password, hash.as_deref().unwrap_or(&auth::DUMMY_HASH));
            ok && hash.is_some()
        })
        .await
    }

    /// An argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || auth::hash_password(&password)).await?.map_err(|e| Error::new(ErrorCode::Internal, e))
    }

    /// Runs `f` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Error::rate_limited(
                        "too many password checks at once on this server; retry in a moment",
                        Duration::from_secs(1),
                    ));
                }
                let _waiting = Waiting(&self.waiting);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::new(ErrorCode::Unavailable, "the server is shutting down"))?
            }
        };
        // The permit moves into the blocking job: a client that hangs up does not free it before
        // the hash (and its memory) is done.
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::new(ErrorCode::Internal, format!("password hashing failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_through_the_pool() {
        let h = Hasher::new(1);
        let hash = h.hash("correct horse".into()).await.unwrap();
        assert!(h.verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!h.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!h.verify("correct horse".into(), None).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_waiters_bound_requests_are_refused_at_once() {
        let h = Arc::new(Hasher::new(1));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        // One job holds the only permit until released; four more wait for it.
        let mut jobs = Vec::new();
        for _ in 0..1 + WAITERS_PER_PERMIT {
            let (h, gate) = (h.clone(), gate.clone());
            jobs.push(tokio::spawn(async move {
                h.run(move || {
                    let _ = gate.lock().unwrap().recv();
                })
                .await
            }));
        }
        while h.waiting.load(Ordering::SeqCst) < WAITERS_PER_PERMIT {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = tokio::time::timeout(Duration::from_secs(2), h.run(|| ()))
            .await
            .expect("refused at once, not queued")
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        for _ in 0..jobs.len() {
            release.send(()).unwrap();
        }
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        assert_eq!(h.waiting.load(Ordering::SeqCst), 0);
        h.run(|| ()).await.unwrap();
    }
}
