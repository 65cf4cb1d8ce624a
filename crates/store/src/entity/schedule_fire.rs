//! `schedule_fires`: one row per (schedule, due time) that fired or was skipped; unique, which is
//! what makes each due time fire once across the cluster. Written by the dispatcher in the
//! transaction that creates (or skips) the task.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedule_fires")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub schedule_id: i64,
    pub due_at: i64,
    /// `fired` or `skipped`.
    pub status: String,
    pub task_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
