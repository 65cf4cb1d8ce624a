//! The path parameters of the routes, named as in the route table (`routes/mod.rs`). The
//! handlers read them as tuples; these types only describe them.

use utoipa::IntoParams;

/// `{pid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project's id.
    pub pid: i64,
}

/// `{pid}` and a task's `{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TaskPath {
    /// The project's id.
    pub pid: i64,
    /// The task's id.
    pub id: i64,
}

/// `{pid}` and a template's `{tid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplatePath {
    /// The project's id.
    pub pid: i64,
    /// The template's id.
    pub tid: i64,
}

/// `{pid}` and a schedule's `{sid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SchedulePath {
    /// The project's id.
    pub pid: i64,
    /// The schedule's id.
    pub sid: i64,
}

/// `{pid}` and a member's `{uid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// The project's id.
    pub pid: i64,
    /// The user's id.
    pub uid: i64,
}

/// `{pid}` and a secret's `{name}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SecretPath {
    /// The project's id.
    pub pid: i64,
    /// The secret's name.
    pub name: String,
}

/// A user's `{uid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id.
    pub uid: i64,
}

/// An API token's `{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's id.
    pub id: i64,
}

/// A runner's `{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunnerPath {
    /// The runner's id.
    pub id: i64,
}

/// A node's `{node_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NodePath {
    /// The node's `ha.node_id`.
    pub node_id: String,
}
