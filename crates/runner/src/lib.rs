//! The runner: dials a dispatcher (through the load balancer), says what it still runs, takes
//! assignments, runs scripts and ships their logs and results. Everything it reports stays in
//! memory until the server acknowledges it as durable, and is re-sent after a reconnect, so a
//! broken stream or a restarted server loses nothing.

mod conn;
mod dial;
mod exec;
mod jobs;
mod mask;
mod reap;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use dial::{explain, explain_status};
pub use exec::StopReason;

/// The runner's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The dispatcher's gRPC URL, such as `http://127.0.0.1:7000` (`https://` with TLS).
    pub url: String,
    /// How to verify the server, for an `https://` URL.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    pub runner_id: i64,
    pub secret: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    /// Working directories of tasks go under it.
    pub work_dir: std::path::PathBuf,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// How long running scripts may take to finish on shutdown before they are stopped.
    pub shutdown_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid dispatcher url {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("cannot create the work directory {path}: {message}")]
    WorkDir { path: String, message: String },
}

/// A runner; cheap to clone.
#[derive(Debug, Clone)]
pub struct Runner {
    opts: Arc<Options>,
    jobs: jobs::Jobs,
    /// Set once a dispatcher has welcomed this process (see `Hello.resumed`).
    welcomed: Arc<std::sync::atomic::AtomicBool>,
}

impl Runner {
    pub fn new(mut opts: Options) -> Result<Runner, Error> {
        tonic::transport::Endpoint::from_shared(opts.url.clone())
            .map_err(|e| Error::Url { url: opts.url.clone(), message: e.to_string() })?;
        let dir_error =
            |e: std::io::Error| Error::WorkDir { path: opts.work_dir.display().to_string(), message: e.to_string() };
        std::fs::create_dir_all(&opts.work_dir).map_err(dir_error)?;
        // Scripts run with their own working directory, so every path handed to them is absolute.
        opts.work_dir = std::fs::canonicalize(&opts.work_dir).map_err(dir_error)?;
        let killed = reap::leftovers(&opts.work_dir);
        if killed > 0 {
            tracing::warn!(killed, "killed scripts left running by a previous runner process");
        }
        Ok(Runner { opts: Arc::new(opts), jobs: jobs::Jobs::default(), welcomed: Default::default() })
    }

    /// How many scripts run now.
    pub fn running(&self) -> usize {
        self.jobs.len()
    }

    /// Runs until `shutdown`; then takes no new work, lets running scripts finish within the
    /// shutdown grace, stops the rest, and returns once their ends are reported (or a few
    /// seconds after, if the server cannot be reached).
    pub async fn run(self, shutdown: CancellationToken) {
        let stop_conn = CancellationToken::new();
        // Aborted with this future, so a runner dropped mid-flight stops dialling.
        let manager =
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(conn::maintain(self.clone(), stop_conn.clone())));
        shutdown.cancelled().await;
        self.jobs.set_draining();
        tracing::info!(running = self.jobs.len(), "runner draining");
        if tokio::time::timeout(self.opts.shutdown_grace, self.jobs.wait_empty()).await.is_err() {
            tracing::warn!(running = self.jobs.len(), "shutdown grace over; stopping the remaining scripts");
            self.jobs.stop_all(StopReason::Interrupted);
            let _ = tokio::time::timeout(Duration::from_secs(5) + self.opts.kill_grace, self.jobs.wait_empty()).await;
        }
        stop_conn.cancel();
        let _ = manager.await;
    }
}
