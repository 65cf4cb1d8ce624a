//! Pieces `server::start` assembles: the key that seals project secrets, the gRPC server of a
//! dispatcher, and the local runner of `baton server`.

use std::time::Duration;

use anyhow::Context;
use baton_config::Config;
use baton_core::internal::ClusterAuth;
use baton_proto::v1::EnsureRunnerRequest;
use baton_proto::v1::tasks_client::TasksClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tonic::transport::Channel;

/// The gRPC server of a dispatcher and/or a scheduler: their services plus the standard health
/// and reflection services, so ordinary gRPC tools can inspect the node.
pub async fn grpc_server(
    dispatcher: Option<&baton_dispatcher::Service>,
    scheduler: Option<&baton_scheduler::Service>,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<(tonic_health::server::HealthReporter, impl Future<Output = anyhow::Result<()>> + use<>)> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in ["", "baton.v1.Tasks", "baton.v1.Runner", "baton.v1.Schedules"] {
        health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the gRPC reflection service")?;
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(reflection)
        .add_optional_service(dispatcher.map(|d| d.tasks_server()))
        .add_optional_service(dispatcher.map(|d| d.runner_server()))
        .add_optional_service(scheduler.map(|s| s.schedules_server()))
        // Small messages (assignments, acknowledgements) must not wait for Nagle's algorithm: the
        // builder's tcp_nodelay only covers listeners it binds itself.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop.cancelled_owned(),
        );
    Ok((health, async move { server.await.context("gRPC server failed") }))
}

/// The key that seals project secrets: `secrets.encryption_key`, or on a single node one made at
/// first start and kept in `<data_dir>/secrets.key` (mode 0600). Losing it loses the secrets.
pub fn seal_key(cfg: &Config) -> anyhow::Result<baton_core::sealed::SealKey> {
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
pub async fn local_runner(
    cfg: &Config,
    channel: Channel,
    auth: ClusterAuth,
    url: String,
) -> anyhow::Result<LocalRunner> {
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
        max_log_bytes: cfg.runner.max_log_bytes,
        hold: baton_runner::HoldLimits::default(),
    })?;
    let token = CancellationToken::new();
    let handle = AbortOnDropHandle::new(tokio::spawn(runner.clone().run(token.clone())));
    Ok((runner, token, handle))
}

/// The local runner, its stop signal, and its task (aborted if the server is dropped mid-flight).
pub type LocalRunner = (baton_runner::Runner, CancellationToken, AbortOnDropHandle<()>);
