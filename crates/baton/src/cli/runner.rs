//! `baton runner register` trades a registration token for a runner identity and writes it to the
//! runner's config file (mode 0600); `baton runner run` starts the runner from that file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use baton_proto::v1::RegisterRequest;
use baton_proto::v1::runner_client::RunnerClient;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug)]
pub enum RunnerCommand {
    /// Registers this machine as a runner and writes its config file.
    Register {
        /// The runner port's URL (through the load balancer), e.g. http://baton.internal:7000, or
        /// https://… when the port (or the load balancer) uses TLS.
        #[arg(long)]
        url: String,
        /// PEM file of the CA that signed the server's certificate, for an https:// URL whose
        /// certificate is not from a CA the system trusts; kept in the config file for `run`.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// A registration token from `POST /api/v1/runner-registration-tokens`.
        #[arg(long)]
        token: String,
        #[arg(long)]
        name: String,
        /// Comma-separated labels.
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Scripts it runs at once.
        #[arg(long, default_value_t = 4)]
        capacity: u32,
        /// Overwrite an existing config file.
        #[arg(long)]
        force: bool,
    },
    /// Runs the runner described by its config file until SIGTERM or ctrl-c.
    Run,
}

/// The runner's config file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunnerFile {
    url: String,
    runner_id: i64,
    secret: String,
    name: String,
    #[serde(default)]
    labels: Vec<String>,
    capacity: u32,
    /// Where task working directories go; defaults to `./baton-runner` beside the config file.
    work_dir: Option<PathBuf>,
    #[serde(default = "default_kill_grace")]
    kill_grace_ms: u64,
    #[serde(default = "default_shutdown_grace")]
    shutdown_grace_seconds: u64,
    /// Log text kept per task attempt; absent from files written before it existed.
    #[serde(default = "default_max_log_bytes")]
    max_log_bytes: u64,
    /// The CA that signed the server's certificate (PEM), for an https:// URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
}

/// Masks the secret. Every field is named, so a new one cannot be forgotten here.
impl std::fmt::Debug for RunnerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RunnerFile {
            url,
            runner_id,
            secret: _,
            name,
            labels,
            capacity,
            work_dir,
            kill_grace_ms,
            shutdown_grace_seconds,
            max_log_bytes,
            ca_file,
        } = self;
        f.debug_struct("RunnerFile")
            .field("url", url)
            .field("runner_id", runner_id)
            .field("secret", &"********")
            .field("name", name)
            .field("labels", labels)
            .field("capacity", capacity)
            .field("work_dir", work_dir)
            .field("kill_grace_ms", kill_grace_ms)
            .field("shutdown_grace_seconds", shutdown_grace_seconds)
            .field("max_log_bytes", max_log_bytes)
            .field("ca_file", ca_file)
            .finish()
    }
}

/// How the runner verifies the server: TLS for an https:// URL, trusting the system roots and
/// the CA in `ca_file`.
fn client_tls(url: &str, ca_file: Option<&Path>) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    if !url.starts_with("https://") {
        if ca_file.is_some() {
            bail!("--ca-file is for https:// URLs; {url} is not one");
        }
        return Ok(None);
    }
    let ca = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("cannot read the CA file {}", path.display()))?;
            if !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE") {
                bail!("{} holds no PEM certificate", path.display());
            }
            Some(pem)
        }
        None => None,
    };
    Ok(Some(baton::tls::remote_client(ca.as_deref())))
}

fn default_kill_grace() -> u64 {
    1000
}

fn default_shutdown_grace() -> u64 {
    30
}

fn default_max_log_bytes() -> u64 {
    baton_runner::DEFAULT_MAX_LOG_BYTES
}

/// Runs `cmd`; `file` is the runner's config file (`--config`, default `runner.toml`).
pub async fn run(cmd: RunnerCommand, file: PathBuf) -> anyhow::Result<()> {
    match cmd {
        RunnerCommand::Register { url, ca_file, token, name, labels, capacity, force } => {
            if file.exists() && !force {
                bail!(
                    "{} exists; pass --force to replace it (the old identity stops working only if revoked)",
                    file.display()
                );
            }
            // Kept as an absolute path: `run` may start from another directory.
            let ca_file = ca_file
                .map(|p| std::fs::canonicalize(&p).with_context(|| format!("cannot find the CA file {}", p.display())))
                .transpose()?;
            let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                .with_context(|| format!("--url {url:?} is not a URL"))?
                .connect_timeout(Duration::from_secs(10));
            if let Some(tls) = client_tls(&url, ca_file.as_deref())? {
                endpoint = endpoint.tls_config(tls).context("cannot set up TLS")?;
            }
            let channel = endpoint.connect().await.map_err(|e| {
                anyhow::anyhow!("cannot reach the server at {url}: {}", baton_runner::explain(&url, &e))
            })?;
            let mut client = RunnerClient::new(channel);
            let req =
                RegisterRequest { token, name: name.clone(), labels, capacity, version: baton_core::VERSION.into() };
            let resp = client
                .register(req)
                .await
                .map_err(|s| anyhow::anyhow!("registration refused: {}", baton_runner::explain_status(&url, &s)))?
                .into_inner();
            let cfg = RunnerFile {
                url,
                runner_id: resp.runner_id,
                secret: resp.secret,
                name,
                labels: resp.labels,
                capacity,
                work_dir: None,
                kill_grace_ms: default_kill_grace(),
                shutdown_grace_seconds: default_shutdown_grace(),
                max_log_bytes: default_max_log_bytes(),
                ca_file,
            };
            write_private(&file, &toml::to_string_pretty(&cfg)?)?;
            println!("registered runner {} (id {}); its config is in {}", cfg.name, cfg.runner_id, file.display());
            Ok(())
        }
        RunnerCommand::Run => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let cfg: RunnerFile =
                toml::from_str(&text).with_context(|| format!("{} is not a valid runner config", file.display()))?;
            baton_telemetry::init("info", baton_telemetry::Format::Auto).map_err(anyhow::Error::msg)?;
            let work_dir =
                cfg.work_dir.clone().unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).join("baton-runner"));
            let tls = client_tls(&cfg.url, cfg.ca_file.as_deref())
                .with_context(|| format!("{}: key `ca_file`", file.display()))?;
            let runner = baton_runner::Runner::new(baton_runner::Options {
                url: cfg.url,
                tls,
                runner_id: cfg.runner_id,
                secret: cfg.secret,
                labels: cfg.labels,
                capacity: cfg.capacity,
                work_dir,
                kill_grace: Duration::from_millis(cfg.kill_grace_ms),
                shutdown_grace: Duration::from_secs(cfg.shutdown_grace_seconds),
                max_log_bytes: cfg.max_log_bytes,
                hold: baton_runner::HoldLimits::default(),
            })
            .with_context(|| format!("{} is not a valid runner config", file.display()))?;
            let stop = CancellationToken::new();
            let signal = stop.clone();
            tokio::spawn(async move {
                super::wait_for_signal().await;
                tracing::info!("shutdown requested; finishing running scripts (signal again to stop at once)");
                signal.cancel();
                super::wait_for_signal().await;
                std::process::exit(130);
            });
            runner.run(stop).await;
            Ok(())
        }
    }
}

/// Writes `text` to `path` readable by its owner only (a secret: the runner's, a token).
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
url = "http://baton.internal:7000"
runner_id = 3
secret = "s3cr3t-runner-secret"
name = "build-1"
capacity = 2
"#;

    #[test]
    fn a_file_without_the_newer_keys_gets_their_defaults() {
        let cfg: RunnerFile = toml::from_str(FILE).expect("an older runner.toml still loads");
        assert_eq!(cfg.max_log_bytes, baton_runner::DEFAULT_MAX_LOG_BYTES);
        assert_eq!((cfg.kill_grace_ms, cfg.shutdown_grace_seconds), (1000, 30));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let cfg: RunnerFile = toml::from_str(FILE).expect("valid");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t") && shown.contains("********"), "{shown}");
    }

    #[test]
    fn the_local_runner_and_runner_toml_share_the_log_cap() {
        assert_eq!(baton_config::Runner::default().max_log_bytes, baton_runner::DEFAULT_MAX_LOG_BYTES);
        let (lo, hi) = (*baton_runner::MAX_LOG_BYTES.start(), *baton_runner::MAX_LOG_BYTES.end());
        for (value, ok) in [(lo - 1, false), (lo, true), (hi, true), (hi + 1, false)] {
            let vars = [("BATON_RUNNER_MAX_LOG_BYTES".to_owned(), value.to_string())];
            assert_eq!(baton_config::load_from(None, vars).is_ok(), ok, "runner.max_log_bytes = {value}");
        }
    }
}
