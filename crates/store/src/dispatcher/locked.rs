//! Batches on MariaDB, which has no `UPDATE … RETURNING`: an UPDATE there cannot say which of
//! its rows it changed, only how many. So a batch reads and locks its rows first (`SELECT … FOR
//! UPDATE`, in id order, so two batches lock the rows they share in the same order), checks each
//! change against its row exactly as the change alone would be checked, and applies those that
//! hold with one UPDATE per kind of change; the rows it leaves are built from the locked ones.
//! Each batch is one transaction: one commit for its tasks instead of one each.
//!
//! The UPDATEs name only the locked rows' ids: rows locked and checked need no other condition,
//! and one on their state could lead MariaDB to the queue index and lock every row of that state.
//! `now` is read once the locks are held, so a change never bears a time before the one it waited
//! for. Id lists and `CASE`s are padded to a power of two (by repeating the last entry, which
//! changes nothing): MariaDB connections keep 100 prepared statements, and one text per batch
//! size would keep pushing the hot ones out.

use std::collections::HashMap;

use baton_core::TaskStatus;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::batch::Start;
use super::reports::{Accepted, Finish};
use super::tasks::{active, attempt_row, changed, changing_at};
use crate::entity::{task, task_attempt};
use crate::{Error, Result, now_ms};

/// `items` with the last one repeated up to the next power of two.
fn padded<T: Clone>(mut items: Vec<T>) -> Vec<T> {
    if let Some(last) = items.last().cloned() {
        items.resize(items.len().next_power_of_two(), last);
    }
    items
}

/// `CASE id WHEN … THEN … END` of `(id, value)` pairs, padded like the id lists.
fn case_by_id(pairs: &[(i64, i64)]) -> CaseStatement {
    padded(pairs.to_vec())
        .into_iter()
        .fold(CaseStatement::new(), |case, (id, value)| case.case(task::Column::Id.eq(id), value))
}

/// The rows of `ids` as they are now, locked until the transaction ends.
async fn lock_rows(tx: &DatabaseTransaction, ids: impl IntoIterator<Item = i64>) -> Result<HashMap<i64, task::Model>> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(task::Entity::find()
        .filter(task::Column::Id.is_in(padded(ids)))
        .order_by_asc(task::Column::Id)
        .lock_exclusive()
        .all(tx)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect())
}

/// Applies `update` to `ids`, each locked and checked by the caller: anything but all of them
/// changed is a bug, and the whole batch is rolled back rather than half applied.
async fn apply(tx: &DatabaseTransaction, update: sea_orm::UpdateMany<task::Entity>, ids: Vec<i64>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let n = ids.len() as u64;
    let res = update.filter(task::Column::Id.is_in(padded(ids))).exec(tx).await?;
    if res.rows_affected != n {
        return Err(Error::Database(format!("{} of {n} locked tasks changed by a batch", res.rows_affected)));
    }
    Ok(())
}

/// Claims of queued rows as they were read (`(row, runner)`), answered in order: the row the
/// claim left, or `None` for a task changed since it was read or named twice.
pub(super) async fn claims(
    tx: &DatabaseTransaction,
    claims: &[(&task::Model, i64)],
) -> Result<Vec<Option<task::Model>>> {
    let current = lock_rows(tx, claims.iter().map(|(t, _)| t.id)).await?;
    let now = now_ms();
    let mut runners = Vec::new();
    let mut ids = Vec::new();
    let mut out = Vec::with_capacity(claims.len());
    for (read, runner_id) in claims {
        let row = current
            .get(&read.id)
            .filter(|c| c.status == TaskStatus::Queued.as_str() && c.version == read.version && !ids.contains(&c.id));
        let Some(c) = row else {
            out.push(None);
            continue;
        };
        runners.push((c.id, *runner_id));
        ids.push(c.id);
        out.push(Some(task::Model {
            status: TaskStatus::Assigned.as_str().to_owned(),
            epoch: c.epoch + 1,
            runner_id: Some(*runner_id),
            assigned_at: Some(now),
            ..changed(c, now)
        }));
    }
    let update = changing_at(now)
        .col_expr(task::Column::Status, Expr::value(TaskStatus::Assigned.as_str()))
        .col_expr(task::Column::Epoch, Expr::col(task::Column::Epoch).add(1))
        .col_expr(task::Column::RunnerId, case_by_id(&runners).into())
        .col_expr(task::Column::AssignedAt, Expr::value(now));
    apply(tx, update, ids).await?;
    Ok(out)
}

/// `started` reports, answered in order: the row each left, or `None` for one that does not hold
/// as it stands (not the runner's, or a repeat), which the caller answers alone.
pub(super) async fn starts(tx: &DatabaseTransaction, starts: &[Start]) -> Result<Vec<Option<task::Model>>> {
    let current = lock_rows(tx, starts.iter().map(|s| s.fence.task_id)).await?;
    let now = now_ms();
    let mut at = Vec::new();
    let mut ids = Vec::new();
    let mut out = Vec::with_capacity(starts.len());
    for s in starts {
        let row = current
            .get(&s.fence.task_id)
            .filter(|c| s.fence.holds(c) && c.status == TaskStatus::Assigned.as_str() && !ids.contains(&c.id));
        let Some(c) = row else {
            out.push(None);
            continue;
        };
        at.push((c.id, s.at));
        ids.push(c.id);
        out.push(Some(task::Model {
            status: TaskStatus::Running.as_str().to_owned(),
            started_at: Some(s.at),
            ..changed(c, now)
        }));
    }
    let update = changing_at(now)
        .col_expr(task::Column::Status, Expr::value(TaskStatus::Running.as_str()))
        .col_expr(task::Column::StartedAt, case_by_id(&at).into());
    apply(tx, update, ids).await?;
    Ok(out)
}

/// Ends of attempts, answered in order as [`super::batch`]'s `finish_all` answers them.
pub(super) async fn finishes(tx: &DatabaseTransaction, ends: &[Finish]) -> Result<super::batch::Answers> {
    let mut current = lock_rows(tx, ends.iter().map(|f| f.fence.task_id)).await?;
    let now = now_ms();
    let mut answers = Vec::with_capacity(ends.len());
    let mut changes: Vec<(usize, i64)> = Vec::new();
    let mut attempts = Vec::new();
    for (i, f) in ends.iter().enumerate() {
        let Some(t) = current.get(&f.fence.task_id) else {
            answers.push(Err(f.fence.task_id));
            continue;
        };
        if !f.fence.holds(t) || !active().contains(&t.status.as_str()) {
            answers.push(Ok(super::batch::unchanged(f, t)));
            continue;
        }
        let row = task::Model {
            status: f.status.as_str().to_owned(),
            exit_code: f.exit_code,
            error: f.error.clone(),
            finished_at: Some(now),
            ..changed(t, now)
        };
        attempts.push(attempt_row(tx, t, super::batch::end_of(f, now)).await?);
        changes.push((i, t.id));
        current.insert(t.id, row.clone());
        answers.push(Ok(Some(Accepted { row: Some(row) })));
    }
    for (outcome, members) in super::batch::outcomes(ends) {
        let ids: Vec<i64> = changes.iter().filter(|(i, _)| members.contains(i)).map(|(_, id)| *id).collect();
        apply(tx, super::batch::ending_of_locked(now, &outcome), ids).await?;
    }
    if !attempts.is_empty() {
        task_attempt::Entity::insert_many(attempts).exec_without_returning(tx).await?;
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::padded;

    #[test]
    fn id_lists_are_padded_to_a_power_of_two_with_the_last_id() {
        assert_eq!(padded(Vec::<i64>::new()), Vec::<i64>::new());
        assert_eq!(padded(vec![7]), [7]);
        assert_eq!(padded(vec![1, 2, 3]), [1, 2, 3, 3]);
        assert_eq!(padded(vec![1, 2, 3, 4]), [1, 2, 3, 4]);
        assert_eq!(padded((1..=9).collect::<Vec<i64>>()).len(), 16);
        assert_eq!(padded(vec![(1, 10), (2, 20), (3, 30)]), [(1, 10), (2, 20), (3, 30), (3, 30)]);
    }
}
