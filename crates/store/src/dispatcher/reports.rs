//! What runners report about their tasks: started, finished, given up. Runners are outside the
//! trust boundary, so every report is fenced by the whole [`Fence`] — the task, its current
//! epoch and the runner it is assigned to — in the same compare-and-set that applies it: a
//! runner can never act on another runner's task, whatever ids and epochs it sends.

use baton_core::TaskStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::Tables;
use super::tasks::{Attempt, Lost, changing, lose_in};
use crate::entity::task;
use crate::error::on_deadlock;
use crate::{Error, Result, end_tx};

/// The attempt a runner reports on: accepted only while the task is at `epoch` and assigned to
/// `runner_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub task_id: i64,
    pub epoch: i64,
    pub runner_id: i64,
}

impl Fence {
    /// Whether `t` is this attempt.
    pub fn holds(&self, t: &task::Model) -> bool {
        t.id == self.task_id && t.epoch == self.epoch && t.runner_id == Some(self.runner_id)
    }
}

/// How an attempt ended, as reported by its runner.
#[derive(Debug, Clone)]
pub struct Finish {
    pub fence: Fence,
    pub status: TaskStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The node whose stream reported the end, for the attempt's history (none: the runner's
    /// node as the runners table has it, read in the transaction).
    pub node_id: Option<String>,
}

/// A report the store accepted, with the task's row as the report left it when that is known
/// without another read (a change notice carries it to the event subscribers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub row: Option<task::Model>,
}

impl Tables {
    /// `assigned → running`. Repeating it (a re-sent report, even after the end was recorded) is
    /// harmless and still `true`; `false` means the report is not this runner's to make (a stale
    /// epoch, or another runner's task).
    pub async fn mark_running(&self, f: Fence, started_at: i64) -> Result<bool> {
        Ok(self.report_started(f, started_at).await?.is_some())
    }

    /// [`mark_running`](Tables::mark_running), with the row it left: PostgreSQL and SQLite hand
    /// it back from the UPDATE (RETURNING); MariaDB has no UPDATE … RETURNING, so there it is
    /// known only for a repeat, which reads it.
    pub async fn report_started(&self, f: Fence, started_at: i64) -> Result<Option<Accepted>> {
        let update = changing()
            .col_expr(task::Column::Status, Expr::value(TaskStatus::Running.as_str()))
            .col_expr(task::Column::StartedAt, Expr::value(started_at))
            .filter(task::Column::Id.eq(f.task_id))
            .filter(task::Column::Status.eq(TaskStatus::Assigned.as_str()))
            .filter(task::Column::Epoch.eq(f.epoch))
            .filter(task::Column::RunnerId.eq(f.runner_id));
        if self.conn().support_returning() {
            let rows = on_deadlock(|| async { Ok(update.clone().exec_with_returning(self.conn()).await?) }).await?;
            if let Some(row) = rows.into_iter().next() {
                return Ok(Some(Accepted { row: Some(row) }));
            }
        } else if self.update_retrying(update).await?.rows_affected == 1 {
            return Ok(Some(Accepted::default()));
        }
        let t = task::Entity::find_by_id(f.task_id).one(self.conn()).await?;
        Ok(t.filter(|t| f.holds(t) && TaskStatus::parse(&t.status).is_some_and(|s| s != TaskStatus::Queued))
            .map(|t| Accepted { row: Some(t) }))
    }

    /// `assigned | running → <final>` and the attempt's history row, in one transaction. Returns
    /// `false` if the report is not the runner's to make. A repeated report of an already
    /// recorded end returns `true`.
    pub async fn finish(&self, f: Finish) -> Result<bool> {
        Ok(self.report_finished(f).await?.is_some())
    }

    /// [`finish`](Tables::finish), with the row it left (a repeat comes without it).
    pub async fn report_finished(&self, f: Finish) -> Result<Option<Accepted>> {
        let task_id = f.fence.task_id;
        match self.finish_all(&[f]).await?.pop() {
            Some(Ok(answer)) => Ok(answer),
            _ => Err(Error::NotFound(format!("task {task_id}"))),
        }
    }

    /// The runner gave the attempt up (it shut down, or was told to stop): like
    /// [`lose`](Tables::lose), but only if the attempt is the runner's.
    pub async fn give_up(&self, f: Fence, reason: &str) -> Result<Lost> {
        on_deadlock(|| async {
            let tx = self.write_tx().await?;
            let attempt = Attempt { task_id: f.task_id, epoch: f.epoch, runner_id: Some(f.runner_id) };
            let result = lose_in(&tx, attempt, reason).await;
            end_tx(tx, result).await
        })
        .await
    }
}
