//! The route table of API.md, and what applies to every response: the `X-Baton-Node` header,
//! JSON errors for unknown routes and methods, and the body size limit.

mod cluster;
mod identity;
mod probes;
mod projects;
mod queue_reason;
mod runners;
mod schedules;
mod secrets;
mod tasks;
mod templates;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use baton_core::ErrorCode;
use serde::Deserialize;

use crate::AppState;
use crate::error::Error;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(identity::login))
        .route("/auth/logout", post(identity::logout))
        .route("/users/me", get(identity::me).patch(identity::change_password))
        .route("/users", get(identity::list_users).post(identity::create_user))
        .route("/users/{uid}", axum::routing::patch(identity::update_user).delete(identity::delete_user))
        .route("/tokens", get(identity::list_tokens).post(identity::create_token))
        .route("/tokens/{id}", axum::routing::delete(identity::delete_token))
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/{pid}", get(projects::get).patch(projects::update).delete(projects::delete))
        .route("/projects/{pid}/secrets", get(secrets::list).post(secrets::create))
        .route("/projects/{pid}/secrets/{name}", axum::routing::put(secrets::update).delete(secrets::delete))
        .route("/projects/{pid}/templates", get(templates::list).post(templates::create))
        .route(
            "/projects/{pid}/templates/{tid}",
            get(templates::get).patch(templates::update).delete(templates::delete),
        )
        .route("/projects/{pid}/tasks", get(tasks::list).post(tasks::create))
        .route("/projects/{pid}/tasks/{id}", get(tasks::get))
        .route("/projects/{pid}/tasks/{id}/log", get(tasks::log))
        .route("/projects/{pid}/tasks/{id}/log/raw", get(tasks::raw_log))
        .route("/projects/{pid}/tasks/{id}/cancel", post(tasks::cancel))
        .route("/projects/{pid}/schedules", get(schedules::list).post(schedules::create))
        .route(
            "/projects/{pid}/schedules/{sid}",
            get(schedules::get).patch(schedules::update).delete(schedules::delete),
        )
        .route("/projects/{pid}/schedules/{sid}/next", get(schedules::next))
        .route("/projects/{pid}/schedules/{sid}/fires", get(schedules::fires))
        .route("/runner-registration-tokens", post(runners::create_token))
        .route("/runners", get(runners::list))
        .route("/runners/{id}", get(runners::get).patch(runners::update).delete(runners::delete))
        .route("/cluster", get(cluster::view))
        .route("/cluster/nodes/{node_id}/drain", post(cluster::drain));
    let max_body = state.opts.max_body_bytes;
    Router::new()
        .route("/api/health", get(probes::health))
        .route("/api/ready", get(probes::ready))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), node_header))
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub before: Option<i64>,
}

/// The page size: default 50, at most 500.
pub fn page_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(50).clamp(1, 500) as usize
}
