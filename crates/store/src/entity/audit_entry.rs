//! `audit_log`: every write through the API, who made it and from where. Owner: gateway.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub time: i64,
    pub user_id: Option<i64>,
    /// As it was at the time (or as given to a failed login).
    pub username: String,
    pub token_id: Option<i64>,
    pub client_ip: String,
    /// The node that served the request.
    pub node: String,
    /// What was done, such as `template.update`.
    pub action: String,
    /// What it was done to: the request's path.
    pub target: String,
    /// A short description; never a secret value.
    pub detail: String,
    pub project_id: Option<i64>,
    /// The HTTP status of the answer.
    pub status: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
