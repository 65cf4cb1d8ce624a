//! A database per test, on the dialect chosen by `BATON_TEST_DATABASE` (`sqlite`, the default,
//! `postgres` or `mysql`). PostgreSQL and MariaDB databases are created on the servers that
//! `scripts/services.sh` starts (`BATON_TEST_POSTGRES_URL`, `BATON_TEST_MYSQL_URL`) and dropped
//! when the test ends. A dialect whose server is not configured fails the test loudly.

use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    /// The dialect of this test run.
    pub fn current() -> Dialect {
        match std::env::var("BATON_TEST_DATABASE").as_deref() {
            Ok("postgres") => Dialect::Postgres,
            Ok("mysql") | Ok("mariadb") => Dialect::Mysql,
            Ok("sqlite") | Ok("") | Err(_) => Dialect::Sqlite,
            Ok(other) => panic!("BATON_TEST_DATABASE={other:?}: use sqlite, postgres or mysql"),
        }
    }

    fn admin_url(self) -> String {
        let var = match self {
            Dialect::Postgres => "BATON_TEST_POSTGRES_URL",
            Dialect::Mysql => "BATON_TEST_MYSQL_URL",
            Dialect::Sqlite => unreachable!("SQLite needs no server"),
        };
        std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run the tests through ./scripts/test.sh, which starts the database servers")
        })
    }
}

/// A fresh, empty database; dropped with this value.
pub struct TestDatabase {
    pub url: String,
    pub dialect: Dialect,
    name: String,
    _dir: Option<TempDir>,
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t_{}_{}_{}", std::process::id(), n, nanos % 1_000_000_000)
}

/// `base` with its path (the database name) replaced by `db`.
fn with_database(base: &str, db: &str) -> String {
    let (scheme, rest) = base.split_once("://").expect("URL has a scheme");
    let host = rest.split_once('/').map_or(rest, |(h, _)| h);
    format!("{scheme}://{host}/{db}")
}

impl TestDatabase {
    /// An existing database that the test manages itself (nothing is dropped).
    pub fn existing(url: &str) -> TestDatabase {
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else if url.starts_with("mysql") {
            Dialect::Mysql
        } else {
            Dialect::Sqlite
        };
        TestDatabase { url: url.to_owned(), dialect, name: String::new(), _dir: None }
    }

    /// A new database of the current dialect.
    pub async fn create() -> TestDatabase {
        TestDatabase::create_on(Dialect::current()).await
    }

    pub async fn create_on(dialect: Dialect) -> TestDatabase {
        let name = unique_name();
        if dialect == Dialect::Sqlite {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/baton.db?mode=rwc", dir.path().display());
            return TestDatabase { url, dialect, name, _dir: Some(dir) };
        }
        let admin = dialect.admin_url();
        let conn = Database::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test database server at {admin}: {e}"));
        conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let _ = conn.close().await;
        TestDatabase { url: with_database(&admin, &name), dialect, name, _dir: None }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dialect == Dialect::Sqlite || self.name.is_empty() {
            return;
        }
        let admin = self.dialect.admin_url();
        let sql = match self.dialect {
            Dialect::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        // Drop runs outside any runtime the test may have: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let conn = Database::connect(&admin).await.ok()?;
                let _ = conn.execute_unprepared(&sql).await;
                let _ = conn.close().await;
                Some(())
            })
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_url_path() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "t_1"), "postgres://u@h:5/t_1");
        assert_eq!(with_database("mysql://a:b@h:3", "t_2"), "mysql://a:b@h:3/t_2");
    }
}
