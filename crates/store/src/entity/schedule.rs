//! `schedules`: cron or one-shot schedules of templates. Owner: scheduler.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// Set for cron schedules; `None` for one-shot ones (`run_at`).
    pub cron: Option<String>,
    pub timezone: String,
    pub run_at: Option<i64>,
    pub enabled: bool,
    /// `latest` or `none`: what happens to due times missed while no node was up.
    pub catch_up: String,
    /// `allow` or `skip`: whether a fire waits for nothing or is skipped while a task of the
    /// schedule is unfinished.
    pub overlap: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    /// Due times before this never fire: a new or changed schedule starts from here.
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
