//! Projects, their members, secrets and templates.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::Role;

/// A project, with the caller's role in it.
#[derive(ToSchema)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Tasks of the project that may run at once; 0 = unlimited.
    pub max_parallel: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// What the caller may do in it (an administrator is an owner everywhere).
    pub role: Role,
}

/// A member of a project.
#[derive(ToSchema)]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
}

/// A project secret: its name and times, never its value.
#[derive(ToSchema)]
pub struct Secret {
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// The secret whose value was replaced.
#[derive(ToSchema)]
pub struct SecretName {
    pub name: String,
}

/// A new template: `name` and `script` are required, the rest as in `TemplatePatch`.
#[derive(ToSchema)]
pub struct NewTemplate {
    /// 1 to 100 characters.
    #[schema(min_length = 1, pattern = r"\S")]
    pub name: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub script: String,
    /// `bash` (the default) or `sh`.
    pub shell: Option<String>,
    /// Variable names: letters, digits and `_`, not starting with a digit; not `BATON_…`.
    pub env: Option<BTreeMap<String, String>>,
    /// Names of project secrets its tasks receive as variables (each must exist when a task is made).
    pub secrets: Option<Vec<String>>,
    /// A runner needs every one of these labels (letters, digits and `- _ . : =`, at most 64).
    pub labels: Option<Vec<String>>,
    /// `null` or 0 (the default) = no timeout.
    #[schema(minimum = 0, maximum = 604_800)]
    pub timeout_seconds: Option<i32>,
    /// 1 (the default) to 100.
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<i32>,
    /// 0 (unlimited, the default) to 100000.
    #[schema(minimum = 0, maximum = 100_000)]
    pub max_parallel: Option<i32>,
    /// -1000 to 1000, 0 by default.
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
}

/// A script and how to run it.
#[derive(ToSchema)]
pub struct Template {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub script: String,
    /// `bash` or `sh`.
    pub shell: String,
    /// Environment variables of its tasks.
    pub env: BTreeMap<String, String>,
    /// Names of project secrets its tasks receive as environment variables.
    pub secrets: Vec<String>,
    /// A runner must have every one of these labels to run its tasks.
    pub labels: Vec<String>,
    /// `null`: no timeout.
    pub timeout_seconds: Option<i32>,
    pub max_attempts: i32,
    /// Its tasks that may run at once; 0 = unlimited.
    pub max_parallel: i32,
    pub priority: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}
