//! What every operation shares, added to the annotated operations in one place rather than
//! repeated on each handler: the error answers (API.md's `{"error": {code, message, request_id}}`) by status
//! and the rule that says which operations can give each, the `X-Baton-Node` and `X-Request-Id`
//! headers of every answer, and the two ways to authenticate.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr};

/// The security schemes' names, as the document's `security` (in `mod.rs`) refers to them.
pub const BEARER: &str = "bearer";
pub const SESSION: &str = "session";

/// The headers on every answer, with their descriptions.
const ANSWER_HEADERS: &[(&str, &str)] = &[
    ("X-Baton-Node", "the id of the node that answered (`ha.node_id`)"),
    (
        "X-Request-Id",
        "the request's id: the client's own `X-Request-Id` when it sent a plain one (1 to 128 letters, \
         digits or `-_.:`), else a fresh one; error bodies repeat it and the server's log lines carry it",
    ),
];

/// When an operation can give one of the common errors.
#[derive(Clone, Copy)]
enum When {
    /// It takes parameters or a body, which can be malformed.
    Input,
    /// It takes a body, which can be too large.
    Body,
    /// It needs credentials.
    Secured,
    /// Its path names something, which may not exist (or be hidden from the caller).
    PathParameter,
    /// It reads the database or calls another service (every operation but the two below).
    Dependencies,
}

/// Operations that answer from the process alone, so never 503.
const SELF_CONTAINED: &[&str] = &["health", "openapi", "metrics"];

/// The common errors: status, component name, description, and when an operation can give it.
/// An operation that describes a status itself keeps its own description.
const ERRORS: &[(u16, &str, &str, When)] = &[
    (400, "InvalidInput", "malformed or invalid input; the message names the field", When::Input),
    (401, "Unauthenticated", "no credentials, or bad ones", When::Secured),
    (
        403,
        "Forbidden",
        "not allowed: the message names the role needed, or the browser origin that was refused",
        When::Secured,
    ),
    (404, "NotFound", "not found, or in a project the caller cannot see", When::PathParameter),
    (413, "PayloadTooLarge", "the body is larger than `http.max_body_bytes`", When::Body),
    (503, "Unavailable", "the database or another service is unreachable; retry shortly", When::Dependencies),
];

/// Adds the shared parts to `doc`: security schemes, the header and error components, and to
/// every operation the errors it can give and the header on each answer.
pub fn apply(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::new);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("an API token")).build(),
        ),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::auth::SESSION_COOKIE,
            "the session cookie set by `POST /api/v1/auth/login`",
        ))),
    );
    for &(name, description) in ANSWER_HEADERS {
        components.headers.insert(name.to_owned(), RefOr::T(string_header(description)));
    }
    for &(status, name, description, _) in ERRORS {
        components.responses.insert(name.to_owned(), RefOr::T(error_response(status, description)));
    }
    for op in super::operations(doc) {
        add_errors(op);
        answer_headers(op);
    }
}

/// Adds the headers of every answer to each answer of `op`.
pub fn answer_headers(op: &mut Operation) {
    for resp in op.responses.responses.values_mut() {
        if let RefOr::T(resp) = resp {
            response_headers(resp);
        }
    }
}

/// Marks the headers of every answer required, in the document's JSON (utoipa's `Header` has no
/// `required`): a checker then finds any answer without them.
pub fn require_answer_headers(doc: &mut serde_json::Value) {
    for &(name, _) in ANSWER_HEADERS {
        if let Some(header) = doc.pointer_mut(&format!("/components/headers/{name}")).and_then(|h| h.as_object_mut()) {
            header.insert("required".to_owned(), serde_json::Value::Bool(true));
        }
    }
}

/// An error answer as described for `status`; 429 also says when to retry.
fn error_response(status: u16, description: &str) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let mut builder = ResponseBuilder::new().description(description).content("application/json", content);
    if status == 429 {
        builder = builder.header("Retry-After", integer_header("seconds to wait before trying again"));
    }
    let mut resp = builder.build();
    response_headers(&mut resp);
    resp
}

fn add_errors(op: &mut Operation) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_body = op.request_body.is_some();
    let applies = |when: When| match when {
        When::Input => has_body || !params.is_empty(),
        When::Body => has_body,
        // No operation-level requirement: the document's (a bearer token or the cookie) applies.
        When::Secured => op.security.is_none(),
        When::PathParameter => params.iter().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path)),
        When::Dependencies => !op.operation_id.as_deref().is_some_and(|id| SELF_CONTAINED.contains(&id)),
    };
    let wanted: Vec<_> = ERRORS.iter().filter(|(.., when)| applies(*when)).collect();
    for (status, name, ..) in wanted {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

fn response_headers(resp: &mut Response) {
    for &(name, _) in ANSWER_HEADERS {
        resp.headers
            .entry(name.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/headers/{name}"))));
    }
}

fn string_header(description: &str) -> Header {
    HeaderBuilder::new().schema(Some(Object::with_type(Type::String))).description(Some(description)).build()
}

fn integer_header(description: &str) -> Header {
    HeaderBuilder::new().schema(Some(Object::with_type(Type::Integer))).description(Some(description)).build()
}
