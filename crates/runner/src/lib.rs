//! The runner: dials a dispatcher (through the load balancer), says what it still runs, takes
//! assignments, runs scripts and ships their logs and results. Everything it reports stays in
//! memory until the server acknowledges it as durable, and is re-sent after a reconnect, so a
//! broken stream or a restarted server loses nothing; how much it holds is bounded (`held.rs`),
//! and a script printing faster than the server acknowledges blocks on its writes.

mod clean_exit;
mod conn;
mod dial;
mod exec;
mod held;
mod jobs;
mod lines;
mod mask;
mod reap;
mod sink;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use dial::{explain, explain_status};
pub use exec::StopReason;
pub use held::HoldLimits;

/// The default of `max_log_bytes`: 64 MiB.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 64 << 20;

/// The values `max_log_bytes` may take: from 64 KiB (a few lines of the longest kind) to 1 TiB.
pub const MAX_LOG_BYTES: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 40);

/// The runner's settings.
#[derive(Clone)]
pub struct Options {
    /// The dispatcher's gRPC URL, such as `http://127.0.0.1:7000` (`https://` with TLS).
    pub url: String,
    /// How to verify the server, for an `https://` URL.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    pub runner_id: i64,
    /// Never shown by `Debug`.
    pub secret: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    /// Working directories of tasks go under it.
    pub work_dir: std::path::PathBuf,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// How long running scripts may take to finish on shutdown before they are stopped.
    pub shutdown_grace: Duration,
    /// Log text kept per task attempt (within [`MAX_LOG_BYTES`]); later output is read and
    /// dropped, and one last line says how much.
    pub max_log_bytes: u64,
    /// Output held until the server acknowledges it.
    pub hold: HoldLimits,
}

/// Masks the secret. Every field is named, so a new one cannot be forgotten here.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Options {
            url,
            tls,
            runner_id,
            secret: _,
            labels,
            capacity,
            work_dir,
            kill_grace,
            shutdown_grace,
            max_log_bytes,
            hold,
        } = self;
        f.debug_struct("Options")
            .field("url", url)
            .field("tls", &tls.is_some())
            .field("runner_id", runner_id)
            .field("secret", &"********")
            .field("labels", labels)
            .field("capacity", capacity)
            .field("work_dir", work_dir)
            .field("kill_grace", kill_grace)
            .field("shutdown_grace", shutdown_grace)
            .field("max_log_bytes", max_log_bytes)
            .field("hold", hold)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid dispatcher url {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("cannot create the work directory {path}: {message}")]
    WorkDir { path: String, message: String },
    #[error("{key} is {value}: {fix}")]
    Invalid { key: &'static str, value: u64, fix: &'static str },
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
        if !MAX_LOG_BYTES.contains(&opts.max_log_bytes) {
            let fix = "set it between 65536 (64 KiB) and 1099511627776 (1 TiB); the default is 67108864 (64 MiB)";
            return Err(Error::Invalid { key: "max_log_bytes", value: opts.max_log_bytes, fix });
        }
        if opts.hold.per_task == 0 {
            return Err(Error::Invalid { key: "hold.per_task", value: 0, fix: "give it at least one line's worth" });
        }
        let dir_error =
            |e: std::io::Error| Error::WorkDir { path: opts.work_dir.display().to_string(), message: e.to_string() };
        std::fs::create_dir_all(&opts.work_dir).map_err(dir_error)?;
        // Scripts run with their own working directory, so every path handed to them is absolute.
        opts.work_dir = std::fs::canonicalize(&opts.work_dir).map_err(dir_error)?;
        let killed = reap::leftovers(&opts.work_dir);
        if killed > 0 {
            tracing::warn!(killed, "killed scripts left running by a previous runner process");
        }
        let jobs = jobs::Jobs::new(opts.hold);
        // A predecessor that left holding nothing started every assignment it received and had
        // each end acknowledged: whatever the server still thinks this runner holds never
        // reached it, exactly as for a process that reconnects (`Hello.resumed`).
        let clean = clean_exit::take(&opts.work_dir, opts.runner_id);
        Ok(Runner { opts: Arc::new(opts), jobs, welcomed: Arc::new(std::sync::atomic::AtomicBool::new(clean)) })
    }

    /// How many scripts run now.
    pub fn running(&self) -> usize {
        self.jobs.len()
    }

    /// Bytes of output read from scripts and not yet acknowledged by the server; at most
    /// `hold.per_runner`.
    pub fn held_bytes(&self) -> usize {
        self.jobs.held_bytes()
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
        if self.jobs.len() == 0 {
            clean_exit::mark(&self.opts.work_dir, self.opts.runner_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let opts = Options {
            url: "http://127.0.0.1:1".into(),
            tls: None,
            runner_id: 7,
            secret: "s3cr3t-runner-secret".into(),
            labels: vec!["linux".into()],
            capacity: 1,
            work_dir: "/tmp/w".into(),
            kill_grace: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(1),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            hold: HoldLimits::default(),
        };
        let shown = format!("{opts:?} {:?}", Arc::new(opts.clone()));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("runner_id: 7") && shown.contains("********"), "{shown}");
    }
}
