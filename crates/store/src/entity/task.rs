//! `tasks`: one row per task, its state and fencing epoch. `spec` is the JSON [`crate::TaskSpec`]
//! fixed at creation. Owner: dispatcher.
use sea_orm::entity::prelude::*;

/// Serializable: a change notice carries the row as it was written, so subscribers need not
/// read it back.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    pub status: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub epoch: i64,
    pub priority: i32,
    pub runner_id: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub schedule_id: Option<i64>,
    pub created_by: Option<i64>,
    pub cancel_requested: bool,
    pub spec: String,
    pub template_max_parallel: i32,
    pub project_max_parallel: i32,
    pub created_at: i64,
    pub assigned_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// One more on every change of the row, in the same statement.
    pub version: i64,
    /// When the row last changed (ms).
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
