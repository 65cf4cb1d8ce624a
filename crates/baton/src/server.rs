//! `baton server`: the gateway, the scheduler, the dispatcher and (unless turned off) a local
//! runner in one process. The services talk gRPC over loopback exactly as they would across
//! machines: the gateway and scheduler call the dispatcher's `Tasks` service, and the local
//! runner attaches to its `Runner` service like any remote runner.
//!
//! Shutdown (SIGTERM or ctrl-c) drains: readiness fails, the dispatcher stops assigning, the
//! runner lets running scripts finish within `shutdown.grace_seconds` and reports them, and only
//! then do the servers stop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use baton_config::Config;
use baton_core::internal::{Channel as InternalChannel, ClusterAuth};
use baton_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::tls::KeyPair;

/// Which services one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    pub gateway: bool,
    pub scheduler: bool,
    pub dispatcher: bool,
}

impl Services {
    pub const ALL: Services = Services { gateway: true, scheduler: true, dispatcher: true };

    fn names(self) -> Vec<&'static str> {
        [("gateway", self.gateway), ("scheduler", self.scheduler), ("dispatcher", self.dispatcher)]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect()
    }
}

impl Default for Services {
    fn default() -> Services {
        Services::ALL
    }
}

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Start without the local runner (it exists only beside a dispatcher).
    pub no_runner: bool,
    pub services: Services,
}

/// A running server.
pub struct Server {
    pub http_addr: SocketAddr,
    /// The runner port, where runners reach the dispatcher, if this process runs one.
    pub grpc_addr: Option<SocketAddr>,
    /// The internal port (`Tasks`, `Schedules`), if this process runs a dispatcher or scheduler.
    pub cluster_addr: Option<SocketAddr>,
    pub node_id: String,
    drain: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Drains and stops, as on SIGTERM, and waits until everything has stopped.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.drain.cancel();
        self.task.await.context("server task panicked")?
    }

    /// Stops at once without draining, like a crash of the process: nothing is reported any more,
    /// and scripts are left running as they would be after SIGKILL, until the next start of a
    /// runner on the same data directory kills them.
    pub fn abort(self) {
        self.task.abort();
    }

    /// Waits until the server stops by itself (after [`Server::drain_token`] fires).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }

    /// Cancelling this token starts the drain.
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }
}

/// Where this process reaches one of its own ports, over TLS when the port uses it.
fn own_url(addr: SocketAddr, tls: Option<&KeyPair>) -> String {
    let scheme = if tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{}", loopback(addr))
}

/// The address a local client dials to reach a listener bound to `addr`.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

/// A lazily connecting channel to `url`, over TLS when `tls` is given.
fn channel(url: &str, tls: Option<ClientTlsConfig>, key: &str) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("config key `cluster.{key}_url`: {url:?} is not a URL"))?
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).with_context(|| format!("cannot set up TLS to the {key} at {url}"))?;
    }
    Ok(endpoint.connect_lazy())
}

/// The HTTP server's timeouts and connection limit (`http.*`).
fn http_limits(cfg: &Config) -> baton_gateway::HttpLimits {
    baton_gateway::HttpLimits {
        header_read_timeout: Duration::from_secs(cfg.http.header_read_timeout_seconds),
        idle_timeout: Duration::from_secs(cfg.http.idle_timeout_seconds),
        max_connections: cfg.http.max_connections,
    }
}

async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (config key `{key}`): is another process using it?"))
}

/// Opens the database, applies migrations, creates the first admin, binds the listeners and
/// starts the chosen services. Returns once the server accepts requests.
pub async fn start(cfg: Config, opts: StartOptions) -> anyhow::Result<Server> {
    let only = opts.services;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data_dir {} (config key `data_dir`)", cfg.data_dir.display()))?;
    let store = Store::connect(&baton_store::Options {
        url: cfg.database_url().to_owned(),
        max_connections: cfg.database.max_connections,
        connect_timeout: Duration::from_secs(cfg.database.connect_timeout_seconds),
        acquire_timeout: Duration::from_secs(cfg.database.acquire_timeout_seconds),
    })
    .await
    .context("cannot open the database (config key `database.url`)")?;
    store.migrate().await.context("cannot apply database migrations")?;
    crate::bootstrap::check_connection_room(&cfg, &store).await;
    if only.gateway {
        crate::bootstrap::first_admin(&cfg, &baton_store::gateway::Tables::new(store.clone())).await?;
    }

    let runner_tls = KeyPair::load("grpc.tls", cfg.grpc.tls.cert_file.as_deref(), cfg.grpc.tls.key_file.as_deref())?;
    let cluster_tls =
        KeyPair::load("cluster.tls", cfg.cluster.tls.cert_file.as_deref(), cfg.cluster.tls.key_file.as_deref())?;
    let cluster_ca = crate::tls::read_ca("cluster.tls.ca_file", cfg.cluster.tls.ca_file.as_deref())?;
    let http = bind(&cfg.http.listen, "http.listen").await?;
    // The dispatcher serves runners on the runner port; it and the scheduler serve each other and
    // the gateway on the internal port, which is never exposed to runners.
    let grpc = if only.dispatcher { Some(bind(&cfg.grpc.listen, "grpc.listen").await?) } else { None };
    let internal =
        if only.dispatcher || only.scheduler { Some(bind(&cfg.cluster.listen, "cluster.listen").await?) } else { None };
    let http_addr = http.local_addr()?;
    let grpc_addr = grpc.as_ref().map(TcpListener::local_addr).transpose()?;
    let cluster_addr = internal.as_ref().map(TcpListener::local_addr).transpose()?;
    // A single node without a configured secret makes one up: nobody else needs to know it.
    let secret = cfg.cluster.secret.as_ref().map_or_else(|| baton_core::token::generate(""), |s| s.expose().to_owned());
    let auth = ClusterAuth::new(&secret).map_err(anyhow::Error::msg)?;
    let cluster_secret = baton_core::internal::ClusterSecret::new(&secret);
    let node_id = cfg.node_id().to_owned();
    // This process calls its own internal services directly (the same gRPC clients and servers,
    // without a pipe or a socket between them); other processes' ports at their configured URLs,
    // trusting `cluster.tls.ca_file`.
    let internal_channel = |own: Option<&InternalChannel>, key: &str| -> anyhow::Result<InternalChannel> {
        if let Some(own) = own {
            return Ok(own.clone());
        }
        let configured = if key == "dispatcher" { &cfg.cluster.dispatcher_url } else { &cfg.cluster.scheduler_url };
        let url = configured.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "config key `cluster.{key}_url` is required without a {key} in this process: set it to the {key}s' \
                 internal address (e.g. http://baton-{key}:7001)"
            )
        })?;
        let tls = url.starts_with("https://").then(|| crate::tls::remote_client(cluster_ca.as_deref()));
        Ok(baton_core::internal::channel(channel(&url, tls, key)?))
    };

    let seal_key = std::sync::Arc::new(crate::parts::seal_key(&cfg)?);
    let stop = CancellationToken::new();
    let coord = crate::node::coordinator(&cfg, &stop).await?;
    // One registry per server (not a global one): tests run several servers in one process.
    let metrics = baton_metrics::Metrics::new(baton_metrics::Build {
        version: baton_core::VERSION,
        node_id: &node_id,
        dispatcher: only.dispatcher,
        gateway: only.gateway,
        sql_statements: Some({
            let store = store.clone();
            baton_metrics::SqlStatements(std::sync::Arc::new(move || {
                store.statement_counts().snapshot().map(|(k, n)| (k.as_str(), n)).collect()
            }))
        }),
    });
    let membership = baton_coord::Membership::new(coord.clone(), &node_id, &only.names(), baton_core::VERSION);
    membership.set_database_pool(cfg.database.max_connections);
    membership.join().await.map_err(anyhow::Error::msg)?;
    let mut services = tokio::task::JoinSet::new();
    services.spawn({
        let (m, s) = (membership.clone(), stop.clone());
        async move {
            m.run(s).await;
            Ok(())
        }
    });
    let health = crate::node::Health {
        membership: membership.clone(),
        store: store.clone(),
        coord: coord.clone(),
        metrics: metrics.clone(),
    };
    services.spawn(crate::node::track_readiness(health, stop.clone()));

    let dispatcher = only.dispatcher.then(|| {
        baton_dispatcher::Service::new(
            baton_dispatcher::Options {
                node_id: node_id.clone(),
                cluster_secret: cluster_secret.clone(),
                lease: Duration::from_secs(cfg.dispatcher.lease_seconds),
                heartbeat: Duration::from_secs(cfg.dispatcher.heartbeat_seconds),
                seal_key: seal_key.clone(),
                move_runners_on_drain: cfg.ha.enabled,
            },
            baton_dispatcher::Deps { store: store.clone(), coord: coord.clone(), metrics: metrics.clone() },
        )
    });
    let own_tasks = dispatcher.as_ref().map(|d| baton_core::internal::channel(d.tasks_server()));
    let scheduler = if only.scheduler {
        Some(baton_scheduler::Service::new(
            baton_scheduler::Options {
                sweep_every: Duration::from_secs(1),
                reconcile_every: Duration::from_secs(2),
                cluster_secret: cluster_secret.clone(),
                retention: baton_scheduler::RetentionLimits {
                    max_age: (cfg.retention.max_age_seconds > 0)
                        .then(|| Duration::from_secs(cfg.retention.max_age_seconds)),
                    max_per_template: (cfg.retention.max_tasks_per_template > 0)
                        .then_some(cfg.retention.max_tasks_per_template),
                },
                retention_every: Duration::from_secs(cfg.retention.sweep_every_seconds.max(1)),
            },
            baton_scheduler::Deps {
                dispatcher: internal_channel(own_tasks.as_ref(), "dispatcher")?,
                auth: auth.clone(),
                store: store.clone(),
                coord: coord.clone(),
            },
        ))
    } else {
        None
    };
    let own_schedules = scheduler.as_ref().map(|s| baton_core::internal::channel(s.schedules_server()));
    let mut healths = Vec::new();
    if let (Some(listener), Some(d)) = (grpc, &dispatcher) {
        let (health, server) = crate::parts::runner_port(d, listener, runner_tls.as_ref(), stop.clone()).await?;
        services.spawn(server);
        healths.push((health, crate::parts::RUNNER_PORT_SERVICES));
    }
    if let Some(listener) = internal {
        let (health, server) = crate::parts::internal_port(
            dispatcher.as_ref(),
            scheduler.as_ref(),
            listener,
            cluster_tls.as_ref(),
            stop.clone(),
        )
        .await?;
        services.spawn(server);
        healths.push((health, crate::parts::INTERNAL_PORT_SERVICES));
    }
    if let Some(d) = &dispatcher {
        services.spawn(crate::node::follow_drain(membership.clone(), d.clone(), healths, stop.clone()));
    }
    if let Some(d) = &dispatcher {
        let (d, s) = (d.clone(), stop.clone());
        services.spawn(async move { d.run(s).await.context("dispatcher failed") });
    }
    if let Some(scheduler) = scheduler {
        let s = stop.clone();
        services.spawn(async move {
            scheduler.run(s).await;
            Ok(())
        });
    }
    if only.gateway {
        let gateway = baton_gateway::Service::new(
            baton_gateway::Options {
                node_id: node_id.clone(),
                max_body_bytes: cfg.http.max_body_bytes,
                secure_cookies: cfg.http.secure_cookies,
                session_ttl: Duration::from_secs(cfg.http.session_ttl_hours * 3600),
                runner_lease: Duration::from_secs(cfg.dispatcher.lease_seconds),
                seal_key,
                login: baton_gateway::LoginLimits {
                    per_user: cfg.login.max_failures_per_user,
                    per_address: cfg.login.max_failures_per_address,
                    window: Duration::from_secs(cfg.login.window_seconds),
                },
                hash_concurrency: cfg.login.hash_concurrency,
                trusted_proxies: cfg.trusted_proxies(),
                allowed_origins: cfg.http.allowed_origins.clone(),
                ws_ping: Duration::from_secs(cfg.http.ws_ping_seconds),
                sse_ping: Duration::from_secs(cfg.http.sse_ping_seconds),
                http: http_limits(&cfg),
                sweep_every: Duration::from_secs(cfg.login.sweep_every_seconds),
                audit_max_age: (cfg.retention.max_age_seconds > 0)
                    .then(|| Duration::from_secs(cfg.retention.max_age_seconds)),
                // A cluster's gateways share Redis; without it, only a node that runs every
                // service is sure to be the only gateway.
                remember_templates: cfg.ha.enabled || (only.dispatcher && only.scheduler),
            },
            baton_gateway::Deps {
                store: store.clone(),
                membership: membership.clone(),
                coord: coord.clone(),
                dispatcher: internal_channel(own_tasks.as_ref(), "dispatcher")?,
                scheduler: internal_channel(own_schedules.as_ref(), "scheduler")?,
                auth: auth.clone(),
                metrics: metrics.clone(),
            },
        );
        let s = stop.clone();
        services.spawn(async move {
            gateway.run(http, s).await;
            Ok(())
        });
    } else {
        // Orchestrators probe every process the same way.
        let probes = crate::node::Probes {
            membership: membership.clone(),
            store: store.clone(),
            limits: http_limits(&cfg),
            metrics: metrics.clone(),
        };
        services.spawn(crate::node::serve_probes(http, probes, stop.clone()));
    }

    let runner = match (&dispatcher, opts.no_runner, grpc_addr) {
        (Some(_), false, Some(addr)) => {
            let dial = crate::parts::RunnerDial {
                url: own_url(addr, runner_tls.as_ref()),
                tls: runner_tls.as_ref().map(|p| p.loopback_client(cluster_ca.as_deref())),
            };
            Some(
                crate::parts::local_runner(&cfg, internal_channel(own_tasks.as_ref(), "dispatcher")?, auth, dial)
                    .await?,
            )
        }
        _ => None,
    };
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(node_id = %node_id, services = ?only.names(), http = %http_addr, grpc = ?grpc_addr, cluster = ?cluster_addr, runner = runner.is_some(), workers, "baton started");

    let drain = CancellationToken::new();
    let task =
        tokio::spawn(lifecycle(Lifecycle { drain: drain.clone(), stop, services, runner, membership, dispatcher }));
    Ok(Server { http_addr, grpc_addr, cluster_addr, node_id, drain, task })
}

struct Lifecycle {
    drain: CancellationToken,
    stop: CancellationToken,
    services: tokio::task::JoinSet<anyhow::Result<()>>,
    runner: Option<crate::parts::LocalRunner>,
    membership: std::sync::Arc<baton_coord::Membership>,
    dispatcher: Option<baton_dispatcher::Service>,
}

/// Runs until asked to drain (or a service fails), then shuts down in order.
async fn lifecycle(mut l: Lifecycle) -> anyhow::Result<()> {
    let failed = tokio::select! {
        _ = l.drain.cancelled() => None,
        r = l.services.join_next() => Some(r),
    };
    if let Some(r) = failed {
        l.stop.cancel();
        let why = match r {
            Some(Ok(Err(e))) => e,
            Some(Err(e)) => anyhow::anyhow!("a service panicked: {e}"),
            _ => anyhow::anyhow!("a service stopped unexpectedly"),
        };
        return Err(why);
    }
    tracing::info!("draining: no new work; running scripts may finish");
    // The same drain as the API's; applied to the dispatcher here too, so it holds even before
    // the follower task sees it.
    l.membership.set_draining(true);
    if let Some(d) = &l.dispatcher {
        d.drain();
    }
    if let Some((runner, token, handle)) = l.runner {
        token.cancel();
        let _ = handle.await;
        tracing::info!(left = runner.running(), "local runner stopped");
    }
    l.stop.cancel();
    while let Some(r) = l.services.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "service ended with an error during shutdown");
        }
    }
    tracing::info!("baton server stopped");
    Ok(())
}
