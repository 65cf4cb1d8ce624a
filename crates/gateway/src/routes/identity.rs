//! Login and logout (throttled, see `throttle.rs`), the caller's identity and password, users
//! (admins only) and the caller's API tokens. Every password hash goes through the bounded
//! hashing pool (`hashing.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::{ErrorCode, token};
use baton_store::gateway::identity::{NewUser, UserChanges};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, page_limit};
use crate::audit::Note;
use crate::auth::{self, Caller, SESSION_COOKIE};
use crate::client_addr::ClientAddr;
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Page;
use crate::openapi::params::UserPath;
use crate::openapi::schemas::{LoggedIn, User};
use crate::{AppState, model};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// Logs in; the audit log records the attempt, failed ones too, under the name given.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "login",
    tag = "identity",
    security(()),
    request_body = Login,
    responses(
        (status = 200, description = "logged in; the session cookie is set", body = LoggedIn,
            headers(("Set-Cookie" = String, description = "the session cookie, `baton_session`, HttpOnly"))),
        (status = 401, description = "wrong username or password", body = ErrorBody),
        (status = 403, description = "a login from another site's page", body = ErrorBody),
        (status = 429, description = "too many failed logins for this user name or client address, on any node",
            body = ErrorBody, headers(("Retry-After" = u64, description = "seconds to wait"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<Login>,
) -> Response {
    let name = body.username.clone();
    let (user_id, result) = try_login(&state, addr, body).await;
    let detail = match &result {
        Ok(_) => "logged in".to_owned(),
        Err(e) => format!("refused: {}", e.message),
    };
    let mut resp = result.into_response();
    resp.extensions_mut().insert(Note { detail, user: Some((user_id, name)) });
    resp
}

async fn try_login(state: &AppState, addr: std::net::IpAddr, body: Login) -> (Option<i64>, Result<Response>) {
    // Refused before anything is hashed: a throttled attacker costs no more than a lookup.
    if let Err(e) = state.throttle.check(&body.username, addr).await {
        return (None, Err(e));
    }
    let user = match state.tables.user_by_name(&body.username).await {
        Ok(u) => u,
        Err(e) => return (None, Err(e.into())),
    };
    let user_id = user.as_ref().map(|u| u.id);
    (user_id, finish_login(state, addr, body, user).await)
}

async fn finish_login(
    state: &AppState,
    addr: std::net::IpAddr,
    body: Login,
    user: Option<baton_store::entity::user::Model>,
) -> Result<Response> {
    let ok = state.hasher.verify(body.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|_| ok) else {
        state.throttle.failed(&body.username, addr).await;
        return Err(Error::new(ErrorCode::Unauthenticated, "wrong username or password"));
    };
    state.throttle.succeeded(&body.username).await;
    let session = token::generate("bts_");
    let ttl = state.opts.session_ttl;
    state.tables.create_session(user.id, &token::digest(&session), ttl.as_millis() as i64).await?;
    let secure = if state.opts.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={session}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}", ttl.as_secs());
    tracing::info!(user_id = user.id, "logged in");
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({"user": model::user(&user)}))).into_response())
}

/// Ends the session the request came with, and clears the cookie whatever it holds: a browser
/// whose session already expired must still be able to log out. The audit log learns who it was
/// when the session was still valid.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "logout",
    tag = "identity",
    security(()),
    responses(
        (status = 204, description = "logged out; the session cookie is cleared",
            headers(("Set-Cookie" = String, description = "clears `baton_session`"))),
        (status = 403, description = "a logout from another site's page", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    seen: Option<axum::Extension<crate::audit::Seen>>,
    headers: HeaderMap,
) -> Result<Response> {
    if let (Some(axum::Extension(seen)), Some(credential)) = (seen, auth::Credential::of(&headers))
        && let Ok(Some(caller)) = credential.resolve(&state).await
    {
        seen.set(&caller);
    }
    if let Some(session) = auth::session_cookie(&headers) {
        // Every node forgets who the session was (`callers.rs`). Only a session that was there:
        // anyone may call logout with any cookie, and the announcement makes every WebSocket of
        // the cluster check its rights again.
        if state.tables.delete_session(&token::digest(&session)).await? {
            crate::events::rights_changed(&state).await;
        }
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// The caller.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    operation_id = "get_me",
    tag = "identity",
    responses((status = 200, description = "the caller", body = User))
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    Ok(Json(model::user(&state.tables.user(caller.id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// `PATCH /users/me`: a new password, given the current one. Every other session of the caller
/// ends; the one making the change stays. A wrong current password is a 400 naming the field
/// (the caller is authenticated and may change their password; one field of the input is
/// wrong), and counts as a failed login, so a stolen session cannot guess the password
/// faster than the login form could.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    operation_id = "change_my_password",
    tag = "identity",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "changed; the caller's other sessions have ended", body = User),
        (status = 429, description = "too many wrong current passwords", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds to wait"))),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Json<Value>> {
    check_password(&body.password)?;
    let user = state.tables.user(caller.id).await?;
    state.throttle.check(&user.username, addr).await?;
    if !state.hasher.verify(body.current_password, Some(user.password_hash)).await? {
        state.throttle.failed(&user.username, addr).await;
        return Err(Error::field("current_password", "is not your current password"));
    }
    state.throttle.succeeded(&user.username).await;
    let changes = UserChanges {
        password_hash: Some(state.hasher.hash(body.password).await?),
        keep_session: own_session(&headers),
        ..Default::default()
    };
    let user = state.tables.update_user(caller.id, changes).await?;
    crate::events::rights_changed(&state).await;
    tracing::info!(user_id = user.id, "password changed; other sessions ended");
    Ok(Json(model::user(&user)))
}

/// The digest of the session the request came with, if any.
fn own_session(headers: &HeaderMap) -> Option<String> {
    auth::session_cookie(headers).map(|s| token::digest(&s))
}

/// Every user (administrators).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "list_users",
    tag = "identity",
    params(ListQuery),
    responses((status = 200, description = "a page of users", body = Page<User>))
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    caller.require_admin()?;
    let limit = page_limit(q.limit)?;
    let users = state.tables.users(q.before, limit as u64 + 1).await?;
    Ok(Json(Page::of(users, limit, |u| u.id, |u| model::user(&u))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
pub struct NewUserBody {
    /// 1 to 100 letters, digits or `- _ . @`.
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,100}$")]
    username: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    /// A global administrator; `false` unless given.
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

/// Adds a user (administrators).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    operation_id = "create_user",
    tag = "identity",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "the new user", body = User),
        (status = 409, description = "the user name is taken", body = ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    check_username(&body.username)?;
    check_password(&body.password)?;
    let password_hash = state.hasher.hash(body.password).await?;
    let new = NewUser { username: &body.username, password_hash: &password_hash, admin: body.admin };
    let user = state.tables.create_user(new).await?;
    Ok((StatusCode::CREATED, Json(model::user(&user))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// 1 to 100 letters, digits or `- _ . @`.
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,100}$")]
    username: Option<String>,
    /// 8 to 1024 characters; the user's sessions end.
    #[schema(min_length = 8, max_length = 1024)]
    password: Option<String>,
    admin: Option<bool>,
}

/// An administrator's change of a user; a new password ends that user's sessions (all of them,
/// or all but the caller's own when administrators change their own password this way).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{uid}",
    operation_id = "update_user",
    tag = "identity",
    params(UserPath),
    request_body = UserPatch,
    responses(
        (status = 200, description = "the changed user", body = User),
        (status = 409, description = "the user name is taken, or administrators would take away their own rights",
            body = ErrorBody),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(uid): ApiPath<i64>,
    headers: HeaderMap,
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
            Some(state.hasher.hash(pw).await?)
        }
        None => None,
    };
    let keep_session = if uid == caller.id { own_session(&headers) } else { None };
    let changes = UserChanges { username: body.username, password_hash, admin: body.admin, keep_session };
    let user = state.tables.update_user(uid, changes).await?;
    crate::events::rights_changed(&state).await;
    Ok(Json(model::user(&user)))
}

/// Deletes a user (administrators).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{uid}",
    operation_id = "delete_user",
    tag = "identity",
    params(UserPath),
    responses(
        (status = 204, description = "deleted"),
        (status = 409, description = "administrators cannot delete themselves", body = ErrorBody),
    )
)]
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
    crate::events::rights_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
