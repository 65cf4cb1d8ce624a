//! API errors: a code from [`ErrorCode`] and a message for people, rendered as
//! `{"error": {"code": "...", "message": "...", "request_id": "..."}}` with the code's HTTP
//! status, and `Retry-After` when the error says when to try again.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::{Coded, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T> = std::result::Result<T, Error>;

/// An error answer of the API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<Duration>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), retry_after: None }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> Error {
        Error { retry_after: Some(retry_after), ..Error::new(ErrorCode::RateLimited, message) }
    }

    /// 400 about one field of the input.
    pub fn field(name: &str, problem: impl std::fmt::Display) -> Error {
        Error::new(ErrorCode::InvalidInput, format!("`{name}`: {problem}"))
    }

    pub fn not_found(what: impl std::fmt::Display) -> Error {
        Error::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(why: impl Into<String>) -> Error {
        Error::new(ErrorCode::Forbidden, why)
    }

    pub fn unauthenticated() -> Error {
        Error::new(ErrorCode::Unauthenticated, "log in or send `Authorization: Bearer <api token>`")
    }
}

/// The body of every error answer. The OpenAPI document's schema of it is derived from these
/// types, so a field added here is documented with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong. Clients ignore fields they do not know: more may be added.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What kind of error, for programs: `invalid_input`, `unauthenticated`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`, `rate_limited`,
    /// `unavailable` or `internal`.
    #[schema(pattern = "^[a-z]+(_[a-z]+)*$", example = "invalid_input")]
    pub code: String,
    /// For people: what went wrong and what to do about it; a 400 names the field.
    pub message: String,
    /// The request's id, as in the `X-Request-Id` answer header: what to quote to an operator,
    /// who finds the request's log lines by it. Absent only outside a request's handling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Coded for Error {
    fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<baton_store::Error> for Error {
    fn from(e: baton_store::Error) -> Error {
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "store error");
            return Error::new(code, "internal error; the server log has the details");
        }
        Error::new(code, e.to_string())
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        let code = ErrorCode::from_grpc(s.code());
        match code {
            ErrorCode::Internal => {
                tracing::error!(error = %s.message(), "dispatcher call failed");
                Error::new(code, "internal error; the server log has the details")
            }
            ErrorCode::Unavailable => {
                Error::new(code, format!("the dispatcher is unavailable ({}); retry shortly", s.message()))
            }
            _ => Error::new(code, s.message().to_owned()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // The id under which this request's log lines are written: what to quote to an operator.
        let request_id = crate::request_id::current().and_then(|v| v.to_str().map(str::to_owned).ok());
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.as_str().to_owned(), message: self.message, request_id } };
        let mut resp = (status, Json(body)).into_response();
        if let Some(after) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(after)));
        }
        resp
    }
}

/// `Retry-After` in whole seconds: rounded up, and at least 1 (0 would invite an instant retry).
pub fn retry_after_secs(after: Duration) -> u64 {
    after.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(900)), 900);
        let resp = Error::rate_limited("slow down", Duration::from_millis(2500)).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
    }
}
