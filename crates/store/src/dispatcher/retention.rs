//! Retention: finished tasks older than an age, or beyond a count per template, are deleted with
//! their attempts and logs. Always in small batches, each its own short transaction, so the
//! sweep never holds locks on the hot tables for long; the caller paces the batches.

use baton_core::TaskStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Tables;
use crate::entity::{task, task_attempt, task_log_chunk};
use crate::{Result, end_tx};

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Finished before this (Unix ms) is deleted; `None` = no age limit.
    pub finished_after: Option<i64>,
    /// Per template, this many newest finished tasks are kept; `None` = no count limit.
    pub per_template: Option<u64>,
}

fn finished() -> [&'static str; 5] {
    [TaskStatus::Succeeded, TaskStatus::Failed, TaskStatus::Cancelled, TaskStatus::TimedOut, TaskStatus::Lost]
        .map(TaskStatus::as_str)
}

impl Tables {
    /// Deletes up to `batch` tasks that `keep` lets go. Returns how many; fewer than `batch`
    /// means nothing more is due now.
    pub async fn retain_batch(&self, keep: Keep, batch: u64) -> Result<u64> {
        let mut ids: Vec<i64> = Vec::new();
        if let Some(after) = keep.finished_after {
            ids = task::Entity::find()
                .select_only()
                .column(task::Column::Id)
                .filter(task::Column::Status.is_in(finished()))
                .filter(task::Column::FinishedAt.lt(after))
                .order_by_asc(task::Column::Id)
                .limit(batch)
                .into_tuple()
                .all(self.conn())
                .await?;
        }
        if let Some(n) = keep.per_template
            && (ids.len() as u64) < batch
        {
            ids.extend(self.beyond_count(n, batch - ids.len() as u64).await?);
        }
        ids.sort_unstable();
        ids.dedup();
        self.delete_tasks(&ids).await?;
        Ok(ids.len() as u64)
    }

    /// Finished tasks beyond the `n` newest of their template, oldest first, at most `limit`.
    async fn beyond_count(&self, n: u64, limit: u64) -> Result<Vec<i64>> {
        // Templates with more finished tasks than kept; few rows, grouped in the database.
        let crowded: Vec<(i64, i64)> = task::Entity::find()
            .select_only()
            .column(task::Column::TemplateId)
            .column_as(task::Column::Id.count(), "n")
            .filter(task::Column::Status.is_in(finished()))
            .group_by(task::Column::TemplateId)
            .having(sea_orm::sea_query::ExprTrait::gt(task::Column::Id.count(), n as i64))
            .into_tuple()
            .all(self.conn())
            .await?;
        let mut out = Vec::new();
        for (template_id, _) in crowded {
            let rows: Vec<i64> = task::Entity::find()
                .select_only()
                .column(task::Column::Id)
                .filter(task::Column::TemplateId.eq(template_id))
                .filter(task::Column::Status.is_in(finished()))
                .order_by_desc(task::Column::Id)
                .offset(n)
                .limit(limit - out.len() as u64)
                .into_tuple()
                .all(self.conn())
                .await?;
            out.extend(rows);
            if out.len() as u64 >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes tasks with their attempts and log chunks, in one transaction.
    pub(crate) async fn delete_tasks(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx().await?;
        let result = async {
            task_log_chunk::Entity::delete_many()
                .filter(task_log_chunk::Column::TaskId.is_in(ids.to_vec()))
                .exec(&tx)
                .await?;
            task_attempt::Entity::delete_many()
                .filter(task_attempt::Column::TaskId.is_in(ids.to_vec()))
                .exec(&tx)
                .await?;
            task::Entity::delete_many().filter(task::Column::Id.is_in(ids.to_vec())).exec(&tx).await?;
            Ok(())
        }
        .await;
        end_tx(tx, result).await
    }
}
