//! Project secrets: values are sealed (AES-256-GCM) before they reach the database and are never
//! returned by the API; only names and times are.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::names::valid_env_name;
use baton_core::sealed::secret_aad;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Page;
use crate::openapi::params::{ProjectPath, SecretPath};
use crate::openapi::schemas::{Secret, SecretName};
use crate::{AppState, model};

/// Values larger than this are files, not secrets.
const MAX_VALUE: usize = 64 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// A variable name (letters, digits and `_`, not starting with a digit; not `BATON_…`), at
    /// most 100 characters: scripts receive the secret as this variable.
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
    name: String,
    /// 1 byte to 64 KiB; never shown again.
    #[schema(min_length = 1)]
    value: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// 1 byte to 64 KiB; never shown again.
    #[schema(min_length = 1)]
    value: String,
}

fn check(name: &str, value: &str) -> Result<()> {
    if !valid_env_name(name) || name.len() > 100 {
        return Err(Error::field("name", "use a variable name: letters, digits and _, not starting with a digit"));
    }
    if name.starts_with("BATON_") {
        return Err(Error::field("name", "names starting with BATON_ are reserved"));
    }
    if value.is_empty() || value.len() > MAX_VALUE {
        return Err(Error::field("value", format!("must be 1 to {MAX_VALUE} bytes")));
    }
    Ok(())
}

/// The names of a project's secrets (never their values).
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/secrets",
    operation_id = "list_secrets",
    tag = "projects",
    params(ProjectPath, ListQuery),
    responses((status = 200, description = "a page of the project's secrets", body = Page<Secret>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = page_limit(q.limit)?;
    let rows = state.tables.secrets_page(pid, q.before, limit as u64 + 1).await?;
    let render = |s: baton_store::entity::project_secret::Model| json!({"name": s.name, "created_at": model::time(s.created_at), "updated_at": model::time(s.updated_at)});
    Ok(Json(Page::of(rows, limit, |s| s.id, render)))
}

/// A new secret of the project (managers).
#[utoipa::path(
    post,
    path = "/api/v1/projects/{pid}/secrets",
    operation_id = "create_secret",
    tag = "projects",
    params(ProjectPath),
    request_body = NewSecret,
    responses(
        (status = 201, description = "the new secret, without its value", body = Secret),
        (status = 409, description = "the project has a secret of this name", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(body): ApiJson<NewSecret>,
) -> Result<(StatusCode, Json<Value>)> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    check(&body.name, &body.value)?;
    let sealed = state.opts.seal_key.seal(&body.value, &secret_aad(pid, &body.name));
    let row = state.tables.create_secret(pid, &body.name, &sealed).await?;
    let created =
        json!({"name": row.name, "created_at": model::time(row.created_at), "updated_at": model::time(row.updated_at)});
    Ok((StatusCode::CREATED, Json(created)))
}

/// Replaces a secret's value (managers).
#[utoipa::path(
    put,
    path = "/api/v1/projects/{pid}/secrets/{name}",
    operation_id = "update_secret",
    tag = "projects",
    params(SecretPath),
    request_body = SecretValue,
    responses((status = 200, description = "replaced", body = SecretName))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, name)): ApiPath<(i64, String)>,
    ApiJson(body): ApiJson<SecretValue>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    check(&name, &body.value)?;
    let sealed = state.opts.seal_key.seal(&body.value, &secret_aad(pid, &name));
    state.tables.update_secret(pid, &name, &sealed).await?;
    Ok(Json(json!({"name": name})))
}

/// Deletes a secret (managers).
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{pid}/secrets/{name}",
    operation_id = "delete_secret",
    tag = "projects",
    params(SecretPath),
    responses((status = 204, description = "deleted"))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, name)): ApiPath<(i64, String)>,
) -> Result<StatusCode> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    state.tables.delete_secret(pid, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
