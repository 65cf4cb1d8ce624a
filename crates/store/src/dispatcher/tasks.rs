//! The fenced task state machine.
//!
//! `queued → assigned → running → succeeded | failed | cancelled | timed_out`, and from
//! `assigned`/`running` to `lost`, which becomes `queued` again (a new attempt) while attempts are
//! left. Each function is one compare-and-set: it reports `false`/`Stale` when the row was not in
//! the expected state and epoch, and the caller must then treat its view as out of date.

use std::collections::HashMap;

use baton_core::TaskStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::Tables;
use crate::entity::{runner, task, task_attempt};
use crate::error::on_deadlock;
use crate::{Error, Result, TaskSpec, end_tx, now_ms};

/// A task to create.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub project_id: i64,
    pub template_id: i64,
    pub spec: TaskSpec,
    pub priority: i32,
    pub max_attempts: i32,
    pub template_max_parallel: i32,
    pub project_max_parallel: i32,
    pub schedule_id: Option<i64>,
    pub created_by: Option<i64>,
}

/// What [`Tables::lose`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Queued again as a new attempt.
    Requeued,
    /// No attempt left: the task ended as `lost`.
    Ended,
    /// It was being cancelled anyway: it ended as `cancelled`.
    Cancelled,
    /// The task was not in that state and epoch any more.
    Stale,
}

/// What [`Tables::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// It was queued and is now `cancelled`.
    Cancelled,
    /// Its runner must stop it; the runner's report will end it.
    Requested { runner_id: Option<i64>, epoch: i64 },
}

/// `queued → assigned` at `epoch` to `runner_id`, as one compare-and-set.
fn claim_update(task_id: i64, epoch: i64, runner_id: i64, now: i64) -> sea_orm::UpdateMany<task::Entity> {
    changing_at(now)
        .col_expr(task::Column::Status, Expr::value(TaskStatus::Assigned.as_str()))
        .col_expr(task::Column::Epoch, Expr::value(epoch + 1))
        .col_expr(task::Column::RunnerId, Expr::value(runner_id))
        .col_expr(task::Column::AssignedAt, Expr::value(now))
        .filter(task::Column::Id.eq(task_id))
        .filter(task::Column::Status.eq(TaskStatus::Queued.as_str()))
        .filter(task::Column::Epoch.eq(epoch))
}

/// The row of a new queued task (first attempt, epoch 0).
pub(crate) fn new_task_row(new: NewTask) -> task::ActiveModel {
    task::ActiveModel {
        project_id: Set(new.project_id),
        template_id: Set(new.template_id),
        status: Set(TaskStatus::Queued.as_str().to_owned()),
        attempt: Set(1),
        max_attempts: Set(new.max_attempts.max(1)),
        epoch: Set(0),
        priority: Set(new.priority),
        cancel_requested: Set(false),
        spec: Set(new.spec.to_json()),
        template_max_parallel: Set(new.template_max_parallel),
        project_max_parallel: Set(new.project_max_parallel),
        schedule_id: Set(new.schedule_id),
        created_by: Set(new.created_by),
        created_at: Set(now_ms()),
        version: Set(1),
        updated_at: Set(now_ms()),
        ..Default::default()
    }
}

/// An update of task rows that bumps each row's version and stamps the time of the change, in the
/// same statement: every change of a task goes through it.
pub(crate) fn changing() -> sea_orm::UpdateMany<task::Entity> {
    changing_at(now_ms())
}

/// [`changing`] at a given time, for a caller that builds the new row itself.
pub(crate) fn changing_at(now: i64) -> sea_orm::UpdateMany<task::Entity> {
    task::Entity::update_many()
        .col_expr(task::Column::Version, sea_orm::sea_query::ExprTrait::add(Expr::col(task::Column::Version), 1))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
}

/// `t` as one [`changing_at`] `now` leaves it (the caller applies its own columns).
pub(crate) fn changed(t: &task::Model, now: i64) -> task::Model {
    task::Model { version: t.version + 1, updated_at: now, ..t.clone() }
}

pub(super) fn active() -> [&'static str; 2] {
    [TaskStatus::Assigned.as_str(), TaskStatus::Running.as_str()]
}

impl Tables {
    /// Inserts a queued task. Tasks submitted together share one INSERT … RETURNING on
    /// PostgreSQL, SQLite and MariaDB; each caller still returns only once its row is committed.
    pub async fn create_task(&self, new: NewTask) -> Result<task::Model> {
        if self.insert_returning() {
            return self.creating.write(new).await;
        }
        Ok(new_task_row(new).insert(self.conn()).await?)
    }

    pub async fn task(&self, id: i64) -> Result<task::Model> {
        task::Entity::find_by_id(id).one(self.conn()).await?.ok_or_else(|| Error::NotFound(format!("task {id}")))
    }

    /// The tasks with these ids that still exist, in no particular order.
    pub async fn tasks_by_ids(&self, ids: &[i64]) -> Result<Vec<task::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(task::Entity::find().filter(task::Column::Id.is_in(ids.to_vec())).all(self.conn()).await?)
    }

    /// The head of the queue: highest priority first, oldest first within a priority.
    pub async fn queue_head(&self, limit: u64) -> Result<Vec<task::Model>> {
        self.queue_page(None, limit).await
    }

    /// The queue in placement order after `after` (the (priority, id) of the last task of the
    /// previous page), so a pass can look past tasks no runner can take.
    pub async fn queue_page(&self, after: Option<(i32, i64)>, limit: u64) -> Result<Vec<task::Model>> {
        let mut q = task::Entity::find().filter(task::Column::Status.eq(TaskStatus::Queued.as_str()));
        if let Some((priority, id)) = after {
            q =
                q.filter(sea_orm::Condition::any().add(task::Column::Priority.lt(priority)).add(
                    sea_orm::Condition::all().add(task::Column::Priority.eq(priority)).add(task::Column::Id.gt(id)),
                ));
        }
        Ok(q.order_by_desc(task::Column::Priority).order_by_asc(task::Column::Id).limit(limit).all(self.conn()).await?)
    }

    /// How many tasks are queued, in the whole cluster (`baton_queue_depth`).
    pub async fn queue_depth(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(task::Entity::find().filter(task::Column::Status.eq(TaskStatus::Queued.as_str())).count(self.conn()).await?)
    }

    /// How many tasks are assigned or running, per template and per project, for enforcing
    /// `max_parallel`.
    pub async fn active_counts(&self) -> Result<(HashMap<i64, i64>, HashMap<i64, i64>)> {
        let rows: Vec<(i64, i64)> = task::Entity::find()
            .select_only()
            .column(task::Column::TemplateId)
            .column(task::Column::ProjectId)
            .filter(task::Column::Status.is_in(active()))
            .into_tuple()
            .all(self.conn())
            .await?;
        let (mut per_template, mut per_project) = (HashMap::new(), HashMap::new());
        for (template, project) in rows {
            *per_template.entry(template).or_insert(0) += 1;
            *per_project.entry(project).or_insert(0) += 1;
        }
        Ok((per_template, per_project))
    }

    /// `queued → assigned` to `runner_id`, bumping the epoch. Returns the new epoch, or `None` if
    /// another dispatcher claimed (or someone cancelled) the task first.
    pub async fn claim(&self, task_id: i64, epoch: i64, runner_id: i64) -> Result<Option<i64>> {
        let claim = claim_update(task_id, epoch, runner_id, now_ms());
        // Dispatchers of several nodes race for the same queue head: InnoDB may pick one of two
        // such claims as a deadlock victim.
        let res = self.update_retrying(claim).await?;
        Ok((res.rows_affected == 1).then_some(epoch + 1))
    }

    /// [`claim`](Tables::claim) of the queued row `t` as it was read, returning the row as the
    /// claim left it. The claim also requires `t`'s version, so the row is known exactly without
    /// reading it back; a task changed since it was read is left for the next pass.
    pub async fn claim_row(&self, t: &task::Model, runner_id: i64) -> Result<Option<task::Model>> {
        let now = now_ms();
        let claim = claim_update(t.id, t.epoch, runner_id, now).filter(task::Column::Version.eq(t.version));
        let res = self.update_retrying(claim).await?;
        if res.rows_affected != 1 {
            return Ok(None);
        }
        Ok(Some(task::Model {
            status: TaskStatus::Assigned.as_str().to_owned(),
            epoch: t.epoch + 1,
            runner_id: Some(runner_id),
            assigned_at: Some(now),
            ..changed(t, now)
        }))
    }

    /// Ends the current attempt because its runner vanished or gave it up: queued again while
    /// attempts are left, else `lost` (or `cancelled` if a cancel was pending). The epoch is
    /// bumped either way, fencing out the old runner.
    pub async fn lose(&self, task_id: i64, epoch: i64, reason: &str) -> Result<Lost> {
        on_deadlock(|| async {
            let tx = self.write_tx().await?;
            let result = lose_in(&tx, Attempt { task_id, epoch, runner_id: None }, reason).await;
            end_tx(tx, result).await
        })
        .await
    }

    /// `assigned → queued` for an assignment its runner provably never received: the attempt was
    /// never used, so it is not counted and leaves no history row. A pending cancel ends the task
    /// as `cancelled` instead. The epoch is bumped either way.
    pub async fn unassign(&self, task_id: i64, epoch: i64) -> Result<Lost> {
        let back = |status: TaskStatus| {
            changing()
                .col_expr(task::Column::Status, Expr::value(status.as_str()))
                .col_expr(task::Column::Epoch, Expr::value(epoch + 1))
                .filter(task::Column::Id.eq(task_id))
                .filter(task::Column::Epoch.eq(epoch))
                .filter(task::Column::Status.eq(TaskStatus::Assigned.as_str()))
        };
        let requeue = back(TaskStatus::Queued)
            .col_expr(task::Column::RunnerId, Expr::value(Option::<i64>::None))
            .col_expr(task::Column::AssignedAt, Expr::value(Option::<i64>::None))
            .filter(task::Column::CancelRequested.eq(false));
        let requeued = self.update_retrying(requeue).await?;
        if requeued.rows_affected == 1 {
            return Ok(Lost::Requeued);
        }
        let cancel = back(TaskStatus::Cancelled)
            .col_expr(task::Column::FinishedAt, Expr::value(now_ms()))
            .col_expr(task::Column::Error, Expr::value("cancelled before its runner received it"))
            .filter(task::Column::CancelRequested.eq(true));
        let cancelled = self.update_retrying(cancel).await?;
        Ok(if cancelled.rows_affected == 1 { Lost::Cancelled } else { Lost::Stale })
    }

    /// Cancels a queued task at once, or marks an active one for its runner to stop. Finished
    /// tasks are a conflict.
    pub async fn cancel(&self, task_id: i64) -> Result<Cancel> {
        let queued = changing()
            .col_expr(task::Column::Status, Expr::value(TaskStatus::Cancelled.as_str()))
            .col_expr(task::Column::CancelRequested, Expr::value(true))
            .col_expr(task::Column::FinishedAt, Expr::value(now_ms()))
            .filter(task::Column::Id.eq(task_id))
            .filter(task::Column::Status.eq(TaskStatus::Queued.as_str()));
        let res = self.update_retrying(queued).await?;
        if res.rows_affected == 1 {
            return Ok(Cancel::Cancelled);
        }
        let active = changing()
            .col_expr(task::Column::CancelRequested, Expr::value(true))
            .filter(task::Column::Id.eq(task_id))
            .filter(task::Column::Status.is_in(active()));
        let res = self.update_retrying(active).await?;
        let t = self.task(task_id).await?;
        if res.rows_affected == 1 || (t.cancel_requested && !TaskStatus::parse(&t.status).is_some_and(|s| s.is_final()))
        {
            return Ok(Cancel::Requested { runner_id: t.runner_id, epoch: t.epoch });
        }
        Err(Error::Conflict(format!("task {task_id} already finished ({})", t.status)))
    }

    /// The tasks a runner holds (assigned or running).
    pub async fn tasks_of_runner(&self, runner_id: i64) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::RunnerId.eq(runner_id))
            .filter(task::Column::Status.is_in(active()))
            .all(self.conn())
            .await?)
    }

    /// Tasks of the given runners still `assigned` (never reported started) since before
    /// `cutoff` (ms), for the check of undelivered assignments.
    pub async fn assigned_before(&self, runner_ids: &[i64], cutoff: i64) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::RunnerId.is_in(runner_ids.iter().copied()))
            .filter(task::Column::Status.eq(TaskStatus::Assigned.as_str()))
            .filter(task::Column::AssignedAt.lt(cutoff))
            .all(self.conn())
            .await?)
    }

    /// Active tasks of the given runners whose cancellation has not been carried out yet.
    pub async fn cancel_pending(&self, runner_ids: Vec<i64>) -> Result<Vec<task::Model>> {
        if runner_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(task::Entity::find()
            .filter(task::Column::Status.is_in(active()))
            .filter(task::Column::CancelRequested.eq(true))
            .filter(task::Column::RunnerId.is_in(runner_ids))
            .all(self.conn())
            .await?)
    }

    /// Active tasks whose runner has not been seen since `cutoff` (or no longer exists).
    pub async fn expired_leases(&self, cutoff: i64) -> Result<Vec<task::Model>> {
        let tasks = task::Entity::find().filter(task::Column::Status.is_in(active())).all(self.conn()).await?;
        if tasks.is_empty() {
            return Ok(tasks);
        }
        let fresh: Vec<i64> = runner::Entity::find()
            .select_only()
            .column(runner::Column::Id)
            .filter(runner::Column::LastSeen.gte(cutoff))
            .into_tuple()
            .all(self.conn())
            .await?;
        Ok(tasks.into_iter().filter(|t| !t.runner_id.is_some_and(|r| fresh.contains(&r))).collect())
    }

    /// Deletes every task of a project with its attempts and logs.
    pub async fn purge_project(&self, project_id: i64) -> Result<u64> {
        let ids: Vec<i64> = task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .filter(task::Column::ProjectId.eq(project_id))
            .into_tuple()
            .all(self.conn())
            .await?;
        for chunk in ids.chunks(500) {
            self.delete_tasks(chunk).await?;
        }
        Ok(ids.len() as u64)
    }
}

/// Which attempt [`lose_in`] ends: the task at `epoch`, and when a runner gave it up, only if it
/// is that runner's.
pub(super) struct Attempt {
    pub task_id: i64,
    pub epoch: i64,
    pub runner_id: Option<i64>,
}

pub(super) async fn lose_in(tx: &sea_orm::DatabaseTransaction, a: Attempt, reason: &str) -> Result<Lost> {
    let Attempt { task_id, epoch, runner_id } = a;
    let Some(t) = task::Entity::find_by_id(task_id).lock_exclusive().one(tx).await? else {
        return Ok(Lost::Stale);
    };
    if t.epoch != epoch || !active().contains(&t.status.as_str()) || runner_id.is_some_and(|r| t.runner_id != Some(r)) {
        return Ok(Lost::Stale);
    }
    let now = now_ms();
    let outcome = if t.cancel_requested {
        Lost::Cancelled
    } else if t.attempt < t.max_attempts {
        Lost::Requeued
    } else {
        Lost::Ended
    };
    let mut q = changing()
        .col_expr(task::Column::Epoch, Expr::value(epoch + 1))
        .filter(task::Column::Id.eq(task_id))
        .filter(task::Column::Epoch.eq(epoch))
        .filter(task::Column::Status.is_in(active()));
    q = match outcome {
        Lost::Requeued => q
            .col_expr(task::Column::Status, Expr::value(TaskStatus::Queued.as_str()))
            .col_expr(task::Column::Attempt, Expr::value(t.attempt + 1))
            .col_expr(task::Column::RunnerId, Expr::value(Option::<i64>::None))
            .col_expr(task::Column::AssignedAt, Expr::value(Option::<i64>::None))
            .col_expr(task::Column::StartedAt, Expr::value(Option::<i64>::None)),
        Lost::Cancelled | Lost::Ended => {
            let status = if outcome == Lost::Cancelled { TaskStatus::Cancelled } else { TaskStatus::Lost };
            q.col_expr(task::Column::Status, Expr::value(status.as_str()))
                .col_expr(task::Column::Error, Expr::value(reason))
                .col_expr(task::Column::FinishedAt, Expr::value(now))
        }
        Lost::Stale => unreachable!("decided above"),
    };
    if q.exec(tx).await?.rows_affected != 1 {
        return Ok(Lost::Stale);
    }
    let end = AttemptEnd {
        status: TaskStatus::Lost,
        exit_code: None,
        error: Some(reason.to_owned()),
        finished_at: now,
        node_id: None,
    };
    record_attempt(tx, &t, end).await?;
    Ok(outcome)
}

/// How an attempt ended, for its history row.
pub(super) struct AttemptEnd {
    pub status: TaskStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub finished_at: i64,
    /// The node the attempt's runner reported through, when the caller knows it.
    pub node_id: Option<String>,
}

/// Writes the history row of the attempt `t` (as read before it ended) with the node its runner
/// is connected to. The node is read in the same transaction, so it is the runner's node at the
/// moment the attempt ended: the node whose stream reported the end, or, for a lost attempt, the
/// last one the runner said hello to.
pub(super) async fn record_attempt(tx: &sea_orm::DatabaseTransaction, t: &task::Model, end: AttemptEnd) -> Result<()> {
    let row = attempt_row(tx, t, end).await?;
    // Without reading the row back: nobody needs it (on MariaDB that read is a SELECT more).
    task_attempt::Entity::insert(row).exec_without_returning(tx).await?;
    Ok(())
}

/// The history row [`record_attempt`] writes.
pub(super) async fn attempt_row(
    tx: &sea_orm::DatabaseTransaction,
    t: &task::Model,
    end: AttemptEnd,
) -> Result<task_attempt::ActiveModel> {
    let node_id = match (end.node_id, t.runner_id) {
        (Some(node), _) => Some(node),
        (None, Some(r)) => runner::Entity::find_by_id(r)
            .select_only()
            .column(runner::Column::NodeId)
            .into_tuple::<Option<String>>()
            .one(tx)
            .await?
            .flatten(),
        (None, None) => None,
    };
    Ok(task_attempt::ActiveModel {
        task_id: Set(t.id),
        attempt: Set(t.attempt),
        epoch: Set(t.epoch),
        runner_id: Set(t.runner_id),
        node_id: Set(node_id),
        status: Set(end.status.as_str().to_owned()),
        exit_code: Set(end.exit_code),
        error: Set(end.error),
        started_at: Set(t.started_at),
        finished_at: Set(end.finished_at),
        ..Default::default()
    })
}
