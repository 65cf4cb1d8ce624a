//! `baton admin`: operator tools that work on the database directly.

use std::io::BufRead;

use anyhow::Context;
use baton_config::Config;
use baton_store::gateway::Tables;
use baton_store::gateway::identity::NewUser;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Creates a user (an administrator with --admin).
    CreateUser {
        #[arg(long)]
        username: String,
        /// The password; prefer --password-stdin, which keeps it out of the shell history.
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        admin: bool,
    },
    /// Mints a runner registration token (as `POST /api/v1/runner-registration-tokens` does), for
    /// provisioning runners without the API, e.g. in a compose stack.
    CreateRegistrationToken {
        /// The labels it grants, comma-separated (a runner may ask for fewer); none = the runner
        /// picks its own.
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Limit the runners to one project.
        #[arg(long)]
        project_id: Option<i64>,
        #[arg(long, default_value_t = 3600)]
        expires_in_seconds: u64,
        /// How many runners it may register; 0 = any number until it expires (autoscaled runners).
        #[arg(long, default_value_t = 1)]
        max_uses: u32,
        /// Write the token to this file (mode 0600) instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Use the token in this file instead of a new one, creating it or renewing its labels,
        /// project, expiry and uses (for a token kept in a secret store, applied at every
        /// deployment). At least 32 characters.
        #[arg(long, conflicts_with = "output")]
        token_file: Option<std::path::PathBuf>,
    },
}

pub async fn run(cfg: &Config, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::CreateUser { username, password, password_stdin, admin } => {
            let password = match (password, password_stdin) {
                (Some(p), _) => p,
                (None, true) => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                (None, false) => anyhow::bail!("give --password or --password-stdin"),
            };
            if password.chars().count() < 8 {
                anyhow::bail!("the password must be at least 8 characters long");
            }
            let store = super::open_store(cfg).await?;
            store.migrate().await?;
            let hash = baton_gateway::hash_password(&password).map_err(anyhow::Error::msg)?;
            let user =
                Tables::new(store).create_user(NewUser { username: &username, password_hash: &hash, admin }).await?;
            println!(
                "created user {:?} (id {}){}",
                user.username,
                user.id,
                if admin { " as administrator" } else { "" }
            );
            Ok(())
        }
        AdminCommand::CreateRegistrationToken {
            labels,
            project_id,
            expires_in_seconds,
            max_uses,
            output,
            token_file,
        } => {
            if let Some(bad) = labels.iter().find(|l| !baton_core::names::valid_label(l)) {
                anyhow::bail!("--labels: {bad:?} is not a valid label (letters, digits and - _ . : =)");
            }
            let store = super::open_store(cfg).await?;
            store.migrate().await?;
            let given = match &token_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("--token-file: cannot read {}", path.display()))?;
                    let token = text.trim().to_owned();
                    if token.chars().count() < 32 || token.chars().any(char::is_whitespace) {
                        anyhow::bail!(
                            "--token-file: {} must hold one token of at least 32 characters without spaces \
                             (e.g. `openssl rand -hex 32`)",
                            path.display()
                        );
                    }
                    Some(token)
                }
                None => None,
            };
            let token = given.clone().unwrap_or_else(|| baton_core::token::generate("brt_"));
            let expires_at = baton_store::now_ms() + expires_in_seconds.clamp(1, 365 * 86_400) as i64 * 1000;
            let new = baton_store::dispatcher::runners::NewRegistrationToken {
                token_hash: &baton_core::token::digest(&token),
                labels: &labels,
                project_id,
                expires_at,
                max_uses: max_uses.min(i32::MAX as u32) as i32,
            };
            // The dispatcher owns these rows; this operator tool acts for it, like the API would.
            let tables = baton_store::dispatcher::Tables::new(store);
            if given.is_some() {
                tables.ensure_registration_token(new).await?;
                let until = chrono::DateTime::from_timestamp_millis(expires_at).unwrap_or_default();
                println!(
                    "the registration token in {} is valid until {}",
                    token_file.unwrap_or_default().display(),
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                return Ok(());
            }
            tables.create_registration_token(new).await?;
            match output {
                Some(path) => super::runner::write_private(&path, &token)?,
                None => println!("{token}"),
            }
            Ok(())
        }
    }
}
