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
use baton_core::internal::ClusterAuth;
use baton_proto::v1::EnsureRunnerRequest;
use baton_proto::v1::tasks_client::TasksClient;
use baton_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tonic::transport::{Channel, Endpoint};

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Start without the local runner.
    pub no_runner: bool,
}

/// A running server.
pub struct Server {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
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

/// The address a local client dials to reach a listener bound to `addr`.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (config key `{key}`): is another process using it?"))
}

/// Opens the database, applies migrations, creates the first admin, binds the listeners and
/// starts every service. Returns once the server accepts requests.
pub async fn start(cfg: Config, opts: StartOptions) -> anyhow::Result<Server> {
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
    let gateway_tables = baton_store::gateway::Tables::new(store.clone());
    crate::bootstrap::first_admin(&cfg, &gateway_tables).await?;

    let http = bind(&cfg.http.listen, "http.listen").await?;
    let grpc = bind(&cfg.grpc.listen, "grpc.listen").await?;
    let (http_addr, grpc_addr) = (http.local_addr()?, grpc.local_addr()?);
    // A single node without a configured secret makes one up: nobody else needs to know it.
    let secret = cfg.cluster.secret.as_ref().map_or_else(|| baton_core::token::generate(""), |s| s.expose().to_owned());
    let auth = ClusterAuth::new(&secret).map_err(anyhow::Error::msg)?;
    let node_id = cfg.node_id().to_owned();
    let dispatcher_url = format!("http://{}", loopback(grpc_addr));
    let channel: Channel = Endpoint::from_shared(dispatcher_url.clone())?.tcp_nodelay(true).connect_lazy();

    let seal_key = std::sync::Arc::new(seal_key(&cfg)?);
    let stop = CancellationToken::new();
    let coord = crate::node::coordinator(&cfg, &stop).await?;
    let membership =
        baton_coord::Membership::new(coord.clone(), &node_id, &["gateway", "scheduler", "dispatcher"], baton_core::VERSION);
    membership.join().await.map_err(anyhow::Error::msg)?;
    let dispatcher = baton_dispatcher::Service::new(
        baton_dispatcher::Options {
            node_id: node_id.clone(),
            cluster_secret: secret.clone(),
            lease: Duration::from_secs(cfg.dispatcher.lease_seconds),
            heartbeat: Duration::from_secs(cfg.dispatcher.heartbeat_seconds),
            seal_key: seal_key.clone(),
            move_runners_on_drain: cfg.ha.enabled,
        },
        baton_dispatcher::Deps { store: store.clone(), coord: coord.clone() },
    );
    let gateway = baton_gateway::Service::new(
        baton_gateway::Options {
            node_id: node_id.clone(),
            max_body_bytes: cfg.http.max_body_bytes,
            secure_cookies: cfg.http.secure_cookies,
            session_ttl: Duration::from_secs(cfg.http.session_ttl_hours * 3600),
            runner_lease: Duration::from_secs(cfg.dispatcher.lease_seconds),
            seal_key,
        },
        baton_gateway::Deps {
            store: store.clone(),
            membership: membership.clone(),
            coord: coord.clone(),
            dispatcher: channel.clone(),
            auth: auth.clone(),
        },
    );
    let scheduler = baton_scheduler::Service::new(
        baton_scheduler::Options { sweep_every: Duration::from_secs(1), reconcile_every: Duration::from_secs(2) },
        baton_scheduler::Deps { dispatcher: channel.clone(), auth: auth.clone(), store: store.clone(), coord },
    );

    // The standard health and reflection services, so ordinary gRPC tools can inspect the node.
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in ["", "baton.v1.Tasks", "baton.v1.Runner"] {
        health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the gRPC reflection service")?;
    let grpc_server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(dispatcher.tasks_server())
        .add_service(dispatcher.runner_server())
        // Small messages (assignments, acknowledgements) must not wait for Nagle's algorithm: the
        // builder's tcp_nodelay only covers listeners it binds itself.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            stop.clone().cancelled_owned(),
        );
    let mut services = tokio::task::JoinSet::new();
    services.spawn(async move { grpc_server.await.context("gRPC server failed") });
    services.spawn({
        let (g, s) = (gateway.clone(), stop.clone());
        async move { g.run(http, s).await.context("HTTP server failed") }
    });
    services.spawn({
        let (d, s) = (dispatcher.clone(), stop.clone());
        async move { d.run(s).await.context("dispatcher failed") }
    });
    services.spawn({
        let s = stop.clone();
        async move {
            scheduler.run(s).await;
            Ok(())
        }
    });
    services.spawn({
        let (m, s) = (membership.clone(), stop.clone());
        async move {
            m.run(s).await;
            Ok(())
        }
    });
    services.spawn(crate::node::follow_drain(membership.clone(), dispatcher.clone(), health.clone(), stop.clone()));
    services.spawn(crate::node::track_readiness(membership.clone(), store.clone(), stop.clone()));

    let runner = if opts.no_runner { None } else { Some(local_runner(&cfg, channel, auth, dispatcher_url).await?) };
    tracing::info!(node_id = %node_id, http = %http_addr, grpc = %grpc_addr, runner = runner.is_some(), "baton server started");

    let drain = CancellationToken::new();
    let task = tokio::spawn(lifecycle(Lifecycle { drain: drain.clone(), stop, services, runner, membership, dispatcher }));
    drop(gateway);
    Ok(Server { http_addr, grpc_addr, node_id, drain, task })
}

/// The key that seals project secrets: `secrets.encryption_key`, or on a single node one made at
/// first start and kept in `<data_dir>/secrets.key` (mode 0600). Losing it loses the secrets.
fn seal_key(cfg: &Config) -> anyhow::Result<baton_core::sealed::SealKey> {
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |e: String| {
        anyhow::anyhow!(
            "config key `secrets.encryption_key`: {e}; give 32 random bytes in base64 (`openssl rand -base64 32`)"
        )
    };
    if let Some(k) = &cfg.secrets.encryption_key {
        return baton_core::sealed::SealKey::from_base64(k.expose()).map_err(bad);
    }
    let path = cfg.data_dir.join("secrets.key");
    if !path.exists() {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::io::Write::write_all(&mut f, baton_core::sealed::SealKey::generate().as_bytes())?;
        tracing::info!(path = %path.display(), "generated the key that seals project secrets; back it up with the database");
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    baton_core::sealed::SealKey::from_base64(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Registers the node's own runner with the dispatcher (a fresh secret at every start) and
/// starts it; it attaches over gRPC like any remote runner.
async fn local_runner(cfg: &Config, channel: Channel, auth: ClusterAuth, url: String) -> anyhow::Result<LocalRunner> {
    let name = cfg.runner.name.clone().unwrap_or_else(|| format!("local@{}", cfg.node_id()));
    let mut tasks = TasksClient::with_interceptor(channel, auth);
    let reg = tasks
        .ensure_runner(EnsureRunnerRequest { name, labels: cfg.runner.labels.clone(), capacity: cfg.runner.capacity })
        .await
        .context("cannot register the local runner with the dispatcher")?
        .into_inner();
    let runner = baton_runner::Runner::new(baton_runner::Options {
        url,
        runner_id: reg.runner_id,
        secret: reg.secret,
        labels: cfg.runner.labels.clone(),
        capacity: cfg.runner.capacity,
        work_dir: cfg.work_dir(),
        kill_grace: Duration::from_millis(cfg.runner.kill_grace_ms),
        shutdown_grace: Duration::from_secs(cfg.shutdown.grace_seconds),
    })?;
    let token = CancellationToken::new();
    let handle = AbortOnDropHandle::new(tokio::spawn(runner.clone().run(token.clone())));
    Ok((runner, token, handle))
}

/// The local runner, its stop signal, and its task (aborted if the server is dropped mid-flight).
type LocalRunner = (baton_runner::Runner, CancellationToken, AbortOnDropHandle<()>);

struct Lifecycle {
    drain: CancellationToken,
    stop: CancellationToken,
    services: tokio::task::JoinSet<anyhow::Result<()>>,
    runner: Option<LocalRunner>,
    membership: std::sync::Arc<baton_coord::Membership>,
    dispatcher: baton_dispatcher::Service,
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
    l.dispatcher.drain();
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
