//! Tasks created by schedules. The fire row (unique on schedule and due time) and the task are
//! written in one transaction, fire first: a second node trying the same due time blocks on, or
//! fails at, the fire's unique index and creates nothing. So a due time fires at most once, decided
//! by SQL alone.

use baton_core::TaskStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::Tables;
use super::tasks::{NewTask, new_task_row};
use crate::entity::{schedule_fire, task};
use crate::{Result, end_tx, now_ms};

/// The due time being fired.
#[derive(Debug, Clone, Copy)]
pub struct FireKey {
    pub schedule_id: i64,
    pub due_at: i64,
    /// Skip (recording why) while a task of the schedule is unfinished.
    pub skip_if_running: bool,
}

/// What firing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Created(Box<task::Model>),
    /// Another node fired (or skipped) this due time first.
    Already,
    /// Recorded as skipped, with the reason; no task.
    Skipped(String),
}

impl Tables {
    pub async fn create_task_for_fire(&self, new: NewTask, fire: FireKey) -> Result<Fired> {
        let tx = self.write_tx().await?;
        let result = fire_in(&tx, new, fire).await;
        match end_tx(tx, result).await {
            Err(e) if e.is_unique_violation() => Ok(Fired::Already),
            other => other,
        }
    }
}

async fn fire_in(tx: &sea_orm::DatabaseTransaction, new: NewTask, fire: FireKey) -> Result<Fired> {
    let already = schedule_fire::Entity::find()
        .filter(schedule_fire::Column::ScheduleId.eq(fire.schedule_id))
        .filter(schedule_fire::Column::DueAt.eq(fire.due_at))
        .one(tx)
        .await?;
    if already.is_some() {
        return Ok(Fired::Already);
    }
    let unfinished = [TaskStatus::Queued, TaskStatus::Assigned, TaskStatus::Running].map(TaskStatus::as_str);
    let running = if fire.skip_if_running {
        task::Entity::find()
            .filter(task::Column::ScheduleId.eq(fire.schedule_id))
            .filter(task::Column::Status.is_in(unfinished))
            .one(tx)
            .await?
    } else {
        None
    };
    // The unique index decides between nodes racing for this due time: the loser fails here.
    let row = schedule_fire::ActiveModel {
        schedule_id: Set(fire.schedule_id),
        due_at: Set(fire.due_at),
        status: Set(if running.is_some() { "skipped" } else { "fired" }.to_owned()),
        reason: Set(running.as_ref().map(|t| format!("task {} of the previous fire is still {}", t.id, t.status))),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(tx)
    .await?;
    if let Some(reason) = row.reason {
        return Ok(Fired::Skipped(reason));
    }
    let task = new_task_row(new).insert(tx).await?;
    schedule_fire::Entity::update_many()
        .col_expr(schedule_fire::Column::TaskId, Expr::value(task.id))
        .filter(schedule_fire::Column::Id.eq(row.id))
        .exec(tx)
        .await?;
    Ok(Fired::Created(Box::new(task)))
}
