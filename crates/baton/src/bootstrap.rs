//! First start: an empty database gets its first administrator.

use baton_config::Config;
use baton_store::gateway::Tables;
use baton_store::gateway::identity::NewUser;

/// Creates the first admin when there is no user: from `admin.username`/`admin.password` if set,
/// else `admin` with a random password printed once on standard error.
pub async fn first_admin(cfg: &Config, tables: &Tables) -> anyhow::Result<()> {
    if tables.count_users().await? > 0 {
        return Ok(());
    }
    let username = cfg.admin.username.clone().unwrap_or_else(|| "admin".into());
    let (password, generated) = match &cfg.admin.password {
        Some(p) => (p.expose().to_owned(), false),
        None => (baton_core::token::generate("")[..20].to_owned(), true),
    };
    let hash = baton_gateway::hash_password(&password).map_err(anyhow::Error::msg)?;
    match tables.create_user(NewUser { username: &username, password_hash: &hash, admin: true }).await {
        Ok(_) => {}
        // Another node created it first.
        Err(e) if e.is_unique_violation() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if generated {
        // Printed once, to the terminal rather than the log, so it does not end up in log storage.
        eprintln!(
            "\n  Baton created the administrator {username:?} with the password:\n\n      {password}\n\n  \
             It is shown only this once. Set BATON_ADMIN_USERNAME and BATON_ADMIN_PASSWORD to choose them instead.\n"
        );
    } else {
        tracing::info!(username = %username, "created the first administrator");
    }
    Ok(())
}
