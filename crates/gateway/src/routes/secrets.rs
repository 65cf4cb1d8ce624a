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
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Page;
use crate::{AppState, model};

/// Values larger than this are files, not secrets.
const MAX_VALUE: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
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

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = page_limit(q.limit);
    let rows = state.tables.secrets_page(pid, q.before, limit as u64 + 1).await?;
    let render = |s: baton_store::entity::project_secret::Model| json!({"name": s.name, "created_at": model::time(s.created_at), "updated_at": model::time(s.updated_at)});
    Ok(Json(Page::of(rows, limit, |s| s.id, render)))
}

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
    Ok((StatusCode::CREATED, Json(json!({"name": row.name, "created_at": model::time(row.created_at)}))))
}

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

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, name)): ApiPath<(i64, String)>,
) -> Result<StatusCode> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    state.tables.delete_secret(pid, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
