//! Queries on the table the scheduler owns: schedules. (Their fires are written by the
//! dispatcher with their tasks; see `dispatcher::fires`.) Reads for other services are in
//! `views`.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::entity::schedule;
use crate::error::found;
use crate::{Result, now_ms};

/// What a schedule says, validated by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleFields {
    pub template_id: i64,
    pub cron: Option<String>,
    pub timezone: String,
    pub run_at: Option<i64>,
    pub enabled: bool,
    pub catch_up: String,
    pub overlap: String,
}

impl ScheduleFields {
    pub fn of(s: &schedule::Model) -> ScheduleFields {
        ScheduleFields {
            template_id: s.template_id,
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            run_at: s.run_at,
            enabled: s.enabled,
            catch_up: s.catch_up.clone(),
            overlap: s.overlap.clone(),
        }
    }

    fn apply(self, row: &mut schedule::ActiveModel) {
        row.template_id = Set(self.template_id);
        row.cron = Set(self.cron);
        row.timezone = Set(self.timezone);
        row.run_at = Set(self.run_at);
        row.enabled = Set(self.enabled);
        row.catch_up = Set(self.catch_up);
        row.overlap = Set(self.overlap);
        // Due times before a change never fire: the schedule, as changed, starts now.
        row.updated_at = Set(now_ms());
    }
}

/// The scheduler's write access to its table.
#[derive(Debug, Clone)]
pub struct Tables(crate::Store);

impl Tables {
    pub fn new(store: crate::Store) -> Tables {
        Tables(store)
    }

    pub async fn create_schedule(
        &self,
        project_id: i64,
        fields: ScheduleFields,
        created_by: Option<i64>,
    ) -> Result<schedule::Model> {
        let mut row = schedule::ActiveModel {
            project_id: Set(project_id),
            created_by: Set(created_by),
            created_at: Set(now_ms()),
            ..Default::default()
        };
        fields.apply(&mut row);
        Ok(row.insert(self.0.conn()).await?)
    }

    pub async fn update_schedule(&self, project_id: i64, id: i64, fields: ScheduleFields) -> Result<schedule::Model> {
        let existing = self.0.schedule(project_id, id).await?;
        let mut row: schedule::ActiveModel = existing.into();
        fields.apply(&mut row);
        Ok(row.update(self.0.conn()).await?)
    }

    pub async fn delete_schedule(&self, project_id: i64, id: i64) -> Result<()> {
        let res = schedule::Entity::delete_many()
            .filter(schedule::Column::Id.eq(id))
            .filter(schedule::Column::ProjectId.eq(project_id))
            .exec(self.0.conn())
            .await?;
        found(res.rows_affected, || format!("schedule {id} in project {project_id}"))
    }

    /// Turns a one-shot schedule off after it fired. Idempotent: every node that saw the fire
    /// may do it.
    pub async fn disable_schedule(&self, id: i64) -> Result<()> {
        schedule::Entity::update_many()
            .col_expr(schedule::Column::Enabled, Expr::value(false))
            .filter(schedule::Column::Id.eq(id))
            .exec(self.0.conn())
            .await?;
        Ok(())
    }
}

impl std::ops::Deref for Tables {
    type Target = crate::Store;
    fn deref(&self) -> &crate::Store {
        &self.0
    }
}
