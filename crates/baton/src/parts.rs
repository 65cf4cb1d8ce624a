//! Pieces `server::start` assembles: the key that seals project secrets, the two gRPC ports (the
//! runner port and the internal port), and the local runner of `baton server`.

use std::time::Duration;

use anyhow::Context;
use baton_config::Config;
use baton_core::internal::ClusterAuth;
use baton_proto::v1::EnsureRunnerRequest;
use baton_proto::v1::tasks_client::TasksClient;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// The services the runner port serves, as gRPC health names them.
pub const RUNNER_PORT_SERVICES: &[&str] = &["", "baton.v1.Runner"];
/// The services the internal port serves.
pub const INTERNAL_PORT_SERVICES: &[&str] = &["", "baton.v1.Tasks", "baton.v1.Schedules"];

/// A gRPC server being served, with the health reporter of its port.
pub type Served = (tonic_health::server::HealthReporter, BoxFuture<'static, anyhow::Result<()>>);

/// The runner port: the dispatcher's `Runner` service (registration and streams) and nothing
/// else of Baton's, plus the standard health and reflection services for ordinary gRPC tools.
/// Runners are outside the trust boundary; the internal services are not reachable here.
pub async fn runner_port(
    dispatcher: &baton_dispatcher::Service,
    listener: TcpListener,
    tls: Option<&crate::tls::KeyPair>,
    stop: CancellationToken,
) -> anyhow::Result<Served> {
    let (health, health_service) = health(RUNNER_PORT_SERVICES).await;
    // Both versions of reflection: grpcurl and most current tools speak v1, but others (Python's
    // official grpcio-reflection client among them) still speak only v1alpha.
    let reflection_v1 = reflection().build_v1().context("cannot build the gRPC reflection service (v1)")?;
    let reflection_v1alpha =
        reflection().build_v1alpha().context("cannot build the gRPC reflection service (v1alpha)")?;
    let router = builder(tls, "grpc.tls")?
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(dispatcher.runner_server());
    Ok((health, serve(router, listener, stop)))
}

/// Server reflection of the runner port, the same for either protocol version.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // List only what this port serves.
        .with_service_name("baton.v1.Runner")
        .with_service_name("grpc.health.v1.Health")
}

/// The internal port: the services' own gRPC (`Tasks`, `Schedules`), for other nodes only; every
/// call must carry the cluster secret.
pub async fn internal_port(
    dispatcher: Option<&baton_dispatcher::Service>,
    scheduler: Option<&baton_scheduler::Service>,
    listener: TcpListener,
    tls: Option<&crate::tls::KeyPair>,
    stop: CancellationToken,
) -> anyhow::Result<Served> {
    let (health, health_service) = health(INTERNAL_PORT_SERVICES).await;
    let router = builder(tls, "cluster.tls")?
        .add_service(health_service)
        .add_optional_service(dispatcher.map(|d| d.tasks_server()))
        .add_optional_service(scheduler.map(|s| s.schedules_server()));
    Ok((health, serve(router, listener, stop)))
}

async fn health(
    names: &[&str],
) -> (
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health + use<>>,
) {
    let (health, service) = tonic_health::server::health_reporter();
    for name in names {
        health.set_service_status(*name, tonic_health::ServingStatus::Serving).await;
    }
    (health, service)
}

fn builder(tls: Option<&crate::tls::KeyPair>, key: &str) -> anyhow::Result<tonic::transport::Server> {
    // Each call runs in a span with the id of the HTTP request that caused it (sent by the
    // gateway as `x-request-id`), so a request can be followed across nodes' logs.
    let server = tonic::transport::Server::builder().tcp_nodelay(true).trace_fn(|req| {
        let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
        tracing::info_span!("grpc", path = %req.uri().path(), request_id = %id)
    });
    match tls {
        Some(pair) => {
            server.tls_config(pair.server()).with_context(|| format!("config key `{key}`: cannot set up TLS"))
        }
        None => Ok(server),
    }
}

fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    stop: CancellationToken,
) -> BoxFuture<'static, anyhow::Result<()>> {
    // Small messages (assignments, acknowledgements) must not wait for Nagle's algorithm: the
    // builder's tcp_nodelay only covers listeners it binds itself.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    Box::pin(async move {
        router.serve_with_incoming_shutdown(incoming, stop.cancelled_owned()).await.context("gRPC server failed")
    })
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

/// Where the local runner dials: this node's own runner port, over TLS when the port uses it.
pub struct RunnerDial {
    pub url: String,
    pub tls: Option<tonic::transport::ClientTlsConfig>,
}

/// Registers the node's own runner with the dispatcher (a fresh secret at every start) and
/// starts it; it attaches over gRPC like any remote runner.
pub async fn local_runner(
    cfg: &Config,
    channel: baton_core::internal::Channel,
    auth: ClusterAuth,
    dial: RunnerDial,
) -> anyhow::Result<LocalRunner> {
    let name = cfg.runner.name.clone().unwrap_or_else(|| format!("local@{}", cfg.node_id()));
    let mut tasks = TasksClient::with_interceptor(channel, auth);
    let reg = tasks
        .ensure_runner(EnsureRunnerRequest { name, labels: cfg.runner.labels.clone(), capacity: cfg.runner.capacity })
        .await
        .context("cannot register the local runner with the dispatcher")?
        .into_inner();
    let runner = baton_runner::Runner::new(baton_runner::Options {
        url: dial.url,
        tls: dial.tls,
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
