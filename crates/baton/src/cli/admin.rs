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
    }
}
