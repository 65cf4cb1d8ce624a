//! The store's error: database failures sorted into what callers act on.

use baton_core::{Coded, ErrorCode};
use sea_orm::{DbErr, SqlErr};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    /// A unique constraint or a state precondition failed.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached or the pool is exhausted; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was migrated by a newer version of Baton.
    #[error(
        "the database schema is newer than this binary (it has migration {0}); run the newer Baton version, or restore a backup from before the upgrade"
    )]
    SchemaNewer(String),
}

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Error {
        if let Some(SqlErr::UniqueConstraintViolation(msg)) = e.sql_err() {
            return Error::Conflict(format!("already exists ({msg})"));
        }
        match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Error::Unavailable(e.to_string()),
            DbErr::Exec(ref inner) | DbErr::Query(ref inner) if is_io(&inner.to_string()) => {
                Error::Unavailable(e.to_string())
            }
            other => Error::Database(other.to_string()),
        }
    }
}

impl Error {
    /// The database picked this statement as a deadlock victim and rolled it back whole (InnoDB
    /// does this even to two single-row updates of one row), or PostgreSQL could not serialize it.
    pub(crate) fn is_deadlock(&self) -> bool {
        let Error::Database(msg) = self else { return false };
        let msg = msg.to_ascii_lowercase();
        ["deadlock found", "deadlock detected", "could not serialize access", "(40001)", "(40p01)"]
            .iter()
            .any(|m| msg.contains(m))
    }
}

/// Runs `op` again, up to four more times with a short growing pause, while the database rolls
/// it back as a deadlock victim. Only for operations that are one statement or one transaction:
/// a victim left no trace, so running it again is what the caller asked for in the first place.
pub(crate) async fn on_deadlock<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut pause = std::time::Duration::from_millis(2);
    for _ in 0..4 {
        match op().await {
            Err(e) if e.is_deadlock() => {
                tracing::debug!(error = %e, "deadlock victim; running it again");
                tokio::time::sleep(pause).await;
                pause *= 3;
            }
            other => return other,
        }
    }
    op().await
}

/// Driver errors that mean the connection broke rather than the statement being wrong.
fn is_io(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    ["connection", "broken pipe", "i/o", "timed out", "pool", "database is locked"].iter().any(|m| msg.contains(m))
}

impl Coded for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Database(_) | Error::Corrupt(_) | Error::SchemaNewer(_) => ErrorCode::Internal,
        }
    }
}

/// `NotFound(what)` when a write matched no row: the row was not there to change.
pub(crate) fn found(rows_affected: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows_affected == 0 { Err(Error::NotFound(what())) } else { Ok(()) }
}

impl Error {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deadlock_victims_run_again_and_other_errors_do_not() {
        let mysql = "Execution Error: error returned from database: 1213 (40001): Deadlock found when trying to get lock; try restarting transaction";
        let mut tries = 0;
        let r = on_deadlock(|| {
            tries += 1;
            let n = tries;
            async move { if n < 3 { Err(Error::Database(mysql.into())) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3);

        let mut tries = 0;
        let r: Result<()> = on_deadlock(|| {
            tries += 1;
            async { Err(Error::Database("syntax error".into())) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(tries, 1);

        let mut tries = 0;
        let r: Result<()> = on_deadlock(|| {
            tries += 1;
            async { Err(Error::Database("ERROR: deadlock detected (40P01)".into())) }
        })
        .await;
        assert!(r.unwrap_err().is_deadlock());
        assert_eq!(tries, 5, "gives up after five tries");
    }
}
