//! Room for connections on the database server. Every node opens up to
//! `database.max_connections`, and a cluster that outgrows the server's own limit first fails to
//! connect at all (ARCHITECTURE.md, "Database connections"): a node reads the limit and what is
//! open, from every client, so that it can say so before that happens.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use crate::{Error, Result, Store};

/// The connections a database server allows ordinary clients, and those open on it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRoom {
    /// PostgreSQL's `max_connections` less the slots it keeps for superusers; MySQL's and
    /// MariaDB's `max_connections`.
    pub limit: u64,
    /// Client connections open, this node's among them (PostgreSQL: backends connected to any
    /// database, its autovacuum workers too).
    pub open: u64,
}

impl Store {
    /// The database server's limit and what is open on it; `None` on SQLite, which has no server.
    pub async fn connection_room(&self) -> Result<Option<ConnectionRoom>> {
        let backend = self.conn().get_database_backend();
        let (limit, open): (i64, i64) = match backend {
            // `pg_stat_database` counts every database's backends for any role, where
            // `pg_stat_activity` hides other roles' sessions from one without `pg_read_all_stats`
            // (a node's own role, as a rule). PostgreSQL 16 also keeps `reserved_connections`
            // (for roles granted pg_use_reserved_connections); older servers have no such setting.
            DbBackend::Postgres => {
                let row = self
                    .one_row(
                        "SELECT (current_setting('max_connections')::int \
                           - current_setting('superuser_reserved_connections')::int \
                           - coalesce(current_setting('reserved_connections', true), '0')::int)::bigint, \
                         (SELECT coalesce(sum(numbackends), 0)::bigint FROM pg_stat_database)",
                    )
                    .await?;
                (row.try_get_by_index(0)?, row.try_get_by_index(1)?)
            }
            DbBackend::MySql => {
                let limit = self.one_row("SELECT CAST(@@max_connections AS SIGNED)").await?.try_get_by_index(0)?;
                // MySQL keeps its status in performance_schema, MariaDB in information_schema:
                // `SHOW` reads either.
                let open: String =
                    self.one_row("SHOW GLOBAL STATUS LIKE 'Threads_connected'").await?.try_get_by_index(1)?;
                (limit, open.trim().parse().unwrap_or(0))
            }
            _ => return Ok(None),
        };
        Ok(Some(ConnectionRoom { limit: limit.max(0) as u64, open: open.max(0) as u64 }))
    }

    async fn one_row(&self, sql: &str) -> Result<QueryResult> {
        let stmt = Statement::from_string(self.conn().get_database_backend(), sql);
        self.conn().query_one_raw(stmt).await?.ok_or_else(|| Error::Database(format!("no row for `{sql}`")))
    }

    /// Connections this node's pool holds open now.
    pub fn pool_size(&self) -> u64 {
        let size = match self.conn().get_database_backend() {
            DbBackend::Postgres => self.conn().get_postgres_connection_pool().size(),
            DbBackend::MySql => self.conn().get_mysql_connection_pool().size(),
            _ => self.conn().get_sqlite_connection_pool().size(),
        };
        u64::from(size)
    }
}
