//! The caller's API tokens. A token may be narrowed at creation to one project and a lower role;
//! it acts with the lesser of that and its user's rights at each request (`access.rs`). A token
//! made with a narrowed token is narrowed at least as much: a narrowed credential never mints a
//! broader one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::token;
use baton_store::gateway::tokens::NewToken;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::AppState;
use crate::access::{self, Role};
use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{self, Page};
use crate::openapi::params::TokenPath;
use crate::openapi::schemas::{CreatedToken, Token};

/// The caller's API tokens.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "list_tokens",
    tag = "identity",
    params(ListQuery),
    responses((status = 200, description = "a page of the caller's tokens", body = Page<Token>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    let limit = page_limit(q.limit)?;
    let tokens = state.tables.tokens_of(caller.id, q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(tokens, limit, |t| t.id, |t| model::token(&t))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewTokenRequest)]
pub struct Body {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: String,
    /// Leave it out for a token that never expires; at most ten years.
    expires_in_seconds: Option<u64>,
    /// The only project the token may see.
    project_id: Option<i64>,
    /// The highest role the token acts with.
    #[schema(value_type = Option<crate::openapi::schemas::Role>)]
    role: Option<String>,
}

/// A new API token of the caller, narrowed to a project and a role if asked (and at least as much
/// as the token the request came with). Its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "create_token",
    tag = "identity",
    request_body = Body,
    responses(
        (status = 201, description = "the new token, with its secret", body = CreatedToken),
        (status = 409, description = "a token of this name exists", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Body>,
) -> Result<(StatusCode, Json<Value>)> {
    if body.name.trim().is_empty() || body.name.len() > 100 {
        return Err(Error::field("name", "must be 1 to 100 characters"));
    }
    let expires_at = match body.expires_in_seconds {
        Some(0) => {
            return Err(Error::field(
                "expires_in_seconds",
                "must be positive; leave it out for a token that never expires",
            ));
        }
        Some(s) if s > 10 * 365 * 86_400 => {
            return Err(Error::field("expires_in_seconds", "must be at most ten years"));
        }
        Some(s) => Some(baton_store::now_ms() + s as i64 * 1000),
        None => None,
    };
    let role = match body.role.as_deref() {
        Some(r) => {
            Some(Role::parse(r).ok_or_else(|| Error::field("role", "must be owner, manager, runner or viewer"))?)
        }
        None => None,
    };
    if let Some(pid) = body.project_id
        && access::role_in(&state, &caller, pid).await?.is_none()
    {
        return Err(Error::field("project_id", format!("no project {pid} that you can see")));
    }
    let (project_id, role) = narrowed(&caller, body.project_id, role)?;
    let secret = token::generate("bt_");
    let new = NewToken {
        user_id: caller.id,
        name: body.name.trim(),
        token_hash: &token::digest(&secret),
        expires_at,
        project_id,
        role: role.map(Role::as_str),
    };
    let row = state.tables.create_token(new).await?;
    let mut out = model::token(&row);
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The narrowing of a new token: what was asked, and at least what the caller's own token has.
fn narrowed(caller: &Caller, project_id: Option<i64>, role: Option<Role>) -> Result<(Option<i64>, Option<Role>)> {
    let Some(own) = &caller.token else { return Ok((project_id, role)) };
    let project_id = match (own.project_id, project_id) {
        (Some(mine), Some(asked)) if mine != asked => {
            return Err(Error::field("project_id", format!("this token sees only project {mine}")));
        }
        (Some(mine), _) => Some(mine),
        (None, asked) => asked,
    };
    let role = match (own.role, role) {
        (Some(mine), Some(asked)) => Some(mine.min(asked)),
        (mine, asked) => mine.or(asked),
    };
    Ok((project_id, role))
}

/// Deletes one of the caller's API tokens.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "delete_token",
    tag = "identity",
    params(TokenPath),
    responses((status = 204, description = "deleted"))
)]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<i64>) -> Result<StatusCode> {
    state.tables.delete_token(caller.id, id).await?;
    crate::events::rights_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
