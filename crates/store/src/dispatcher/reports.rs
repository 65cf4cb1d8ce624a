//! What runners report about their tasks: started, finished, given up. Runners are outside the
//! trust boundary, so every report is fenced by the whole [`Fence`] — the task, its current
//! epoch and the runner it is assigned to — in the same compare-and-set that applies it: a
//! runner can never act on another runner's task, whatever ids and epochs it sends.

use baton_core::TaskStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::Tables;
use super::tasks::{Attempt, AttemptEnd, Lost, active, changing, lose_in, record_attempt};
use crate::entity::task;
use crate::error::on_deadlock;
use crate::{Error, Result, end_tx, now_ms};

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

impl Tables {
    /// `assigned → running`. Repeating it (a re-sent report, even after the end was recorded) is
    /// harmless and still `true`; `false` means the report is not this runner's to make (a stale
    /// epoch, or another runner's task).
    pub async fn mark_running(&self, f: Fence, started_at: i64) -> Result<bool> {
        let update = changing()
            .col_expr(task::Column::Status, Expr::value(TaskStatus::Running.as_str()))
            .col_expr(task::Column::StartedAt, Expr::value(started_at))
            .filter(task::Column::Id.eq(f.task_id))
            .filter(task::Column::Status.eq(TaskStatus::Assigned.as_str()))
            .filter(task::Column::Epoch.eq(f.epoch))
            .filter(task::Column::RunnerId.eq(f.runner_id));
        let res = self.update_retrying(update).await?;
        if res.rows_affected == 1 {
            return Ok(true);
        }
        let t = task::Entity::find_by_id(f.task_id).one(self.conn()).await?;
        Ok(t.is_some_and(|t| f.holds(&t) && TaskStatus::parse(&t.status).is_some_and(|s| s != TaskStatus::Queued)))
    }

    /// `assigned | running → <final>` and the attempt's history row, in one transaction. Returns
    /// `false` if the report is not the runner's to make. A repeated report of an already
    /// recorded end returns `true`.
    pub async fn finish(&self, f: Finish) -> Result<bool> {
        on_deadlock(|| async {
            let tx = self.write_tx().await?;
            let result = finish_in(&tx, f.clone()).await;
            end_tx(tx, result).await
        })
        .await
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

async fn finish_in(tx: &sea_orm::DatabaseTransaction, f: Finish) -> Result<bool> {
    let fence = f.fence;
    let Some(t) = task::Entity::find_by_id(fence.task_id).lock_exclusive().one(tx).await? else {
        return Err(Error::NotFound(format!("task {}", fence.task_id)));
    };
    if !fence.holds(&t) {
        return Ok(false);
    }
    if !active().contains(&t.status.as_str()) {
        // Already ended at this epoch: a repeated report. A queued task is held by nobody.
        return Ok(t.status != TaskStatus::Queued.as_str());
    }
    let now = now_ms();
    let res = changing()
        .col_expr(task::Column::Status, Expr::value(f.status.as_str()))
        .col_expr(task::Column::ExitCode, Expr::value(f.exit_code))
        .col_expr(task::Column::Error, Expr::value(f.error.clone()))
        .col_expr(task::Column::FinishedAt, Expr::value(now))
        .filter(task::Column::Id.eq(fence.task_id))
        .filter(task::Column::Epoch.eq(fence.epoch))
        .filter(task::Column::RunnerId.eq(fence.runner_id))
        .filter(task::Column::Status.is_in(active()))
        .exec(tx)
        .await?;
    if res.rows_affected != 1 {
        return Ok(false);
    }
    let end =
        AttemptEnd { status: f.status, exit_code: f.exit_code, error: f.error, finished_at: now, node_id: f.node_id };
    record_attempt(tx, &t, end).await?;
    Ok(true)
}
