//! `task_attempts`: the history of a task's ended attempts. Owner: dispatcher.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: i64,
    pub attempt: i32,
    pub epoch: i64,
    pub runner_id: Option<i64>,
    /// The node the runner's stream was on when the attempt ended (none before migration 9).
    pub node_id: Option<String>,
    pub status: String,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
