//! First start: an empty database gets its first administrator, and a node warns when the
//! database has fewer connections left than its pool may open.

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

/// Warns when this node's pool may not be able to open every connection it is allowed: the
/// database server's limit, less what other clients hold, is below `database.max_connections`.
/// Pools open connections as load asks for them, so such a cluster starts fine and then fails to
/// connect under load; the warning says so at start instead.
pub async fn check_connection_room(cfg: &Config, store: &baton_store::Store) {
    let room = match store.connection_room().await {
        Ok(Some(room)) => room,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the database's connection limit");
            return;
        }
    };
    let pool = cfg.database.max_connections;
    let others = room.open.saturating_sub(store.pool_size());
    if let Some(left) = room_short(room.limit, others, pool) {
        tracing::warn!(
            limit = room.limit,
            open = room.open,
            "the database lets this node open {left} connections ({} allowed, {others} held by other \
             clients), fewer than its `database.max_connections` ({pool}): under load it will fail to \
             connect. Raise the database's max_connections, or lower `database.max_connections` on \
             each node",
            room.limit,
        );
    }
}

/// How many connections the database leaves this node, when fewer than `pool`: its `limit` less
/// what `others` hold.
fn room_short(limit: u64, others: u64, pool: u32) -> Option<u64> {
    let left = limit.saturating_sub(others);
    (left < u64::from(pool)).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::room_short;

    #[test]
    fn a_pool_larger_than_what_the_database_has_left_is_short() {
        // 97 allowed, 90 held by others: 7 left for this node.
        assert_eq!(room_short(97, 90, 10), Some(7));
        assert_eq!(room_short(97, 90, 7), None, "exactly enough");
        assert_eq!(room_short(100, 0, 10), None);
        assert_eq!(room_short(5, 8, 10), Some(0), "already over");
    }
}
