//! `GET /api/v1/openapi.json`: the OpenAPI document of the API (`openapi/`), for anyone.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use baton_core::ErrorCode;

use crate::error::Error;

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "probes",
    security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", body = Object))
)]
pub async fn openapi() -> Response {
    match crate::openapi::json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialize");
            Error::new(ErrorCode::Internal, "internal error; the server log has the details").into_response()
        }
    }
}
