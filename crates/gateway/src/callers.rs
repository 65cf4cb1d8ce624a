//! A node's short memory of who each credential is. Every API call starts by resolving its
//! session cookie or API token (one or two statements), and a busy client makes hundreds of calls
//! a second with the same one: remembering the answer for a moment takes that read off nearly
//! every call.
//!
//! Architecture Invariant: a remembered answer never outlives what it answers for. It is kept for
//! at most [`FRESH`], never past the credential's own expiry, and is forgotten on every node as
//! soon as anything changes who a credential is (logout, a password, a user or a token changed
//! or deleted, a project gone): those writes publish on the rights topic, which every node
//! follows, and forget on their own node before they answer. Nothing is remembered while this
//! node does not hear that topic (not yet subscribed, or coordination down); an answer read
//! from SQL before a forgetting is not kept after it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::auth::Caller;
use crate::events::feed::Feed;
use crate::memo::Memo;

/// The longest an answer is remembered: also the bound on how late a forgetting lost by
/// coordination takes effect.
pub const FRESH: Duration = Duration::from_secs(1);
/// The most credentials remembered.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct Callers {
    memo: Memo<String, Caller>,
    /// Whether this node hears the rights topic now.
    hearing: AtomicBool,
}

impl Default for Callers {
    fn default() -> Callers {
        Callers { memo: Memo::new(MAX_ENTRIES), hearing: AtomicBool::new(false) }
    }
}

impl Callers {
    /// The caller `key` stands for, if remembered and still fresh.
    pub fn get(&self, key: &str, coordinated: bool) -> Option<Caller> {
        if !(coordinated && self.hearing.load(Ordering::Acquire)) {
            return None;
        }
        self.memo.get(key)
    }

    /// Taken before reading a credential from SQL, and handed to [`Callers::keep`].
    pub fn generation(&self) -> u64 {
        self.memo.generation()
    }

    /// Remembers `caller` for `key` until `expires_ms` (Unix ms; `None`: no expiry of its own),
    /// for at most [`FRESH`], unless a forgetting came since `generation` was taken.
    pub fn keep(&self, key: String, caller: Caller, expires_ms: Option<i64>, generation: u64) {
        let left = expires_ms
            .map_or(FRESH, |at| Duration::from_millis(at.saturating_sub(baton_store::now_ms()).max(0) as u64));
        let until = Instant::now() + left.min(FRESH);
        self.memo.keep(key, caller, until, generation, || self.hearing.load(Ordering::Acquire));
    }

    /// Forgets every answer (something changed who a credential is).
    pub fn forget(&self) {
        self.memo.forget();
    }

    /// Starts or stops remembering; either way what was remembered may be stale, and goes.
    fn hear(&self, on: bool) {
        self.hearing.store(on, Ordering::Release);
        self.forget();
    }
}

/// Forgets on this node whatever the rights topic announces, until `stop`. Callers are
/// remembered only while this runs and its subscription holds.
pub async fn listen(state: AppState, stop: CancellationToken) {
    let mut feed = state.feeds.subscribe(crate::routes::MEMBERS_TOPIC);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            f = feed.next() => match f {
                Some(Feed::Notice(_)) => state.callers.forget(),
                // Announcements may have been lost: forget, and from now on the feed holds.
                Some(Feed::Gap) => state.callers.hear(true),
                None => break,
            },
        }
    }
    state.callers.hear(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(id: i64) -> Caller {
        Caller { id, username: format!("u{id}"), user_admin: false, token: None }
    }

    fn far() -> Option<i64> {
        Some(baton_store::now_ms() + 3_600_000)
    }

    #[test]
    fn nothing_is_remembered_unless_forgettings_are_heard() {
        let c = Callers::default();
        c.keep("a".into(), caller(1), far(), c.generation());
        assert!(c.get("a", true).is_none(), "not hearing: not kept");
        c.hear(true);
        c.keep("a".into(), caller(1), far(), c.generation());
        assert_eq!(c.get("a", true).map(|c| c.id), Some(1));
        assert!(c.get("a", false).is_none(), "coordination down: not used");
        c.hear(false);
        assert!(c.get("a", true).is_none(), "stopped hearing: forgotten");
    }

    #[test]
    fn a_forgetting_clears_all_and_beats_a_read_made_before_it() {
        let c = Callers::default();
        c.hear(true);
        c.keep("a".into(), caller(1), None, c.generation());
        let before = c.generation();
        c.forget();
        assert!(c.get("a", true).is_none());
        c.keep("b".into(), caller(2), None, before);
        assert!(c.get("b", true).is_none(), "read before the forgetting: not kept");
        c.keep("b".into(), caller(2), None, c.generation());
        assert_eq!(c.get("b", true).map(|c| c.id), Some(2));
    }

    #[test]
    fn an_answer_lasts_no_longer_than_its_credential_nor_fresh() {
        let c = Callers::default();
        c.hear(true);
        c.keep("gone".into(), caller(1), Some(baton_store::now_ms() - 1), c.generation());
        assert!(c.get("gone", true).is_none(), "expired: not kept");
        c.keep("soon".into(), caller(2), Some(baton_store::now_ms() + 30), c.generation());
        assert!(c.get("soon", true).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("soon", true).is_none(), "past its expiry");
        c.keep("long".into(), caller(3), far(), c.generation());
        let until = c.memo.until(&"long".to_owned()).unwrap();
        assert!(until <= Instant::now() + FRESH);
    }

    #[test]
    fn the_memory_is_bounded() {
        let c = Callers::default();
        c.hear(true);
        for i in 0..(MAX_ENTRIES as i64 + 5) {
            c.keep(format!("k{i}"), caller(i), None, c.generation());
        }
        assert!(c.memo.len() <= MAX_ENTRIES);
    }
}
