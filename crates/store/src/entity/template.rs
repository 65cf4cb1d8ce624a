//! `templates`: a script and how to run it. `env`, `secrets` and `labels` are JSON. Owner: gateway.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub script: String,
    pub shell: String,
    pub env: String,
    pub secrets: String,
    pub labels: String,
    pub timeout_seconds: i32,
    pub max_attempts: i32,
    pub max_parallel: i32,
    pub priority: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
