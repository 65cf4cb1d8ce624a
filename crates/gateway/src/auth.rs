//! Who is calling: a session cookie (set by login) or an API token (`Authorization: Bearer`).
//! Passwords are argon2id hashes; tokens and session ids are looked up by their SHA-256 digest.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use baton_core::token;
use baton_store::entity::{api_token, user};

use crate::access::Role;

use crate::AppState;
use crate::error::{Error, Result};

pub const SESSION_COOKIE: &str = "baton_session";

/// The authenticated caller: a user, and the API token they came with, if any. What they may do
/// is decided in `access.rs`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: i64,
    pub username: String,
    /// The user is an administrator. Their rights apply through a session or an unnarrowed
    /// token only (see [`Caller::is_admin`]).
    pub user_admin: bool,
    pub token: Option<TokenScope>,
}

/// The API token a request came with, and what it was narrowed to.
#[derive(Debug, Clone)]
pub struct TokenScope {
    pub id: i64,
    /// The only project the token sees.
    pub project_id: Option<i64>,
    /// The highest role the token acts with.
    pub role: Option<Role>,
}

impl Caller {
    /// Whether the caller acts as an administrator: an administrator not narrowed by a token.
    pub fn is_admin(&self) -> bool {
        self.user_admin && self.token.as_ref().is_none_or(|t| t.project_id.is_none() && t.role.is_none())
    }

    /// `role`, lowered to what the caller's token allows.
    pub fn cap(&self, role: Role) -> Role {
        match self.token.as_ref().and_then(|t| t.role) {
            Some(cap) => role.min(cap),
            None => role,
        }
    }

    /// `Ok` if the caller acts as an administrator.
    pub fn require_admin(&self) -> Result<()> {
        crate::access::admin(self)
    }

    fn of(u: user::Model, token: Option<&api_token::Model>) -> Caller {
        let token = token.map(|t| TokenScope {
            id: t.id,
            project_id: t.project_id,
            // A role this version does not know narrows to the weakest, never to nothing.
            role: t.role.as_deref().map(|r| Role::parse(r).unwrap_or(Role::Viewer)),
        });
        Caller { id: u.id, username: u.username, user_admin: u.admin, token }
    }
}

/// What a request proves who it is with.
#[derive(Clone)]
pub enum Credential {
    /// An API token (`Authorization: Bearer`, or `?token=` on the WebSocket).
    Token(String),
    /// A session id from the login cookie.
    Session(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Token(_) => "Token(********)",
            Credential::Session(_) => "Session(********)",
        })
    }
}

impl Credential {
    /// The bearer token, else the session cookie, of a request.
    pub fn of(headers: &axum::http::HeaderMap) -> Option<Credential> {
        let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match bearer {
            Some(t) => Some(Credential::Token(t.trim().to_owned())),
            None => session_cookie(headers).map(Credential::Session),
        }
    }

    /// Who this credential is now; `None` once it no longer is anybody (revoked, expired, logged
    /// out). The answer may come from this node's memory of the last second (`callers.rs`).
    pub async fn resolve(&self, state: &AppState) -> Result<Option<Caller>> {
        let digest = self.digest();
        // Remembered by kind and digest, never by the secret itself.
        let key = match self {
            Credential::Token(_) => format!("t:{digest}"),
            Credential::Session(_) => format!("s:{digest}"),
        };
        if let Some(caller) = state.callers.get(&key, state.coord.healthy()) {
            return Ok(Some(caller));
        }
        let generation = state.callers.generation();
        let found = self.read(state, &digest).await?;
        Ok(found.map(|(caller, expires)| {
            state.callers.keep(key, caller.clone(), expires, generation);
            caller
        }))
    }

    /// Who this credential is, read from SQL (a WebSocket checking its rights again after they
    /// changed must not hear this node's memory of them).
    pub async fn resolve_afresh(&self, state: &AppState) -> Result<Option<Caller>> {
        Ok(self.read(state, &self.digest()).await?.map(|(caller, _)| caller))
    }

    /// The caller and when the credential expires (Unix ms), if it is anybody.
    async fn read(&self, state: &AppState, digest: &str) -> Result<Option<(Caller, Option<i64>)>> {
        Ok(match self {
            Credential::Token(_) => {
                state.tables.token_user(digest).await?.map(|(u, t)| (Caller::of(u, Some(&t)), t.expires_at))
            }
            Credential::Session(_) => {
                state.tables.session_user(digest).await?.map(|(u, at)| (Caller::of(u, None), Some(at)))
            }
        })
    }

    /// The SHA-256 digest the credential is stored and looked up by.
    fn digest(&self) -> String {
        match self {
            Credential::Token(t) | Credential::Session(t) => token::digest(t),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller> {
        let caller = match Credential::of(&parts.headers) {
            Some(c) => c.resolve(state).await?,
            None => None,
        };
        let caller = caller.ok_or_else(Error::unauthenticated)?;
        // The audit log records who made a write; it learns it here.
        if let Some(seen) = parts.extensions.get::<crate::audit::Seen>() {
            seen.set(&caller);
        }
        Ok(caller)
    }
}

/// The session id from the `Cookie` header, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// An argon2id hash of `password` in PHC string form.
pub fn hash_password(password: &str) -> std::result::Result<String, String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so the answer takes as long as for a
/// wrong password and does not reveal which user names exist.
pub static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&token::generate("")).unwrap_or_default());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", &DUMMY_HASH));
    }
}
