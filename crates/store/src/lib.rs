//! Baton's SQL store: the entities of every table and the queries on them, grouped by the service
//! that owns (is the only writer of) each table.
//!
//! - [`gateway`]: users, sessions, API tokens, projects, templates.
//! - [`dispatcher`]: tasks, task attempts, task log chunks, runners.
//! - [`views`]: read-only queries on dispatcher tables that other services need (the API's task
//!   and log reads).
//!
//! A service calls only its own module and [`views`]; a tidy test keeps it that way.

mod counts;
pub mod dispatcher;
pub mod entity;
mod error;
pub mod gateway;
mod group;
mod migrate;
mod room;
pub mod scheduler;
mod spec;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

pub use counts::{StatementCounts, StatementKind};
pub use error::{Error, Result};
pub use room::ConnectionRoom;
pub use spec::{LogLine, LogStream, TaskSpec};

/// How to reach the database.
#[derive(Clone)]
pub struct Options {
    /// Holds the database password: never print it (`Debug` masks it).
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("url", &masked_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// `url` with the password of its user info replaced by `********`.
fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((auth, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_owned(),
    }
}

/// The most connections a SQLite pool opens, whatever `database.max_connections` says.
pub const SQLITE_MAX_CONNECTIONS: u32 = 3;

/// How much of a SQLite file each connection reads through a memory map instead of copying pages
/// with a system call each. Every write makes the other connections drop their page caches, so
/// they read pages again all the time (measured: 5–8% of a busy node's CPU less with the map).
/// The price: an I/O error under a mapped page ends the process (SIGBUS) instead of failing one
/// statement — as a failing disk would soon anyway.
const SQLITE_MMAP_BYTES: u64 = 256 << 20;

/// Prepared statements each SQLite or PostgreSQL connection keeps.
const STATEMENT_CACHE: usize = 1_024;

/// Whether a MySQL-protocol server of this `VERSION()` is MariaDB 10.5 or later, which has
/// `INSERT … RETURNING` (MySQL has not).
fn mariadb_with_returning(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (10, 5)
}

/// A cheap-to-clone handle on the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    counts: Arc<StatementCounts>,
    /// Whether an INSERT can hand back the rows it made (`INSERT … RETURNING`): PostgreSQL,
    /// SQLite, and MariaDB from 10.5 (which sea-orm treats as MySQL, which cannot).
    insert_returning: bool,
    /// How many connections the pool has opened ([`Store::connections_opened`]).
    connects: Arc<std::sync::atomic::AtomicU64>,
}

/// Pool options that count each connection opened in `connects`.
fn counting_connects<DB: sea_orm::sqlx::Database>(
    o: sea_orm::sqlx::pool::PoolOptions<DB>,
    connects: Arc<std::sync::atomic::AtomicU64>,
) -> sea_orm::sqlx::pool::PoolOptions<DB> {
    o.after_connect(move |_, _| {
        connects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    })
}

impl Store {
    /// Connects (creating a SQLite file if needed) without touching the schema.
    pub async fn connect(opts: &Options) -> Result<Store> {
        let mut co = ConnectOptions::new(opts.url.clone());
        // SQLite writes one transaction at a time, and every write makes the other connections
        // drop their page caches and read the pages again: beyond a few connections a pool only
        // adds that work and a thread each (measured: 10 connections cost a task ~15% more CPU
        // than 3).
        let max = if opts.url.starts_with("sqlite:") {
            opts.max_connections.min(SQLITE_MAX_CONNECTIONS)
        } else {
            opts.max_connections
        };
        co.max_connections(max)
            .min_connections(1)
            .connect_timeout(opts.connect_timeout)
            .acquire_timeout(opts.acquire_timeout)
            .sqlx_logging(false);
        // The pool tests every connection as it goes back (a hand-off to SQLite's thread), and by
        // default again as it comes out: twice for every statement. SQLite's file cannot hang up
        // on us, so once is enough. A server's connection is still tested as it comes out: one
        // that died in the pool (a database restart) is replaced there instead of failing the
        // statement (measured: without that test a PostgreSQL restart lost a runner's lease).
        if opts.url.starts_with("sqlite:") {
            co.test_before_acquire(false);
        }
        // SQLite: WAL lets readers run beside the one writer, and a busy timeout makes writers queue
        // instead of failing with "database is locked".
        co.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .statement_cache_capacity(STATEMENT_CACHE)
                .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
        });
        // Batched writes have one text per batch size and kind, a few hundred in all: sqlx's
        // default cache of 100 statements per connection kept preparing them again (on SQLite 4%
        // of a node's CPU in `perf`; on PostgreSQL a round trip and a plan each). MySQL/MariaDB
        // keep sqlx's default: their server caps prepared statements for all clients together
        // (`max_prepared_stmt_count`, 16,382 by default), which nodes × connections × 1,024
        // would pass.
        co.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
        let connects = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // sqlx's hook runs for every connection the pool opens (sea-orm's own, once per pool).
        let c = connects.clone();
        co.map_sqlx_postgres_pool_opts(move |o| counting_connects(o, c.clone()));
        let c = connects.clone();
        co.map_sqlx_mysql_pool_opts(move |o| counting_connects(o, c.clone()));
        let c = connects.clone();
        co.map_sqlx_sqlite_pool_opts(move |o| counting_connects(o, c.clone()));
        let mut db = Database::connect(co).await.map_err(Error::from)?;
        let counts = Arc::new(StatementCounts::default());
        let c = counts.clone();
        db.set_metric_callback(move |info| c.add(StatementKind::of(&info.statement.sql)));
        let insert_returning = match db.get_database_backend() {
            DbBackend::MySql => {
                let row =
                    db.query_one_raw(sea_orm::Statement::from_string(DbBackend::MySql, "SELECT VERSION()")).await?;
                let version: String = match row {
                    Some(row) => row.try_get_by_index(0)?,
                    None => String::new(),
                };
                mariadb_with_returning(&version)
            }
            _ => db.support_returning(),
        };
        Ok(Store { db, counts, insert_returning, connects })
    }

    /// How many connections the pool has opened since it was made: it opens one as it grows,
    /// and when those it had died (the database restarted).
    pub fn connections_opened(&self) -> u64 {
        self.connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the database answers a trivial query; used by readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.db.execute_unprepared("SELECT 1").await.map(|_| ()).map_err(Error::from)
    }

    pub fn dialect(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgres",
            DbBackend::MySql => "mysql",
            _ => "sqlite",
        }
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whether an INSERT can hand back the rows it made (see [`Store::connect`]).
    pub fn insert_returning(&self) -> bool {
        self.insert_returning
    }

    /// The statements sent through this store so far, by kind (for `baton_sql_statements_total`).
    pub fn statement_counts(&self) -> &StatementCounts {
        &self.counts
    }

    /// Runs one UPDATE statement, again if the database rolls it back as a deadlock victim.
    pub(crate) async fn update_retrying<E: sea_orm::EntityTrait>(
        &self,
        update: sea_orm::UpdateMany<E>,
    ) -> Result<sea_orm::UpdateResult> {
        error::on_deadlock(|| async { Ok(update.clone().exec(&self.db).await?) }).await
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot upgrade its lock while
    /// another writer is active and fails at once, whatever the busy timeout.
    pub async fn write_tx(&self) -> Result<sea_orm::DatabaseTransaction> {
        let opts = sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        // BEGIN and COMMIT do not pass through the statement callback, so a transaction is
        // counted here, once.
        self.counts.add(StatementKind::Transaction);
        Ok(sea_orm::TransactionTrait::begin_with_options(&self.db, opts).await?)
    }
}

/// Ends a transaction explicitly: commits after `Ok`, rolls back after `Err`. Never leave it to
/// `Drop`: a dropped transaction's rollback waits for the connection's next use, and until then
/// its row locks (MySQL `FOR UPDATE`) block every other writer of those rows.
pub(crate) async fn end_tx<T>(tx: sea_orm::DatabaseTransaction, result: Result<T>) -> Result<T> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Milliseconds since the Unix epoch, the unit of every time column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    #[test]
    fn options_do_not_print_the_password() {
        let t = std::time::Duration::from_secs(1);
        let opts = super::Options {
            url: "postgres://baton:hunter2@db/baton".into(),
            max_connections: 1,
            connect_timeout: t,
            acquire_timeout: t,
        };
        let shown = format!("{opts:?}");
        assert!(!shown.contains("hunter2") && shown.contains("postgres://baton:********@db/baton"), "{shown}");
        assert_eq!(super::masked_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn mariadb_from_10_5_inserts_returning_and_mysql_does_not() {
        for (version, returning) in [
            ("10.11.6-MariaDB-0+deb12u1", true),
            ("10.5.0-MariaDB", true),
            ("11.4.2-MariaDB-ubu2404", true),
            ("5.5.5-10.4.32-MariaDB", false),
            ("10.4.32-MariaDB-log", false),
            ("8.0.36", false),
            ("8.4.0-0ubuntu0.24.04.1", false),
            ("", false),
        ] {
            assert_eq!(super::mariadb_with_returning(version), returning, "{version}");
        }
    }

    #[tokio::test]
    async fn sqlite_connections_log_ahead_and_map_the_file() {
        use sea_orm::ConnectionTrait;
        let dir = tempfile::tempdir().unwrap();
        let t = std::time::Duration::from_secs(5);
        let url = format!("sqlite://{}/baton.db", dir.path().display());
        let opts = super::Options { url, max_connections: 3, connect_timeout: t, acquire_timeout: t };
        let store = super::Store::connect(&opts).await.unwrap();
        let pragma = |name: &'static str| {
            let db = store.conn().clone();
            async move {
                let stmt = sea_orm::Statement::from_string(db.get_database_backend(), format!("PRAGMA {name}"));
                let row = db.query_one_raw(stmt).await.unwrap().unwrap();
                row.try_get_by_index::<String>(0)
                    .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                    .unwrap()
            }
        };
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("mmap_size").await, super::SQLITE_MMAP_BYTES.to_string());
    }
}
