//! The dispatcher's error.

use baton_core::{Coded, ErrorCode};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] baton_store::Error),
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: String },
}

impl Coded for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Store(e) => e.code(),
            Error::Invalid { .. } => ErrorCode::InvalidInput,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        e.to_status()
    }
}
