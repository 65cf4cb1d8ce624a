//! What makes a process one node of a cluster: its coordinator (Redis in a cluster, in-process on
//! a single node), and the tasks that keep the node's drain state and readiness true everywhere
//! they matter (dispatcher, gRPC health, heartbeats, and the `baton_database_up`,
//! `baton_coordination_up`, `baton_ready` and `baton_draining` metrics).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use baton_config::Config;
use baton_coord::{Coord, Membership};
use baton_store::Store;
use tokio_util::sync::CancellationToken;

/// How long a starting node waits for Redis before it gives up.
const REDIS_START_WAIT: Duration = Duration::from_secs(30);

/// The coordinator: Redis behind a fail-fast guard when `ha.enabled`, else the in-process one.
/// The guard's probe runs until `stop`.
pub async fn coordinator(cfg: &Config, stop: &CancellationToken) -> anyhow::Result<Coord> {
    if !cfg.ha.enabled {
        return Ok(Arc::new(baton_coord::Local::new()));
    }
    let url = cfg.redis_url().context("config key `ha.redis.addr`: set it (host:port) or ha.redis.url")?;
    let opts = baton_coord::RedisOptions { url, key_prefix: cfg.ha.redis.key_prefix.clone(), pool_size: 16 };
    let started = tokio::time::Instant::now();
    let redis = loop {
        match baton_coord::Redis::connect(opts.clone()).await {
            Ok(r) => break r,
            Err(e) if started.elapsed() < REDIS_START_WAIT => {
                tracing::warn!(error = %e, "redis not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "{e} (for {REDIS_START_WAIT:?}); check config keys `ha.redis.url` / `ha.redis.addr`"
                ));
            }
        }
    };
    let guarded = baton_coord::Guarded::new(Arc::new(redis));
    tokio::spawn(guarded.clone().probe(stop.clone()));
    Ok(guarded)
}

/// A gRPC port's health service and the names it reports on.
pub type PortHealth = (tonic_health::server::HealthReporter, &'static [&'static str]);

/// Applies this node's drain state (from the API, from any node, or from SIGTERM) to the
/// dispatcher and the gRPC health services of its ports, until `stop`.
pub async fn follow_drain(
    membership: Arc<Membership>,
    dispatcher: baton_dispatcher::Service,
    healths: Vec<PortHealth>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut draining = membership.draining();
    loop {
        let now = *draining.borrow_and_update();
        dispatcher.set_draining(now);
        let status = if now { tonic_health::ServingStatus::NotServing } else { tonic_health::ServingStatus::Serving };
        for (health, names) in &healths {
            for name in *names {
                health.set_service_status(*name, status).await;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = draining.changed() => if r.is_err() { return Ok(()) },
        }
    }
}

/// What [`track_readiness`] watches, and where it reports.
pub struct Health {
    pub membership: Arc<Membership>,
    pub store: Store,
    pub coord: Coord,
    pub metrics: baton_metrics::Metrics,
}

/// Keeps the readiness this node reports in its heartbeat true (the database answers and the
/// node does not drain), and the node's health metrics: whether the database and coordination
/// answer.
pub async fn track_readiness(h: Health, stop: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let db = matches!(tokio::time::timeout(Duration::from_secs(2), h.store.ping()).await, Ok(Ok(())));
        let draining = h.membership.is_draining();
        h.membership.set_ready(db && !draining);
        let health =
            baton_metrics::Health { database: db, coordination: h.coord.healthy(), draining, ready: db && !draining };
        h.metrics.set_health(health);
    }
}

/// What the probes of a process without the gateway need.
pub struct Probes {
    pub membership: Arc<Membership>,
    pub store: Store,
    pub limits: baton_gateway::HttpLimits,
    pub metrics: baton_metrics::Metrics,
}

/// `/api/health`, `/api/ready` and `/metrics` for a process without the gateway (a split
/// dispatcher or scheduler), so orchestrators, load balancers and Prometheus reach every process
/// alike, served with the same limits as the API and counted in the same HTTP metrics. Like the gateway's, readiness says why not in a few fixed words; the
/// driver's message goes to the log.
pub async fn serve_probes(listener: tokio::net::TcpListener, p: Probes, stop: CancellationToken) -> anyhow::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let Probes { membership, store, limits, metrics } = p;
    let node = membership.node_id();
    let ready = move || {
        let (membership, store) = (membership.clone(), store.clone());
        async move {
            let why = if membership.is_draining() {
                Some("draining")
            } else {
                match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "readiness: the database does not answer");
                        Some("database unreachable")
                    }
                    Err(_) => {
                        tracing::warn!("readiness: the database gave no answer within 2 s");
                        Some("database unreachable")
                    }
                }
            };
            match why {
                None => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ready"}))),
                Some(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({"error": {"code": "unavailable", "message": why}})),
                ),
            }
        }
    };
    let app = axum::Router::new()
        .route("/api/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/api/ready", get(ready))
        .route(
            "/metrics",
            get({
                let metrics = metrics.clone();
                move || async move { baton_gateway::render_metrics(&metrics) }
            }),
        )
        .layer(axum::middleware::map_response(move |mut r: axum::response::Response| {
            let node = node.clone();
            async move {
                if let Ok(v) = axum::http::HeaderValue::from_str(&node) {
                    r.headers_mut().insert("x-baton-node", v);
                }
                r
            }
        }))
        .layer(axum::middleware::from_fn_with_state(metrics, baton_gateway::record_http));
    baton_gateway::serve(listener, app, limits, stop).await;
    Ok(())
}
