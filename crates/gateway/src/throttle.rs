//! Login throttling: failed logins are counted per user name and per client address in
//! coordination counters (Redis in a cluster, so attempts spread over nodes count together;
//! in process on a single node). Once either count reaches its limit, logins for that name or
//! from that address are refused with 429 and `Retry-After` until the window ends, before any
//! password is hashed. A successful login clears its user name's count; the address keeps its
//! count, so one address cannot try many names by logging in to its own account in between.
//!
//! While coordination is down, counting goes on in this process (each node then allows the
//! limit on its own): failing open would lift the limit whenever Redis is unreachable, and
//! failing closed would lock everyone out. When coordination returns, a check takes the larger
//! of both counts, so what was counted meanwhile still applies.
//!
//! Checks happen before the password check and counts after it, so a burst of concurrent
//! attempts may pass a limit by as many as run at once; the hashing pool bounds that.

use std::net::IpAddr;
use std::time::Duration;

use baton_coord::{Coord, Coordinator, Count, Local};

use crate::error::{Error, Result};

/// When logins are refused.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures for one user name within a window.
    pub per_user: u64,
    /// Failures from one client address (IPv6: its /64) within a window.
    pub per_address: u64,
    /// From a key's first failure.
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { per_user: 10, per_address: 100, window: Duration::from_secs(900) }
    }
}

#[derive(Debug)]
pub struct Throttle {
    coord: Coord,
    /// Counts while `coord` fails.
    fallback: Local,
    limits: Limits,
}

impl Throttle {
    pub fn new(coord: Coord, limits: Limits) -> Throttle {
        Throttle { coord, fallback: Local::new(), limits }
    }

    /// Refuses with 429 when `user` or `addr` has failed too often.
    pub async fn check(&self, user: &str, addr: IpAddr) -> Result<()> {
        let (user_key, addr_key) = (user_key(user), addr_key(addr));
        let (by_user, by_addr) = tokio::join!(self.peek(&user_key), self.peek(&addr_key));
        let over = [(by_user, self.limits.per_user), (by_addr, self.limits.per_address)]
            .into_iter()
            .filter(|(count, limit)| count.n >= *limit)
            .map(|(count, _)| count.resets_in)
            .max();
        match over {
            Some(wait) => {
                let secs = crate::error::retry_after_secs(wait);
                Err(Error::rate_limited(format!("too many failed logins; retry in {secs} s"), wait))
            }
            None => Ok(()),
        }
    }

    /// Counts a failed login (or a wrong current password) for `user` and `addr`.
    pub async fn failed(&self, user: &str, addr: IpAddr) {
        let (user_key, addr_key) = (user_key(user), addr_key(addr));
        tokio::join!(self.hit(&user_key), self.hit(&addr_key));
    }

    /// Forgets the failures of `user` after a successful login.
    pub async fn succeeded(&self, user: &str) {
        let key = user_key(user);
        if let Err(e) = self.coord.clear(&key).await {
            tracing::debug!(error = %e, "cannot clear a login counter in coordination");
        }
        let _ = self.fallback.clear(&key).await;
    }

    async fn peek(&self, key: &str) -> Count {
        let local = self.fallback.peek(key).await.unwrap_or_default();
        match self.coord.peek(key).await {
            Ok(shared) if shared.n >= local.n => shared,
            Ok(_) => local,
            Err(e) => {
                tracing::debug!(error = %e, "login counters in process while coordination is down");
                local
            }
        }
    }

    async fn hit(&self, key: &str) {
        if let Err(e) = self.coord.hit(key, self.limits.window).await {
            tracing::debug!(error = %e, "login counters in process while coordination is down");
            let _ = self.fallback.hit(key, self.limits.window).await;
        }
    }
}

/// The counter of a user name: case and surrounding blanks do not make another name, and the
/// name is hashed so that whatever a client sends makes a short key.
fn user_key(user: &str) -> String {
    format!("login:user:{}", baton_core::token::digest(&user.trim().to_lowercase()))
}

/// The counter of an address. An IPv6 client usually holds a whole /64, so that is what counts.
fn addr_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("login:addr:{v4}"),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc()).map_or(v6.to_string(), |n| n.to_string());
            format!("login:addr:{net}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use baton_coord::{Beat, Lock, NodeInfo, Queued, Subscription};
    use baton_core::ErrorCode;
    use bytes::Bytes;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_fold_case_and_ipv6_interface_ids() {
        assert_eq!(user_key(" Alice "), user_key("alice"));
        assert_ne!(user_key("alice"), user_key("bob"));
        assert_eq!(addr_key(ip("2001:db8:1:2:aaaa::1")), addr_key(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(addr_key(ip("2001:db8:1:2::1")), addr_key(ip("2001:db8:1:3::1")));
        assert_eq!(addr_key(ip("::ffff:192.0.2.1")), "login:addr:192.0.2.1");
    }

    #[tokio::test]
    async fn failures_reach_the_limit_and_success_clears_the_user_only() {
        let limits = Limits { per_user: 2, per_address: 3, window: Duration::from_secs(60) };
        let t = Throttle::new(Arc::new(Local::new()), limits);
        let a = ip("192.0.2.1");
        t.check("alice", a).await.unwrap();
        t.failed("alice", a).await;
        t.failed("Alice", a).await;
        let e = t.check("alice", a).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert!(e.retry_after.is_some_and(|r| r > Duration::from_secs(50)), "{e:?}");
        t.check("bob", a).await.unwrap();
        t.succeeded("alice").await;
        t.check("alice", a).await.unwrap();
        t.failed("bob", a).await;
        assert!(t.check("carol", a).await.is_err(), "the address has failed three times");
        t.check("carol", ip("192.0.2.2")).await.unwrap();
    }

    /// The in-process coordinator behind a switch that makes counters fail, as `Guarded` does
    /// while Redis is down.
    #[derive(Debug, Default)]
    struct Switch {
        inner: Local,
        down: AtomicBool,
    }

    impl Switch {
        fn gate(&self) -> baton_coord::Result<()> {
            if self.down.load(Ordering::SeqCst) { Err(baton_coord::Error::Unavailable("down".into())) } else { Ok(()) }
        }
    }

    #[async_trait]
    impl Coordinator for Switch {
        async fn publish(&self, t: &str, p: Bytes) -> baton_coord::Result<()> {
            self.inner.publish(t, p).await
        }
        async fn subscribe(&self, t: &str) -> baton_coord::Result<Subscription> {
            self.inner.subscribe(t).await
        }
        async fn enqueue(&self, q: &[Queued]) -> baton_coord::Result<()> {
            self.inner.enqueue(q).await
        }
        async fn dequeue(&self, ids: &[i64]) -> baton_coord::Result<Vec<i64>> {
            self.inner.dequeue(ids).await
        }
        async fn queue_page(&self, a: Option<Queued>, l: usize) -> baton_coord::Result<Vec<Queued>> {
            self.inner.queue_page(a, l).await
        }
        async fn wait_for_work(&self, t: Duration) -> baton_coord::Result<bool> {
            self.inner.wait_for_work(t).await
        }
        async fn queue_len(&self) -> baton_coord::Result<u64> {
            self.inner.queue_len().await
        }
        async fn try_lock(&self, n: &str, t: Duration) -> baton_coord::Result<Option<Lock>> {
            self.inner.try_lock(n, t).await
        }
        async fn extend(&self, l: &Lock, t: Duration) -> baton_coord::Result<bool> {
            self.inner.extend(l, t).await
        }
        async fn unlock(&self, l: &Lock) -> baton_coord::Result<()> {
            self.inner.unlock(l).await
        }
        async fn hit(&self, k: &str, w: Duration) -> baton_coord::Result<Count> {
            self.gate()?;
            self.inner.hit(k, w).await
        }
        async fn peek(&self, k: &str) -> baton_coord::Result<Count> {
            self.gate()?;
            self.inner.peek(k).await
        }
        async fn clear(&self, k: &str) -> baton_coord::Result<()> {
            self.gate()?;
            self.inner.clear(k).await
        }
        async fn version(&self, n: &str) -> baton_coord::Result<u64> {
            self.gate()?;
            self.inner.version(n).await
        }
        async fn bump(&self, n: &str) -> baton_coord::Result<()> {
            self.gate()?;
            self.inner.bump(n).await
        }
        async fn beat(&self, n: &NodeInfo, t: Duration) -> baton_coord::Result<Beat> {
            self.inner.beat(n, t).await
        }
        async fn leave(&self, n: &str, i: &str) -> baton_coord::Result<()> {
            self.inner.leave(n, i).await
        }
        async fn nodes(&self) -> baton_coord::Result<Vec<NodeInfo>> {
            self.inner.nodes().await
        }
        async fn ping(&self) -> baton_coord::Result<()> {
            self.gate()
        }
        fn kind(&self) -> &'static str {
            "switch"
        }
    }

    #[tokio::test]
    async fn with_coordination_down_failures_count_in_process_and_still_apply_after() {
        let coord = Arc::new(Switch::default());
        let limits = Limits { per_user: 3, per_address: 100, window: Duration::from_secs(60) };
        let t = Throttle::new(coord.clone(), limits);
        let a = ip("192.0.2.1");
        t.failed("alice", a).await;
        coord.down.store(true, Ordering::SeqCst);
        // Neither open (the shared count is unreadable) nor closed (nobody is locked out).
        t.check("alice", a).await.unwrap();
        t.check("bob", a).await.unwrap();
        for _ in 0..3 {
            t.failed("alice", a).await;
        }
        assert!(t.check("alice", a).await.is_err(), "in-process counts apply while down");
        t.check("bob", a).await.unwrap();
        coord.down.store(false, Ordering::SeqCst);
        assert_eq!(coord.inner.peek(&user_key("alice")).await.unwrap().n, 1, "the shared count missed the outage");
        assert!(t.check("alice", a).await.is_err(), "what was counted meanwhile still applies");
        t.succeeded("alice").await;
        t.check("alice", a).await.unwrap();
    }
}
