//! This node's membership in the cluster: heartbeats with a time to live, the list of live nodes,
//! and drain requests. A drain may be asked of any node through any node: the request travels on
//! the `nodes` topic and the named node applies it to itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Beat, Coord, NodeInfo, Received, topic};

/// How often a node beats, and how long a beat keeps it listed.
const BEAT_EVERY: Duration = Duration::from_secs(1);
const BEAT_TTL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Membership {
    coord: Coord,
    info: Mutex<NodeInfo>,
    draining: watch::Sender<bool>,
}

/// What [`Membership::request_drain`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainRequest {
    /// The node (as it will report itself once it applied the request).
    Sent(NodeInfo),
    /// No live node has that id.
    UnknownNode,
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Membership {
    pub fn new(coord: Coord, node_id: &str, services: &[&str], version: &str) -> Arc<Membership> {
        let instance = format!("{:016x}{:08x}", rand::random::<u64>(), std::process::id());
        let now = now_ms();
        let info = NodeInfo {
            id: node_id.to_owned(),
            instance,
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            version: version.to_owned(),
            started_at: now,
            last_seen: now,
            draining: false,
            ready: false,
            database_pool: 0,
        };
        Arc::new(Membership { coord, info: Mutex::new(info), draining: watch::channel(false).0 })
    }

    /// This node as it reports itself now (alive as it speaks: `last_seen` is now).
    pub fn me(&self) -> NodeInfo {
        let mut me = self.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
        me.draining = self.is_draining();
        me.ready &= !me.draining;
        me.last_seen = now_ms();
        me
    }

    /// Tells the cluster how many database connections this node's pool may open: together the
    /// nodes' pools must fit in what the database allows (`GET /api/v1/cluster`).
    pub fn set_database_pool(&self, connections: u32) {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).database_pool = connections;
    }

    pub fn node_id(&self) -> String {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).id.clone()
    }

    /// Records the first heartbeat. `Err` says why the node must not start: another live process
    /// uses its id. A process restarted right after a crash finds its predecessor's last beat:
    /// that one stops renewing, so it is waited out (one time to live) before refusing. An
    /// unreachable backend is no reason to refuse: the node starts degraded.
    pub async fn join(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + BEAT_TTL + BEAT_EVERY;
        loop {
            match self.beat().await {
                Some(Beat::Duplicate { other_instance }) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "ha.node_id {:?} is already used by another live node (instance {other_instance}); give \
                         every node its own ha.node_id, or stop the other process first",
                        self.node_id()
                    ));
                }
                Some(Beat::Duplicate { other_instance }) => {
                    tracing::warn!(node_id = %self.node_id(), other_instance, "this node id is still taken; waiting for the old heartbeat to expire");
                    tokio::time::sleep(BEAT_EVERY).await;
                }
                _ => return Ok(()),
            }
        }
    }

    async fn beat(&self) -> Option<Beat> {
        let mut me = self.me();
        me.last_seen = now_ms();
        match self.coord.beat(&me, BEAT_TTL).await {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat not recorded");
                None
            }
        }
    }

    /// Beats and applies drain requests until `shutdown`, then leaves the list at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut requests = self.coord.subscribe(topic::NODES).await.ok();
        let mut tick = tokio::time::interval(BEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    if let Some(Beat::Duplicate { other_instance }) = self.beat().await {
                        tracing::error!(node_id = %self.node_id(), other_instance, "another live process uses this node's ha.node_id; give every node its own id");
                    }
                }
                m = recv(&mut requests) => match m {
                    Some(Received::Message(b)) => self.apply(&b),
                    Some(_) => {}
                    None => requests = self.coord.subscribe(topic::NODES).await.ok(),
                },
            }
        }
        let me = self.me();
        let _ = self.coord.leave(&me.id, &me.instance).await;
    }

    fn apply(&self, payload: &[u8]) {
        let Some((id, draining)) = std::str::from_utf8(payload).ok().and_then(decode) else { return };
        if id == self.node_id() {
            self.set_draining(draining);
        }
    }

    /// Changes whenever this node starts or stops draining.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Drains (or resumes) this node.
    pub fn set_draining(&self, draining: bool) {
        if self.draining.send_if_modified(|d| std::mem::replace(d, draining) != draining) {
            tracing::info!(node_id = %self.node_id(), draining, "node drain state changed");
        }
    }

    /// Records whether this node can serve (its readiness probe's answer).
    pub fn set_ready(&self, ready: bool) {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).ready = ready;
    }

    /// The live nodes. While coordination is down only this node is known.
    pub async fn nodes(&self) -> Vec<NodeInfo> {
        let me = self.me();
        let mut nodes = self.coord.nodes().await.unwrap_or_default();
        nodes.retain(|n| n.id != me.id);
        nodes.push(me);
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes
    }

    /// Asks node `id` (this one or another) to drain or resume.
    pub async fn request_drain(&self, id: &str, draining: bool) -> crate::Result<DrainRequest> {
        if id == self.node_id() {
            self.set_draining(draining);
            return Ok(DrainRequest::Sent(self.me()));
        }
        let Some(mut node) = self.coord.nodes().await?.into_iter().find(|n| n.id == id) else {
            return Ok(DrainRequest::UnknownNode);
        };
        self.coord.publish(topic::NODES, Bytes::from(encode(id, draining))).await?;
        node.draining = draining;
        node.ready &= !draining;
        Ok(DrainRequest::Sent(node))
    }
}

async fn recv(sub: &mut Option<crate::Subscription>) -> Option<Received> {
    match sub {
        Some(s) => match s.recv().await {
            Received::Closed => None,
            m => Some(m),
        },
        None => {
            // Not subscribed (the backend was down at start): try again in a while.
            tokio::time::sleep(BEAT_EVERY).await;
            None
        }
    }
}

fn encode(id: &str, draining: bool) -> String {
    format!("drain {draining} {id}")
}

fn decode(s: &str) -> Option<(&str, bool)> {
    let rest = s.strip_prefix("drain ")?;
    let (flag, id) = rest.split_once(' ')?;
    Some((id, flag.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Local;

    #[test]
    fn drain_requests_round_trip_even_with_spaces_in_ids() {
        for (id, d) in [("node-1", true), ("a b", false)] {
            assert_eq!(decode(&encode(id, d)), Some((id, d)));
        }
        assert_eq!(decode("drain maybe x"), None);
    }

    #[tokio::test]
    async fn a_drain_request_reaches_the_named_node_through_another() {
        let coord: Coord = Arc::new(Local::new());
        let a = Membership::new(coord.clone(), "a", &["gateway"], "1");
        let b = Membership::new(coord.clone(), "b", &["dispatcher"], "1");
        a.join().await.unwrap();
        b.join().await.unwrap();
        let stop = CancellationToken::new();
        let run = tokio::spawn(b.clone().run(stop.clone()));
        let mut watch = b.draining();
        // The subscription is taken when `run` starts: retry until the request lands.
        let mut landed = false;
        for _ in 0..50 {
            assert!(matches!(a.request_drain("b", true).await.unwrap(), DrainRequest::Sent(_)));
            if tokio::time::timeout(Duration::from_millis(100), watch.wait_for(|d| *d)).await.is_ok() {
                landed = true;
                break;
            }
        }
        assert!(landed, "b never started draining");
        assert_eq!(a.request_drain("nobody", true).await.unwrap(), DrainRequest::UnknownNode);
        assert_eq!(a.nodes().await.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        stop.cancel();
        run.await.unwrap();
        assert_eq!(a.nodes().await.len(), 1, "b left the list when it stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_process_with_the_same_id_may_not_join() {
        let coord: Coord = Arc::new(Local::new());
        let first = Membership::new(coord.clone(), "n", &[], "1");
        first.join().await.unwrap();
        // The first one keeps beating, as a live process does.
        let stop = CancellationToken::new();
        let run = tokio::spawn(first.clone().run(stop.clone()));
        let second = Membership::new(coord, "n", &[], "1");
        let err = second.join().await.unwrap_err();
        assert!(err.contains("ha.node_id"), "{err}");
        stop.cancel();
        run.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_after_a_crash_waits_out_the_dead_heartbeat() {
        let coord: Coord = Arc::new(Local::new());
        let crashed = Membership::new(coord.clone(), "n", &[], "1");
        crashed.join().await.unwrap();
        drop(crashed); // never beats again, never leaves
        let restarted = Membership::new(coord, "n", &[], "1");
        restarted.join().await.unwrap();
    }
}
