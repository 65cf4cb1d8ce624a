//! The store's error: database failures sorted into what callers act on.

use baton_core::{Coded, ErrorCode};
use sea_orm::{DbErr, SqlErr};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
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
