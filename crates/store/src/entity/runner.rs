//! `runners`: registered runners, their digest-only secret and lease (`last_seen`). Owner: dispatcher.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runners")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub labels: String,
    pub capacity: i32,
    pub secret_hash: String,
    pub paused: bool,
    pub revoked: bool,
    pub version: String,
    pub node_id: Option<String>,
    pub last_seen: Option<i64>,
    pub created_at: i64,
    /// Set when registered with a project-scoped token: the runner serves only that project.
    pub project_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
