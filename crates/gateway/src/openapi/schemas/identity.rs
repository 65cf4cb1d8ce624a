//! Users, logins and API tokens.

// Serialize only lets `CreatedToken` flatten `Token`, as its schema does (serde attributes are
// read only beside serde's derive).
use serde::Serialize;
use utoipa::ToSchema;

/// A user account.
#[derive(ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    /// A global administrator.
    pub admin: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The answer to a successful login; the session cookie comes with it.
#[derive(ToSchema)]
pub struct LoggedIn {
    pub user: User,
}

/// One of the caller's API tokens. The secret is shown once, when it is created.
#[derive(Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `null`: it never expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// The only project the token sees, if it was narrowed to one.
    pub project_id: Option<i64>,
    /// The highest role the token acts with, if it was narrowed.
    pub role: Option<Role>,
}

/// A new API token, with its secret (shown this once).
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub fields: Token,
    /// The secret to send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// A role in a project, weakest last.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Manager,
    Runner,
    Viewer,
}
