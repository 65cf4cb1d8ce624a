//! The route table of API.md, and what applies to every response: the `X-Baton-Node` header,
//! JSON errors for unknown routes and methods, and the body size limit.

mod audit;
mod cluster;
mod docs;
mod identity;
mod members;
mod probes;
mod projects;
mod queue_reason;
mod runners;
mod schedules;
mod secrets;
mod sse;
mod tasks;
mod templates;
mod tokens;
mod ws;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter};
use baton_core::ErrorCode;
use serde::Deserialize;

use crate::AppState;
use crate::error::Error;

/// Declares the route table once: it builds the router, lists every (method, path) in
/// [`ROUTES`], which the permission test walks so that no route goes unchecked, and collects every
/// handler's `#[utoipa::path]` annotation into [`Annotated`], from which `openapi.rs` builds the
/// document (a handler without one does not compile; the annotation's method and path are checked
/// against this table by `openapi.rs`' tests).
macro_rules! routes {
    ($($path:literal => { $($method:ident $module:ident :: $handler:ident),+ $(,)? }),* $(,)?) => {
        /// Every route: (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];

        fn table() -> Router<AppState> {
            Router::new()$(.route($path, MethodRouter::new()$(.on(MethodFilter::$method, $module::$handler))+))*
        }

        /// The operations of every route, as their handlers' annotations describe them.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($($module::$handler),+),*))]
        pub struct Annotated;
    };
}

routes! {
    "/api/health" => { GET probes::health },
    "/api/ready" => { GET probes::ready },
    "/metrics" => { GET probes::metrics },
    "/api/v1/openapi.json" => { GET docs::openapi },
    "/api/v1/auth/login" => { POST identity::login },
    "/api/v1/auth/logout" => { POST identity::logout },
    "/api/v1/users/me" => { GET identity::me, PATCH identity::change_password },
    "/api/v1/users" => { GET identity::list_users, POST identity::create_user },
    "/api/v1/users/{uid}" => { PATCH identity::update_user, DELETE identity::delete_user },
    "/api/v1/tokens" => { GET tokens::list, POST tokens::create },
    "/api/v1/tokens/{id}" => { DELETE tokens::delete },
    "/api/v1/projects" => { GET projects::list, POST projects::create },
    "/api/v1/projects/{pid}" => { GET projects::get, PATCH projects::update, DELETE projects::delete },
    "/api/v1/projects/{pid}/members" => { GET members::list },
    "/api/v1/projects/{pid}/members/{uid}" => { PUT members::put, DELETE members::delete },
    "/api/v1/projects/{pid}/secrets" => { GET secrets::list, POST secrets::create },
    "/api/v1/projects/{pid}/secrets/{name}" => { PUT secrets::update, DELETE secrets::delete },
    "/api/v1/projects/{pid}/templates" => { GET templates::list, POST templates::create },
    "/api/v1/projects/{pid}/templates/{tid}" => {
        GET templates::get, PATCH templates::update, DELETE templates::delete
    },
    "/api/v1/projects/{pid}/tasks" => { GET tasks::list, POST tasks::create },
    "/api/v1/projects/{pid}/tasks/{id}" => { GET tasks::get },
    "/api/v1/projects/{pid}/tasks/{id}/attempts" => { GET tasks::attempts },
    "/api/v1/projects/{pid}/tasks/{id}/log" => { GET tasks::log },
    "/api/v1/projects/{pid}/tasks/{id}/log/raw" => { GET tasks::raw_log },
    "/api/v1/projects/{pid}/tasks/{id}/log/stream" => { GET sse::stream },
    "/api/v1/projects/{pid}/tasks/{id}/cancel" => { POST tasks::cancel },
    "/api/v1/projects/{pid}/schedules" => { GET schedules::list, POST schedules::create },
    // A static segment wins over `{sid}` in axum's router, so `preview` is never taken for an id.
    "/api/v1/projects/{pid}/schedules/preview" => { GET schedules::preview },
    "/api/v1/projects/{pid}/schedules/{sid}" => {
        GET schedules::get, PATCH schedules::update, DELETE schedules::delete
    },
    "/api/v1/projects/{pid}/schedules/{sid}/next" => { GET schedules::next },
    "/api/v1/projects/{pid}/schedules/{sid}/fires" => { GET schedules::fires },
    "/api/v1/projects/{pid}/runner-registration-tokens" => { POST runners::create_project_token },
    "/api/v1/projects/{pid}/audit" => { GET audit::project },
    "/api/v1/runner-registration-tokens" => { POST runners::create_token },
    "/api/v1/runners" => { GET runners::list },
    "/api/v1/runners/{id}" => { GET runners::get, PATCH runners::update, DELETE runners::delete },
    "/api/v1/audit" => { GET audit::list },
    "/api/v1/cluster" => { GET cluster::view },
    "/api/v1/cluster/nodes/{node_id}/drain" => { POST cluster::drain },
    "/api/v1/ws" => { GET ws::ws },
}

/// Every route the router serves, the console's beside the API's: (method, path in axum's syntax).
pub fn served() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().chain(baton_console::ROUTES).copied()
}

/// A node as the cluster view shows it (for live events).
pub use cluster::render as node_json;
/// A runner as `GET /runners/{id}` shows it (for live events).
pub use runners::render as runner_json;
/// A task as `GET` shows it (for live events).
pub use tasks::tasks_json;
/// Where changes of who may read what are announced.
pub use ws::MEMBERS as MEMBERS_TOPIC;

pub fn router(state: AppState) -> Router {
    let max_body = state.opts.max_body_bytes;
    table()
        // Only on matched routes: it names the write by its route.
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::audit::record))
        // After the audit layer: the console's files are no API writes.
        .merge(baton_console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), crate::origin::forgery_guard))
        .layer(middleware::from_fn_with_state(state.clone(), node_header))
        // Outside every layer that may refuse a request, so it times and counts what the client
        // gets, those refusals included.
        .layer(middleware::from_fn_with_state(state.metrics.clone(), crate::http_metrics::record))
        // Outermost: every response, errors of the layers above included, has the id.
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::<str>::from(state.opts.node_id.as_str()),
            crate::request_id::layer,
        ))
        .with_state(state)
}

async fn node_header(State(state): State<AppState>, req: axum::extract::Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&state.opts.node_id) {
        resp.headers_mut().insert("x-baton-node", v);
    }
    resp
}

async fn not_found(uri: axum::http::Uri) -> Error {
    Error::not_found(format!("route {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
}

/// `?limit=&before=` of list routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items per page: 50 unless given.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
}

/// The page size: 50 unless given, 1 to 500 (API.md). A limit outside that is refused rather
/// than silently changed, as the OpenAPI document's bounds say.
pub fn page_limit(limit: Option<u32>) -> Result<usize, Error> {
    match limit.unwrap_or(50) {
        n @ 1..=500 => Ok(n as usize),
        _ => Err(Error::field("limit", "must be between 1 and 500")),
    }
}
