//! A short, bounded memory of answers read from SQL, which any write that changes them makes
//! the node forget: the mechanism under `callers.rs` (who a credential is) and
//! `templates_seen.rs` (the templates tasks start from). Each says when it may remember at all.
//!
//! An answer read before a forgetting is never kept after it: the reader takes
//! [`Memo::generation`] before it reads, and [`Memo::keep`] compares it under the lock that
//! [`Memo::forget`] clears under, so a forgetting is either seen there or clears the entry.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

#[derive(Debug)]
pub struct Memo<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    /// One more on every forgetting.
    generation: AtomicU64,
    /// The most answers kept; beyond it the stale ones go, and if none is stale, all.
    max: usize,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub fn new(max: usize) -> Memo<K, V> {
        Memo { entries: Mutex::new(HashMap::new()), generation: AtomicU64::new(0), max }
    }

    /// The answer for `key`, if kept and not past its time.
    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.lock().get(key).filter(|(_, until)| *until > Instant::now()).map(|(v, _)| v.clone())
    }

    /// Taken before reading an answer from SQL, and handed to [`Memo::keep`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `value` for `key` until `until`, unless a forgetting came since `generation` was
    /// taken or `also` (asked under the lock) says no.
    pub fn keep(&self, key: K, value: V, until: Instant, generation: u64, also: impl FnOnce() -> bool) {
        let mut entries = self.lock();
        let now = Instant::now();
        if self.generation() != generation || until <= now || !also() {
            return;
        }
        if entries.len() >= self.max {
            entries.retain(|_, (_, u)| *u > now);
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key, (value, until));
    }

    /// Forgets every answer.
    pub fn forget(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Answers kept now, fresh or not.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Until when `key`'s answer is kept.
    #[cfg(test)]
    pub fn until(&self, key: &K) -> Option<Instant> {
        self.lock().get(key).map(|(_, until)| *until)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
