//! `task_log_chunks`: consecutive log lines of a task, `seq_first..=seq_last`, as a JSON array.
//! Unique on (task_id, seq_first), which makes re-sent chunks harmless. Owner: dispatcher.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_log_chunks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: i64,
    pub seq_first: i64,
    pub seq_last: i64,
    pub data: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
