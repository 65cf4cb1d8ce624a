//! The command line: `server` (or one service: `gateway`, `scheduler`, `dispatcher`),
//! `config check`, `config generate`, `migrate`, `admin`, `bench`, `runner`.

mod admin;
mod bench;
mod runner;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use baton::server::{Services, StartOptions};
use baton_config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "baton", version, about = "Highly-available task automation")]
pub struct Args {
    /// Configuration file (TOML). Defaults to ./baton.toml when present.
    #[arg(long, global = true, env = "BATON_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs every service (and a local runner) in this process.
    Server {
        /// Start without the local runner.
        #[arg(long)]
        no_runner: bool,
    },
    /// Runs only the HTTP API (with `cluster.dispatcher_url` pointing at the dispatchers).
    Gateway,
    /// Runs only the scheduler and sweepers (with `cluster.dispatcher_url`).
    Scheduler,
    /// Runs only the dispatcher: the gRPC endpoint of runners and internal calls.
    Dispatcher,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Applies database migrations (`up`, the default) or lists them (`status`).
    Migrate {
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
    },
    /// Administration tools.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Measures a running Baton through its HTTP API.
    Bench(bench::BenchArgs),
    /// A remote runner: register it, then run it (`--config` is the runner's file, default
    /// runner.toml).
    Runner {
        #[command(subcommand)]
        command: runner::RunnerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Prints the effective configuration with secrets masked, or says what is wrong.
    Check,
    /// Prints a commented configuration file for a new installation, with fresh secrets
    /// (cluster secret, encryption key, admin password): `baton config generate > baton.toml`.
    Generate {
        /// For the nodes of a cluster (PostgreSQL or MySQL, Redis) instead of a single node.
        #[arg(long)]
        cluster: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum MigrateAction {
    Up,
    Status,
}

/// The command line and, for a command that serves, its configuration: loaded once, before the
/// async runtime starts, since the runtime's size is in it.
pub struct Start {
    args: Args,
    served: Option<anyhow::Result<Config>>,
}

impl Start {
    pub fn new(args: Args) -> Start {
        let serves = matches!(
            args.command,
            Command::Server { .. } | Command::Gateway | Command::Scheduler | Command::Dispatcher
        );
        let served = serves.then(|| load_config(args.config.as_deref()));
        Start { args, served }
    }

    /// The async runtime's worker threads: a server's `runtime.worker_threads`, or half the CPUs
    /// for every command (the runner and the tools too). A configuration that did not load gets
    /// the default here; `run` then reports what is wrong with it.
    pub fn worker_threads(&self) -> usize {
        match &self.served {
            Some(Ok(cfg)) => cfg.runtime.workers(),
            _ => baton_config::Runtime::default().workers(),
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let file = baton_config::resolve_file(path)?;
    Ok(baton_config::load(file.as_deref())?)
}

fn init_tracing(cfg: &Config) -> anyhow::Result<()> {
    let format = match cfg.log.format {
        baton_config::LogFormat::Auto => baton_telemetry::Format::Auto,
        baton_config::LogFormat::Text => baton_telemetry::Format::Text,
        baton_config::LogFormat::Json => baton_telemetry::Format::Json,
    };
    baton_telemetry::init(&cfg.log.level, format).map_err(anyhow::Error::msg)
}

pub async fn run(start: Start) -> anyhow::Result<ExitCode> {
    let Start { args, served } = start;
    // Loaded by `Start::new` for exactly the commands that serve.
    let served = || served.unwrap_or_else(|| load_config(args.config.as_deref()));
    match args.command {
        Command::Config { command: ConfigCommand::Check } => match load_config(args.config.as_deref()) {
            Ok(cfg) => {
                print!("{}", cfg.to_masked_toml());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                Ok(ExitCode::from(2))
            }
        },
        // Printing the secrets is this command's purpose; they go to standard output only.
        Command::Config { command: ConfigCommand::Generate { cluster } } => {
            let installation =
                if cluster { baton_config::Installation::Cluster } else { baton_config::Installation::Single };
            print!("{}", baton_config::generate(installation));
            Ok(ExitCode::SUCCESS)
        }
        Command::Server { no_runner } => serve(served(), StartOptions { no_runner, services: Services::ALL }).await,
        Command::Gateway => serve(served(), only(Services { gateway: true, ..NONE })).await,
        Command::Scheduler => serve(served(), only(Services { scheduler: true, ..NONE })).await,
        Command::Dispatcher => serve(served(), only(Services { dispatcher: true, ..NONE })).await,
        Command::Migrate { action } => {
            let cfg = load_config(args.config.as_deref())?;
            init_tracing(&cfg)?;
            migrate(&cfg, action).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { command } => {
            let cfg = load_config(args.config.as_deref())?;
            admin::run(&cfg, command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(b) => bench::run(b).await,
        Command::Runner { command } => {
            runner::run(command, args.config.unwrap_or_else(|| PathBuf::from("runner.toml"))).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

const NONE: Services = Services { gateway: false, scheduler: false, dispatcher: false };

/// One service alone: never with a local runner (runners are separate processes then).
fn only(services: Services) -> StartOptions {
    StartOptions { no_runner: true, services }
}

async fn serve(cfg: anyhow::Result<Config>, opts: StartOptions) -> anyhow::Result<ExitCode> {
    let cfg = cfg?;
    init_tracing(&cfg)?;
    run_server(cfg, opts).await?;
    Ok(ExitCode::SUCCESS)
}

async fn run_server(cfg: Config, opts: StartOptions) -> anyhow::Result<()> {
    let server = baton::server::start(cfg, opts).await?;
    let drain = server.drain_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining (signal again to stop at once)");
        drain.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: stopping at once");
        std::process::exit(130);
    });
    server.wait().await
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Opens the configured database.
pub async fn open_store(cfg: &Config) -> anyhow::Result<baton_store::Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data_dir {}", cfg.data_dir.display()))?;
    let store = baton_store::Store::connect(&baton_store::Options {
        url: cfg.database_url().to_owned(),
        max_connections: 2,
        connect_timeout: std::time::Duration::from_secs(cfg.database.connect_timeout_seconds),
        acquire_timeout: std::time::Duration::from_secs(cfg.database.acquire_timeout_seconds),
    })
    .await
    .context("cannot open the database (config key `database.url`)")?;
    Ok(store)
}

async fn migrate(cfg: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match action {
        MigrateAction::Up => {
            // The list comes from under the migration lock: reading it before would race with
            // another node's migrations.
            let pending = store.migrate().await?;
            println!(
                "applied {} migration(s){}",
                pending.len(),
                if pending.is_empty() { String::new() } else { format!(": {}", pending.join(", ")) }
            );
        }
        MigrateAction::Status => {
            for m in store.applied_migrations().await? {
                println!("applied  {m}");
            }
            for m in store.pending_migrations().await? {
                println!("pending  {m}");
            }
        }
    }
    Ok(())
}
