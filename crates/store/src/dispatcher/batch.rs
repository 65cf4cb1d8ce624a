//! Reports of many attempts applied together (group commit). A runner's stream hands over the
//! reports that arrived together, and they are stored in one statement (started) or one
//! transaction (finished) instead of one round trip, or one transaction, each. Fencing is that of
//! a single report: the whole (task, epoch, runner) is in every compare-and-set, and a report
//! that does not hold is answered as it would be alone.

use std::collections::HashMap;

use baton_core::TaskStatus;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::reports::{Accepted, Fence, Finish};
use super::tasks::{AttemptEnd, active, attempt_row, changing_at};
use super::{Tables, locked};
use crate::entity::{task, task_attempt};
use crate::error::on_deadlock;
use crate::{Result, end_tx, now_ms};

/// A `started` report: the attempt and when its runner started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub fence: Fence,
    pub at: i64,
}

impl Tables {
    /// [`report_started`](Tables::report_started) of each of `starts`, answered in order. On
    /// PostgreSQL and SQLite the accepted ones are one UPDATE … RETURNING, on MariaDB one
    /// transaction that locks the rows first (`locked`); a report the batch does not apply (a
    /// repeat, or not the runner's) takes the one-report path.
    pub async fn report_started_many(&self, starts: &[Start]) -> Result<Vec<Option<Accepted>>> {
        let mut applied: HashMap<i64, task::Model> = HashMap::new();
        if starts.len() > 1 && !self.conn().support_returning() {
            let rows = on_deadlock(|| async {
                let tx = self.write_tx().await?;
                let result = locked::starts(&tx, starts).await;
                end_tx(tx, result).await
            })
            .await?;
            applied = rows.into_iter().flatten().map(|r| (r.id, r)).collect();
        } else if starts.len() > 1 {
            let mut at = CaseStatement::new();
            for s in starts {
                at = at.case(task::Column::Id.eq(s.fence.task_id), s.at);
            }
            let fences = starts.iter().map(|s| (s.fence.task_id, s.fence.epoch, s.fence.runner_id));
            let update = changing_at(now_ms())
                .col_expr(task::Column::Status, Expr::value(TaskStatus::Running.as_str()))
                .col_expr(task::Column::StartedAt, at.into())
                .filter(task::Column::Status.eq(TaskStatus::Assigned.as_str()))
                .filter(
                    Expr::tuple([
                        Expr::col(task::Column::Id),
                        Expr::col(task::Column::Epoch),
                        Expr::col(task::Column::RunnerId),
                    ])
                    .in_tuples(fences),
                );
            let rows = on_deadlock(|| async { Ok(update.clone().exec_with_returning(self.conn()).await?) }).await?;
            applied = rows.into_iter().map(|r| (r.id, r)).collect();
        }
        // A row goes to the report whose fence it holds (not just its task's first report): a
        // stale report of a task beside a current one is answered alone, as it would be.
        let mut out = Vec::with_capacity(starts.len());
        for s in starts {
            let id = s.fence.task_id;
            let held = if applied.get(&id).is_some_and(|row| s.fence.holds(row)) { applied.remove(&id) } else { None };
            match held {
                Some(row) => out.push(Some(Accepted { row: Some(row) })),
                None => out.push(self.report_started(s.fence, s.at).await?),
            }
        }
        Ok(out)
    }

    /// [`claim_row`](Tables::claim_row) of each `(row as read, runner)`, answered in order: the
    /// row as the claim left it, or `None` for a task changed since it was read (claimed by
    /// another node, cancelled). On PostgreSQL and SQLite the claims are one UPDATE … RETURNING,
    /// fenced per row by its version exactly as one claim is; on MariaDB they are one transaction
    /// that locks the rows, checks them and claims with one UPDATE (`locked`). Nodes
    /// that read the same queue head then lose one statement between them, not one per task.
    pub async fn claim_rows(&self, claims: &[(&task::Model, i64)]) -> Result<Vec<Option<task::Model>>> {
        if claims.len() < 2 {
            let mut out = Vec::with_capacity(claims.len());
            for (t, runner_id) in claims {
                out.push(self.claim_row(t, *runner_id).await?);
            }
            return Ok(out);
        }
        if !self.conn().support_returning() {
            return on_deadlock(|| async {
                let tx = self.write_tx().await?;
                let result = locked::claims(&tx, claims).await;
                end_tx(tx, result).await
            })
            .await;
        }
        let mut runner = CaseStatement::new();
        for (t, runner_id) in claims {
            runner = runner.case(task::Column::Id.eq(t.id), *runner_id);
        }
        let now = now_ms();
        let update = changing_at(now)
            .col_expr(task::Column::Status, Expr::value(TaskStatus::Assigned.as_str()))
            .col_expr(task::Column::Epoch, Expr::col(task::Column::Epoch).add(1))
            .col_expr(task::Column::RunnerId, runner.into())
            .col_expr(task::Column::AssignedAt, Expr::value(now))
            .filter(task::Column::Status.eq(TaskStatus::Queued.as_str()))
            .filter(
                Expr::tuple([Expr::col(task::Column::Id), Expr::col(task::Column::Version)])
                    .in_tuples(claims.iter().map(|(t, _)| (t.id, t.version))),
            );
        // Nodes claiming overlapping pages lock rows in whatever order their plans take: a
        // deadlock victim runs again, and then finds those rows changed.
        let rows = on_deadlock(|| async { Ok(update.clone().exec_with_returning(self.conn()).await?) }).await?;
        let mut claimed: HashMap<i64, task::Model> = rows.into_iter().map(|r| (r.id, r)).collect();
        Ok(claims.iter().map(|(t, _)| claimed.remove(&t.id)).collect())
    }

    /// [`report_finished`](Tables::report_finished) of each of `ends`, answered in order, in one
    /// transaction. Each end is checked against its fence as it would be alone; those that hold
    /// are written with one UPDATE per distinct outcome and their attempts' history rows with one
    /// INSERT. On PostgreSQL and SQLite the UPDATE is the compare-and-set and hands the rows
    /// back (RETURNING), so only ends it refused are read; MariaDB reads and locks the rows first.
    pub async fn report_finished_many(&self, ends: &[Finish]) -> Result<Vec<Option<Accepted>>> {
        let answers = self.finish_all(ends).await?;
        Ok(answers.into_iter().map(|a| a.unwrap_or(None)).collect())
    }

    /// The transaction behind [`report_finished`](Tables::report_finished) and
    /// [`report_finished_many`](Tables::report_finished_many): per end, its answer, or `Err` with
    /// the task's id when the task no longer exists.
    pub(super) async fn finish_all(&self, ends: &[Finish]) -> Result<Vec<std::result::Result<Option<Accepted>, i64>>> {
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        let returning = self.conn().support_returning();
        on_deadlock(|| async {
            let tx = self.write_tx().await?;
            let result = if returning { finish_returning(&tx, ends).await } else { locked::finishes(&tx, ends).await };
            end_tx(tx, result).await
        })
        .await
    }
}

pub(super) type Answers = Vec<std::result::Result<Option<Accepted>, i64>>;

/// What an end writes into the task: its status, exit code and error.
type Outcome = (TaskStatus, Option<i32>, Option<String>);

/// The distinct outcomes among `ends`, each with the indexes of its ends.
pub(super) fn outcomes(ends: &[Finish]) -> Vec<(Outcome, Vec<usize>)> {
    let mut groups: Vec<(Outcome, Vec<usize>)> = Vec::new();
    for (i, f) in ends.iter().enumerate() {
        let key = (f.status, f.exit_code, f.error.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups
}

/// `assigned | running → <outcome>` at `now`, for the rows the caller names.
fn ending(now: i64, outcome: &Outcome) -> sea_orm::UpdateMany<task::Entity> {
    ending_of_locked(now, outcome).filter(task::Column::Status.is_in(active()))
}

/// [`ending`] without its check of the state, for rows locked and checked already.
pub(super) fn ending_of_locked(now: i64, (status, exit_code, error): &Outcome) -> sea_orm::UpdateMany<task::Entity> {
    changing_at(now)
        .col_expr(task::Column::Status, Expr::value(status.as_str()))
        .col_expr(task::Column::ExitCode, Expr::value(*exit_code))
        .col_expr(task::Column::Error, Expr::value(error.clone()))
        .col_expr(task::Column::FinishedAt, Expr::value(now))
}

/// How an end that changed nothing is answered, from the task as it is: not the runner's to
/// make (`None`), or a repeat of a recorded end.
pub(super) fn unchanged(f: &Finish, t: &task::Model) -> Option<Accepted> {
    if !f.fence.holds(t) || active().contains(&t.status.as_str()) {
        return None;
    }
    // Already ended at this epoch: a repeated report. A queued task is held by nobody.
    (t.status != TaskStatus::Queued.as_str()).then(Accepted::default)
}

pub(super) fn end_of(f: &Finish, now: i64) -> AttemptEnd {
    AttemptEnd {
        status: f.status,
        exit_code: f.exit_code,
        error: f.error.clone(),
        finished_at: now,
        node_id: f.node_id.clone(),
    }
}

/// PostgreSQL and SQLite: the fenced UPDATE … RETURNING of each outcome applies what holds; the
/// attempt's history comes from the returned row (the columns it needs are not changed by the end).
async fn finish_returning(tx: &sea_orm::DatabaseTransaction, ends: &[Finish]) -> Result<Answers> {
    let now = now_ms();
    let mut applied: HashMap<i64, task::Model> = HashMap::new();
    for (outcome, members) in outcomes(ends) {
        let fences = members.iter().map(|&i| {
            let f = ends[i].fence;
            (f.task_id, f.epoch, f.runner_id)
        });
        let update = ending(now, &outcome).filter(
            Expr::tuple([
                Expr::col(task::Column::Id),
                Expr::col(task::Column::Epoch),
                Expr::col(task::Column::RunnerId),
            ])
            .in_tuples(fences),
        );
        applied.extend(update.exec_with_returning(tx).await?.into_iter().map(|r| (r.id, r)));
    }
    // The ends the UPDATEs refused: read once to tell a repeat from a stranger's report.
    let refused: Vec<i64> = ends.iter().map(|f| f.fence.task_id).filter(|id| !applied.contains_key(id)).collect();
    let mut current: HashMap<i64, task::Model> = if refused.is_empty() {
        HashMap::new()
    } else {
        task::Entity::find()
            .filter(task::Column::Id.is_in(refused))
            .all(tx)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect()
    };
    let mut answers = Vec::with_capacity(ends.len());
    let mut attempts = Vec::new();
    for f in ends {
        let id = f.fence.task_id;
        // An end named twice is applied once; the second finds the row it left: a repeat.
        if let Some(row) = applied.remove(&id) {
            attempts.push(attempt_row(tx, &row, end_of(f, now)).await?);
            current.insert(id, row.clone());
            answers.push(Ok(Some(Accepted { row: Some(row) })));
        } else {
            answers.push(current.get(&id).map(|t| unchanged(f, t)).ok_or(id));
        }
    }
    if !attempts.is_empty() {
        task_attempt::Entity::insert_many(attempts).exec_without_returning(tx).await?;
    }
    Ok(answers)
}
