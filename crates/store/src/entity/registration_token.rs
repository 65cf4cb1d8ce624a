//! `registration_tokens`: tokens runners trade for an identity, stored as digests. Owner: dispatcher.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token_hash: String,
    pub labels: String,
    pub project_id: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    /// How many runners it may create; 0 = any number until it expires.
    pub max_uses: i32,
    /// How many runners it created.
    pub uses: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
