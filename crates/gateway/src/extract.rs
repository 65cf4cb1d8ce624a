//! Extractors whose failures are API errors that name the offending field, instead of axum's
//! plain-text rejections.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use baton_core::ErrorCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// A JSON body. Syntax errors give line and column; type errors and unknown or missing fields
/// give the field's path. The content type is not checked, so `curl -d` works as typed.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson).map_err(IntoResponse::into_response)
    }
}

fn body_error(e: BytesRejection) -> Response {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        let err = Error::new(ErrorCode::PayloadTooLarge, "the request body is larger than http.max_body_bytes allows");
        // The rest of the body was not read, so the connection cannot carry another request:
        // say so, or a client reusing it loses its next request.
        ([(axum::http::header::CONNECTION, "close")], err).into_response()
    } else {
        Error::new(ErrorCode::InvalidInput, format!("cannot read the request body: {}", e.body_text())).into_response()
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::new(ErrorCode::InvalidInput, "the request body is empty; send a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Error::new(ErrorCode::InvalidInput, format!("malformed JSON body: {inner}"))
        } else if path == "." {
            // Missing and unknown fields are reported by serde at the object itself.
            Error::new(ErrorCode::InvalidInput, format!("invalid JSON body: {inner}"))
        } else {
            Error::field(&path, strip_position(&inner.to_string()))
        }
    })?;
    // Anything after the first value (`{...} trailing`, two objects) makes the body malformed.
    de.end().map_err(|e| Error::new(ErrorCode::InvalidInput, format!("malformed JSON body: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 20", which adds nothing once the field is named.
fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

/// Path parameters; a bad one (`/projects/abc`) is a 400 naming it.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| Error::new(ErrorCode::InvalidInput, e.body_text()))
    }
}

/// Query parameters; a bad one is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| Error::new(ErrorCode::InvalidInput, e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        limits: Limits,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        max: u32,
    }

    fn err(body: &str) -> String {
        parse_json::<Body>(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(r#"{"name": 5, "limits": {"max": 1}}"#).starts_with("`name`: invalid type"));
        assert!(err(r#"{"name": "x", "limits": {"max": "a"}}"#).starts_with("`limits.max`: invalid type"));
        assert!(err(r#"{"limits": {"max": 1}}"#).contains("missing field `name`"));
        assert!(err(r#"{"name": "x", "limits": {"max": 1}, "nmae": 1}"#).contains("unknown field `nmae`"));
    }

    #[test]
    fn syntax_errors_and_empty_bodies_are_clear() {
        assert!(err(r#"{"name": "#).starts_with("malformed JSON body"));
        assert!(err("").contains("empty"));
        assert!(err("[]").contains("invalid"));
    }
}
