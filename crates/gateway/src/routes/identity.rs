//! Login and logout, the caller's identity, users (admins only) and the caller's API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::{ErrorCode, token};
use baton_store::gateway::identity::{NewUser, UserChanges};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Caller, SESSION_COOKIE};
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath};
use crate::{AppState, model};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// Hashing is slow on purpose; keep it off the async workers.
async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash)).await.unwrap_or(false)
}

async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?
        .map_err(|e| Error::new(ErrorCode::Internal, e))
}

pub async fn login(State(state): State<AppState>, ApiJson(body): ApiJson<Login>) -> Result<Response> {
    let user = state.tables.user_by_name(&body.username).await?;
    let stored = user.as_ref().map_or_else(|| auth::DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let ok = verify(body.password, stored).await;
    let Some(user) = user.filter(|_| ok) else {
        return Err(Error::new(ErrorCode::Unauthenticated, "wrong username or password"));
    };
    let session = token::generate("bts_");
    let ttl = state.opts.session_ttl;
    state.tables.create_session(user.id, &token::digest(&session), ttl.as_millis() as i64).await?;
    let secure = if state.opts.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={session}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}", ttl.as_secs());
    tracing::info!(user_id = user.id, "logged in");
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({"user": model::user(&user)}))).into_response())
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(session) = auth::session_cookie(&headers) {
        state.tables.delete_session(&token::digest(&session)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    Ok(Json(model::user(&state.tables.user(caller.id).await?)))
}

pub async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    caller.require_admin()?;
    let users = state.tables.users().await?;
    Ok(Json(json!({"items": users.iter().map(model::user).collect::<Vec<_>>(), "next": null})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

pub fn check_username(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
        return Err(Error::field("username", "use 1 to 100 letters, digits or - _ . @"));
    }
    Ok(())
}

pub fn check_password(pw: &str) -> Result<()> {
    if pw.chars().count() < 8 || pw.len() > 1024 {
        return Err(Error::field("password", "must be 8 to 1024 characters long"));
    }
    Ok(())
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    check_username(&body.username)?;
    check_password(&body.password)?;
    let password_hash = hash(body.password).await?;
    let new = NewUser { username: &body.username, password_hash: &password_hash, admin: body.admin };
    let user = state.tables.create_user(new).await?;
    Ok((StatusCode::CREATED, Json(model::user(&user))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    username: Option<String>,
    password: Option<String>,
    admin: Option<bool>,
}

pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(uid): ApiPath<i64>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<Value>> {
    caller.require_admin()?;
    if let Some(name) = &body.username {
        check_username(name)?;
    }
    if uid == caller.id && body.admin == Some(false) {
        return Err(Error::new(ErrorCode::Conflict, "you cannot take away your own admin rights"));
    }
    let password_hash = match body.password {
        Some(pw) => {
            check_password(&pw)?;
            Some(hash(pw).await?)
        }
        None => None,
    };
    let changes = UserChanges { username: body.username, password_hash, admin: body.admin, keep_session: None };
    Ok(Json(model::user(&state.tables.update_user(uid, changes).await?)))
}

pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(uid): ApiPath<i64>,
) -> Result<StatusCode> {
    caller.require_admin()?;
    if uid == caller.id {
        return Err(Error::new(ErrorCode::Conflict, "you cannot delete yourself; ask another administrator"));
    }
    state.tables.delete_user(uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    let tokens = state.tables.tokens_of(caller.id).await?;
    Ok(Json(json!({"items": tokens.iter().map(model::token).collect::<Vec<_>>(), "next": null})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    expires_in_seconds: Option<u64>,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
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
    let secret = token::generate("bt_");
    let row = state.tables.create_token(caller.id, &body.name, &token::digest(&secret), expires_at).await?;
    let mut out = model::token(&row);
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode> {
    state.tables.delete_token(caller.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
