//! Appending log chunks, fenced by (task, epoch, runner) and idempotent on (task, first sequence
//! number).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::Tables;
use super::reports::Fence;
use crate::entity::{task, task_log_chunk};
use crate::error::on_deadlock;
use crate::spec::encode_lines;
use crate::{Error, LogLine, Result, end_tx};

/// What happened to a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Stored,
    /// The same chunk was stored before (a re-send after a lost acknowledgement).
    Duplicate,
    /// The task has moved to another epoch or is another runner's: the sender does not hold it.
    Stale,
}

impl Tables {
    /// Stores consecutive lines of the attempt `f`.
    pub async fn append_log(&self, f: Fence, lines: &[LogLine]) -> Result<Appended> {
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return Ok(Appended::Duplicate);
        };
        // The epoch check and the insert are one transaction holding the task row, so a chunk of
        // an attempt that is being ended cannot slip in after the next attempt started.
        on_deadlock(|| self.append_once(f, first.seq, last.seq, lines)).await
    }

    async fn append_once(&self, f: Fence, first: i64, last: i64, lines: &[LogLine]) -> Result<Appended> {
        let tx = self.write_tx().await?;
        let current: Option<(i64, Option<i64>)> = task::Entity::find_by_id(f.task_id)
            .select_only()
            .column(task::Column::Epoch)
            .column(task::Column::RunnerId)
            .lock_shared()
            .into_tuple()
            .one(&tx)
            .await?;
        if current != Some((f.epoch, Some(f.runner_id))) {
            return end_tx(tx, Ok(Appended::Stale)).await;
        }
        let row = task_log_chunk::ActiveModel {
            task_id: Set(f.task_id),
            seq_first: Set(first),
            seq_last: Set(last),
            data: Set(encode_lines(lines)),
            ..Default::default()
        };
        // Without reading the row back: nobody needs it (on MariaDB that read is a SELECT more).
        match task_log_chunk::Entity::insert(row).exec_without_returning(&tx).await.map_err(Error::from) {
            Ok(_) => end_tx(tx, Ok(Appended::Stored)).await,
            Err(e) if e.is_unique_violation() => {
                // PostgreSQL has aborted the transaction: roll it back, the chunk is there.
                let _ = tx.rollback().await;
                Ok(Appended::Duplicate)
            }
            Err(e) => end_tx(tx, Err(e)).await,
        }
    }

    /// The sequence number the next attempt's first line gets: one past the last stored.
    pub async fn next_log_seq(&self, task_id: i64) -> Result<i64> {
        let last: Option<Option<i64>> = task_log_chunk::Entity::find()
            .select_only()
            .column_as(task_log_chunk::Column::SeqLast.max(), "m")
            .filter(task_log_chunk::Column::TaskId.eq(task_id))
            .into_tuple()
            .one(self.conn())
            .await?;
        Ok(last.flatten().map_or(1, |s| s + 1))
    }
}
