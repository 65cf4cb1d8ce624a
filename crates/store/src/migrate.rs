//! Applying migrations safely when several nodes start at once: each node takes a database-wide
//! lock first (a PostgreSQL advisory lock, a MySQL `GET_LOCK`), held on a connection of its own
//! while the migrations run on the pool. A database that has migrations this binary does not know
//! was migrated by a newer version, and is refused. Everything that may touch the schema — also
//! the creation of the bookkeeping table that listing pending migrations would do — happens under
//! the lock; listing without it reads the bookkeeping table and creates nothing.

use std::collections::HashSet;

use baton_migration::MigratorTrait;
use sea_orm::sqlx;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{Error, Result, Store};

/// Advisory lock key of migrations ("baton" in ASCII), per database on PostgreSQL.
const PG_LOCK_KEY: i64 = 0x0062_6174_6f6e;
/// How long a node waits for another node's migrations.
const LOCK_WAIT_SECONDS: i64 = 300;

impl Store {
    /// Applies every pending migration under the database's migration lock; returns the names
    /// of those it applied.
    pub async fn migrate(&self) -> Result<Vec<String>> {
        match self.conn().get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.conn().get_postgres_connection_pool();
                let mut lock = pool.acquire().await.map_err(sqlx_error)?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *lock)
                    .await
                    .map_err(sqlx_error)?;
                let result = self.migrate_unlocked().await;
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_LOCK_KEY).execute(&mut *lock).await;
                result
            }
            DbBackend::MySql => {
                let pool = self.conn().get_mysql_connection_pool();
                let mut lock = pool.acquire().await.map_err(sqlx_error)?;
                // Lock names are server-wide: include the database so that databases sharing a
                // server do not wait for each other.
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(CONCAT('baton_migrate:', DATABASE()), ?)")
                    .bind(LOCK_WAIT_SECONDS)
                    .fetch_one(&mut *lock)
                    .await
                    .map_err(sqlx_error)?;
                if got != Some(1) {
                    return Err(Error::Unavailable(format!(
                        "another node held the migration lock for {LOCK_WAIT_SECONDS}s; retry when it has finished"
                    )));
                }
                let result = self.migrate_unlocked().await;
                let _ =
                    sqlx::query("SELECT RELEASE_LOCK(CONCAT('baton_migrate:', DATABASE()))").execute(&mut *lock).await;
                result
            }
            // SQLite has transactional DDL: one write transaction holds off any other migrator
            // (a second process on the same file, `baton migrate` beside a starting server).
            _ => {
                let tx = self.write_tx().await?;
                let result = async {
                    let pending = self.pending_migrations().await?;
                    baton_migration::Migrator::up(&tx, None).await.map_err(Error::from)?;
                    Ok(pending)
                }
                .await;
                crate::end_tx(tx, result).await
            }
        }
    }

    async fn migrate_unlocked(&self) -> Result<Vec<String>> {
        let pending = self.pending_migrations().await?;
        baton_migration::Migrator::up(self.conn(), None).await.map_err(Error::from)?;
        Ok(pending)
    }

    /// The names of migrations already applied, in order. Reads only: a new database has none.
    pub async fn applied_migrations(&self) -> Result<Vec<String>> {
        let backend = self.conn().get_database_backend();
        let sql = "SELECT version FROM seaql_migrations ORDER BY version";
        let rows = match self.conn().query_all_raw(Statement::from_string(backend, sql)).await {
            Ok(rows) => rows,
            // No bookkeeping table yet: a new database. (Creating it here would race with a
            // migrating node: two creations of one table collide in PostgreSQL's catalog.)
            Err(e) if self.conn().query_all_raw(Statement::from_string(backend, "SELECT 1")).await.is_ok() => {
                tracing::debug!(error = %e, "no migrations table: a new database");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        rows.iter().map(|r| r.try_get::<String>("", "version").map_err(Error::from)).collect()
    }

    /// The names of migrations not applied yet. Fails if the database has applied migrations
    /// this binary does not know (a newer version migrated it).
    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        let applied: HashSet<String> = self.applied_migrations().await?.into_iter().collect();
        let known: Vec<String> = baton_migration::Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
        if let Some(newer) = applied.iter().find(|v| !known.contains(v)) {
            return Err(Error::SchemaNewer(newer.clone()));
        }
        Ok(known.into_iter().filter(|k| !applied.contains(k)).collect())
    }
}

fn sqlx_error(e: sqlx::Error) -> Error {
    Error::Unavailable(format!("cannot take the migration lock: {e}"))
}
