//! The stream to the dispatcher: connect with backoff, hello, then move messages both ways until
//! the stream breaks or the runner stops.

use std::sync::atomic::Ordering;
use std::time::Duration;

use baton_proto::v1::runner_client::RunnerClient;
use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::server_message::Msg as In;
use baton_proto::v1::{Draining, Heartbeat, Hello, RunnerMessage};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use crate::Runner;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Keeps a stream open until `stop`, reconnecting with exponential backoff.
pub async fn maintain(runner: Runner, stop: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = tokio::time::Instant::now();
        match session(&runner, &stop).await {
            Ok(()) => return,
            Err(End::Moved(why)) => {
                tracing::info!(reason = %why, "dispatcher asked this runner to reconnect elsewhere");
                backoff = BACKOFF_MIN;
            }
            Err(End::Broken(e)) => {
                tracing::warn!(error = %e, url = %runner.opts.url, "runner stream ended; reconnecting")
            }
        }
        // A stream that lived a while was healthy: start the backoff over.
        if started.elapsed() > Duration::from_secs(10) {
            backoff = BACKOFF_MIN;
        }
        let jitter = Duration::from_millis(rand_ms(backoff.as_millis() as u64 / 2 + 1));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn rand_ms(max: u64) -> u64 {
    // Spreads reconnects of many runners; not security relevant.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % max
}

/// Why a stream ended, when the runner is not stopping.
enum End {
    /// The connection failed or broke: reconnect with backoff.
    Broken(String),
    /// The dispatcher drains and asked for a reconnect: do it at once.
    Moved(String),
}

impl From<String> for End {
    fn from(e: String) -> End {
        End::Broken(e)
    }
}

impl From<&str> for End {
    fn from(e: &str) -> End {
        End::Broken(e.to_owned())
    }
}

/// One stream. `Ok` means the runner is stopping; `Err` means reconnect.
async fn session(runner: &Runner, stop: &CancellationToken) -> Result<(), End> {
    let opts = &runner.opts;
    let mut endpoint = Endpoint::from_shared(opts.url.clone()).map_err(|e| e.to_string())?;
    if let Some(tls) = &opts.tls {
        endpoint = endpoint.tls_config(tls.clone()).map_err(|e| format!("cannot set up TLS: {e}"))?;
    }
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {}", crate::explain(&opts.url, &e)))?;
    let mut client = RunnerClient::new(channel);
    let (tx, rx) = mpsc::channel::<RunnerMessage>(1024);
    let hello = Hello {
        protocol_version: baton_proto::RUNNER_PROTOCOL_VERSION,
        version: baton_core::VERSION.into(),
        labels: opts.labels.clone(),
        capacity: opts.capacity,
        running: runner.jobs.running(),
        resumed: runner.welcomed.load(Ordering::SeqCst),
    };
    tx.send(RunnerMessage { msg: Some(Msg::Hello(hello)) }).await.map_err(|e| e.to_string())?;
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    let md = req.metadata_mut();
    md.insert("x-baton-runner-id", opts.runner_id.to_string().parse().map_err(|_| "bad runner id")?);
    md.insert(
        "authorization",
        format!("Bearer {}", opts.secret).parse().map_err(|_| "runner secret has invalid characters")?,
    );
    let mut inbound = client
        .attach(req)
        .await
        .map_err(|e| format!("server refused the stream: {}", crate::explain_status(&opts.url, &e)))?
        .into_inner();

    runner.jobs.reset_sent();
    let mut draining_sent = false;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
    loop {
        if runner.jobs.is_draining() && !draining_sent {
            draining_sent = true;
            send(&tx, Msg::Draining(Draining {})).await?;
        }
        for m in runner.jobs.outgoing() {
            tx.send(m).await.map_err(|_| "stream closed")?;
        }
        let changed = runner.jobs.changed().notified();
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = changed => {}
            _ = heartbeat.tick() => send(&tx, Msg::Heartbeat(Heartbeat {})).await?,
            m = inbound.next() => match m {
                Some(Ok(m)) => match m.msg {
                    Some(In::Welcome(w)) => {
                        tracing::info!(node = %w.node_id, runner_id = w.runner_id, protocol = w.protocol_version, "connected to dispatcher");
                        heartbeat = tokio::time::interval(Duration::from_secs(w.heartbeat_seconds.max(1).into()));
                        runner.welcomed.store(true, Ordering::SeqCst);
                    }
                    Some(In::Assign(a)) => {
                        if runner.jobs.is_draining() {
                            tracing::warn!("assignment while draining; running it anyway");
                        }
                        runner.jobs.start(a, opts);
                    }
                    Some(In::Cancel(c)) => if let Some(t) = c.task { runner.jobs.on_cancel(t) },
                    Some(In::Ack(a)) => runner.jobs.on_ack(a),
                    Some(In::Stop(s)) => if let Some(t) = s.task {
                        tracing::warn!(task_id = t.task_id, epoch = t.epoch, reason = %s.reason, "server fenced a task; killing it");
                        runner.jobs.on_stop(t);
                    },
                    Some(In::Reconnect(r)) => return Err(End::Moved(r.reason)),
                    None => {}
                },
                Some(Err(e)) => return Err(End::Broken(format!("stream error: {}", e.message()))),
                None => return Err(End::Broken("server closed the stream".into())),
            },
        }
    }
}

async fn send(tx: &mpsc::Sender<RunnerMessage>, m: Msg) -> Result<(), String> {
    tx.send(RunnerMessage { msg: Some(m) }).await.map_err(|_| "stream closed".to_owned())
}
