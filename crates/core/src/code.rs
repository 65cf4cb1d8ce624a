//! One list of error codes for the whole project. Every crate's error maps onto one of these, and
//! each code has a single HTTP status and a single gRPC code, so an error keeps its meaning as it
//! crosses from the store to a gRPC service to the HTTP API.

use serde::Serialize;

/// What kind of failure an error is, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed or invalid input; the message names the field.
    InvalidInput,
    /// No credentials, or bad ones.
    Unauthenticated,
    /// Credentials are fine but the caller may not do this.
    Forbidden,
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The request collides with the current state (duplicate name, finished task, stale epoch).
    Conflict,
    PayloadTooLarge,
    RateLimited,
    /// A dependency (database, dispatcher) is unreachable or the node is draining; retry later.
    Unavailable,
    /// A bug or an unexpected failure; the message says what failed, never a secret.
    Internal,
}

impl ErrorCode {
    /// The snake_case name used in API error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidInput => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidInput => tonic::Code::InvalidArgument,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::Forbidden => tonic::Code::PermissionDenied,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::MethodNotAllowed => tonic::Code::Unimplemented,
            ErrorCode::Conflict => tonic::Code::FailedPrecondition,
            ErrorCode::PayloadTooLarge => tonic::Code::OutOfRange,
            ErrorCode::RateLimited => tonic::Code::ResourceExhausted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// The inverse of [`ErrorCode::grpc_code`], for errors that come back from another service.
    /// Transport-level codes (deadline, cancelled, unknown) count as unavailability: the call may
    /// be retried.
    pub fn from_grpc(code: tonic::Code) -> ErrorCode {
        match code {
            tonic::Code::InvalidArgument => ErrorCode::InvalidInput,
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            tonic::Code::PermissionDenied => ErrorCode::Forbidden,
            tonic::Code::NotFound => ErrorCode::NotFound,
            tonic::Code::Unimplemented => ErrorCode::MethodNotAllowed,
            tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists | tonic::Code::Aborted => ErrorCode::Conflict,
            tonic::Code::OutOfRange => ErrorCode::PayloadTooLarge,
            tonic::Code::ResourceExhausted => ErrorCode::RateLimited,
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

/// Implemented by every crate's error type.
pub trait Coded {
    fn code(&self) -> ErrorCode;

    /// A gRPC status carrying the code and the error's message.
    fn to_status(&self) -> tonic::Status
    where
        Self: std::fmt::Display,
    {
        tonic::Status::new(self.code().grpc_code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_round_trip() {
        let all = [
            ErrorCode::InvalidInput,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ];
        for code in all {
            assert_eq!(ErrorCode::from_grpc(code.grpc_code()), code, "{code:?}");
        }
    }

    #[test]
    fn names_are_snake_case_like_serde() {
        let json = serde_json::to_string(&ErrorCode::PayloadTooLarge).unwrap();
        assert_eq!(json, format!("\"{}\"", ErrorCode::PayloadTooLarge.as_str()));
    }
}
