//! Read-only queries for other services than the owner: the API's task reads, attempt histories
//! and log pages, schedules and their fires, templates to run. Nothing here writes.

use baton_core::TaskStatus;
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition};
use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef};

use crate::entity::{runner, task, task_attempt, task_log_chunk};
/// How a stored template reads (parsing only; writes stay with the gateway).
pub use crate::gateway::templates::TemplateFields;
use crate::spec::decode_lines;
use crate::{Error, LogLine, Result, Store};

/// Filters of a task listing.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub template_id: Option<i64>,
    /// Only tasks with a smaller id (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: u64,
}

/// An ended attempt of a task, with the name of its runner (`None` when the runner row is gone
/// or the attempt had no runner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptView {
    pub attempt: task_attempt::Model,
    pub runner_name: Option<String>,
}

/// A page of a task's log.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// Whether more stored lines follow this page.
    pub more: bool,
}

impl Store {
    /// A task of a project; one of another project is "not found".
    pub async fn project_task(&self, project_id: i64, id: i64) -> Result<task::Model> {
        task::Entity::find_by_id(id)
            .filter(task::Column::ProjectId.eq(project_id))
            .one(self.conn())
            .await?
            .ok_or_else(|| Error::NotFound(format!("task {id} in project {project_id}")))
    }

    /// The tasks of `ids` that exist in project `project_id`, in one read (a live-event
    /// subscriber reads every task a burst of notices names at once).
    pub async fn project_tasks_by_ids(&self, project_id: i64, ids: &[i64]) -> Result<Vec<task::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(task::Entity::find()
            .filter(task::Column::ProjectId.eq(project_id))
            .filter(task::Column::Id.is_in(ids.iter().copied()))
            .all(self.conn())
            .await?)
    }

    /// A task of any project, if it exists (live events find the project of a log topic).
    pub async fn find_task(&self, id: i64) -> Result<Option<task::Model>> {
        Ok(task::Entity::find_by_id(id).one(self.conn()).await?)
    }

    /// Up to `limit` tasks of a project changed at or after `since` (ms), in the order of their
    /// last change, continuing after `after` (the (time, id) of the last one of the previous
    /// page): a live-event subscriber coming back catches up with these.
    pub async fn tasks_changed_since(
        &self,
        project_id: i64,
        since: i64,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<Vec<task::Model>> {
        let mut q = task::Entity::find()
            .filter(task::Column::ProjectId.eq(project_id))
            .filter(task::Column::UpdatedAt.gte(since))
            .order_by_asc(task::Column::UpdatedAt)
            .order_by_asc(task::Column::Id)
            .limit(limit);
        if let Some((t, id)) = after {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(task::Column::UpdatedAt.gt(t))
                    .add(sea_orm::Condition::all().add(task::Column::UpdatedAt.eq(t)).add(task::Column::Id.gt(id))),
            );
        }
        Ok(q.all(self.conn()).await?)
    }

    /// A project's tasks, newest first.
    pub async fn project_tasks(&self, project_id: i64, f: &TaskFilter) -> Result<Vec<task::Model>> {
        let mut q = task::Entity::find()
            .filter(task::Column::ProjectId.eq(project_id))
            .order_by_desc(task::Column::Id)
            .limit(f.limit);
        if let Some(st) = f.status {
            q = q.filter(task::Column::Status.eq(st.as_str()));
        }
        if let Some(t) = f.template_id {
            q = q.filter(task::Column::TemplateId.eq(t));
        }
        if let Some(b) = f.before {
            q = q.filter(task::Column::Id.lt(b));
        }
        Ok(q.all(self.conn()).await?)
    }

    /// Queued tasks as `(id, priority)`, by id after `after_id`: the queue reconciler pages
    /// through them to refill the coordination queue.
    pub async fn queued_tasks(&self, after_id: i64, limit: u64) -> Result<Vec<(i64, i32)>> {
        Ok(task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .column(task::Column::Priority)
            .filter(task::Column::Status.eq(TaskStatus::Queued.as_str()))
            .filter(task::Column::Id.gt(after_id))
            .order_by_asc(task::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(self.conn())
            .await?)
    }

    /// How many of a project's tasks are queued, assigned or running.
    pub async fn unfinished_tasks(&self, project_id: i64) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        let unfinished = [TaskStatus::Queued, TaskStatus::Assigned, TaskStatus::Running].map(TaskStatus::as_str);
        Ok(task::Entity::find()
            .filter(task::Column::ProjectId.eq(project_id))
            .filter(task::Column::Status.is_in(unfinished))
            .count(self.conn())
            .await?)
    }

    /// A project's secrets (sealed), by name.
    pub async fn project_secrets(&self, project_id: i64) -> Result<Vec<crate::entity::project_secret::Model>> {
        use crate::entity::project_secret;
        Ok(project_secret::Entity::find()
            .filter(project_secret::Column::ProjectId.eq(project_id))
            .order_by_asc(project_secret::Column::Name)
            .all(self.conn())
            .await?)
    }

    /// Runners that are not revoked, newest first, below the cursor `before`; only those of
    /// `projects` when given.
    pub async fn runners_page(
        &self,
        projects: Option<&[i64]>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<runner::Model>> {
        let mut q = runner::Entity::find()
            .filter(runner::Column::Revoked.eq(false))
            .order_by_desc(runner::Column::Id)
            .limit(limit);
        if let Some(projects) = projects {
            q = q.filter(runner::Column::ProjectId.is_in(projects.iter().copied()));
        }
        if let Some(before) = before {
            q = q.filter(runner::Column::Id.lt(before));
        }
        Ok(q.all(self.conn()).await?)
    }

    /// Runners that are not revoked, oldest first.
    pub async fn runners(&self) -> Result<Vec<runner::Model>> {
        Ok(runner::Entity::find()
            .filter(runner::Column::Revoked.eq(false))
            .order_by_asc(runner::Column::Id)
            .all(self.conn())
            .await?)
    }

    /// A runner that is not revoked.
    pub async fn active_runner(&self, id: i64) -> Result<runner::Model> {
        runner::Entity::find_by_id(id)
            .filter(runner::Column::Revoked.eq(false))
            .one(self.conn())
            .await?
            .ok_or_else(|| Error::NotFound(format!("runner {id}")))
    }

    /// How many tasks each runner holds (assigned or running).
    pub async fn running_per_runner(&self) -> Result<std::collections::HashMap<i64, i64>> {
        let active = [TaskStatus::Assigned.as_str(), TaskStatus::Running.as_str()];
        let rows: Vec<Option<i64>> = task::Entity::find()
            .select_only()
            .column(task::Column::RunnerId)
            .filter(task::Column::Status.is_in(active))
            .into_tuple()
            .all(self.conn())
            .await?;
        let mut out = std::collections::HashMap::new();
        for r in rows.into_iter().flatten() {
            *out.entry(r).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// A task's ended attempts, newest first, with attempt numbers below `before` (the cursor of
    /// the previous page). Attempt numbers identify them: each recorded end either queues the
    /// task again as the next attempt or ends the task, so no number is recorded twice.
    pub async fn task_attempts(&self, task_id: i64, before: Option<i32>, limit: u64) -> Result<Vec<AttemptView>> {
        let mut q = task_attempt::Entity::find()
            .filter(task_attempt::Column::TaskId.eq(task_id))
            .order_by_desc(task_attempt::Column::Attempt)
            .order_by_desc(task_attempt::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            q = q.filter(task_attempt::Column::Attempt.lt(before));
        }
        let rows = q.all(self.conn()).await?;
        // The names in a second query rather than a join: a page names a handful of runners.
        let mut ids: Vec<i64> = rows.iter().filter_map(|a| a.runner_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let names: std::collections::HashMap<i64, String> = if ids.is_empty() {
            Default::default()
        } else {
            runner::Entity::find()
                .select_only()
                .column(runner::Column::Id)
                .column(runner::Column::Name)
                .filter(runner::Column::Id.is_in(ids))
                .into_tuple::<(i64, String)>()
                .all(self.conn())
                .await?
                .into_iter()
                .collect()
        };
        Ok(rows
            .into_iter()
            .map(|attempt| {
                let runner_name = attempt.runner_id.and_then(|r| names.get(&r).cloned());
                AttemptView { attempt, runner_name }
            })
            .collect())
    }

    /// Up to `limit` lines with sequence numbers above `after`, in order.
    pub async fn log_page(&self, task_id: i64, after: i64, limit: usize) -> Result<LogPage> {
        self.log_page_from(task_id, after, limit, Vec::new()).await
    }

    /// A task's status and the first `limit` lines of its log after `after`, in one read when
    /// the page is short (a follower that must know both: once the task is final, every line
    /// of it is stored). `None` when the task does not exist.
    pub async fn log_page_and_status(
        &self,
        task_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Option<(String, LogPage)>> {
        let chunks: RelationDef = task_log_chunk::Entity::belongs_to(task::Entity)
            .from(task_log_chunk::Column::TaskId)
            .to(task::Column::Id)
            .into();
        let chunks = chunks.rev().on_condition(move |_, chunk| {
            Expr::col((chunk, task_log_chunk::Column::SeqLast)).gt(after).into_condition()
        });
        let rows: Vec<(String, Option<String>)> = task::Entity::find_by_id(task_id)
            .select_only()
            .column(task::Column::Status)
            .column(task_log_chunk::Column::Data)
            .join(JoinType::LeftJoin, chunks)
            .order_by_asc(task_log_chunk::Column::SeqFirst)
            .limit(CHUNKS)
            .into_tuple()
            .all(self.conn())
            .await?;
        let Some(status) = rows.first().map(|(s, _)| s.clone()) else { return Ok(None) };
        let data: Vec<String> = rows.into_iter().filter_map(|(_, d)| d).collect();
        let mut page = Page { lines: Vec::new(), cursor: after, limit };
        if page.take(&data)? {
            return Ok(Some((status, LogPage { lines: page.lines, more: true })));
        }
        if data.len() < CHUNKS as usize {
            // Every chunk after `after` was in that read.
            return Ok(Some((status, LogPage { lines: page.lines, more: false })));
        }
        let rest = self.log_page_from(task_id, page.cursor, limit, page.lines).await?;
        Ok(Some((status, rest)))
    }

    /// [`log_page`](Store::log_page) after `after`, following `lines` already read.
    async fn log_page_from(&self, task_id: i64, after: i64, limit: usize, lines: Vec<LogLine>) -> Result<LogPage> {
        let mut page = Page { lines, cursor: after, limit };
        // Chunks hold many lines each; read a few at a time until the page is full.
        loop {
            let data: Vec<String> = task_log_chunk::Entity::find()
                .select_only()
                .column(task_log_chunk::Column::Data)
                .filter(task_log_chunk::Column::TaskId.eq(task_id))
                .filter(task_log_chunk::Column::SeqLast.gt(page.cursor))
                .order_by_asc(task_log_chunk::Column::SeqFirst)
                .limit(CHUNKS)
                .into_tuple()
                .all(self.conn())
                .await?;
            if data.is_empty() {
                return Ok(LogPage { lines: page.lines, more: false });
            }
            if page.take(&data)? {
                return Ok(LogPage { lines: page.lines, more: true });
            }
        }
    }
}

/// Log chunks per read: chunks hold many lines each.
const CHUNKS: u64 = 16;

/// The lines gathered for a page of a log.
struct Page {
    lines: Vec<LogLine>,
    /// The last sequence number taken.
    cursor: i64,
    limit: usize,
}

impl Page {
    /// Takes the lines of `chunks` (in order) after the cursor; `true` when a line beyond a full
    /// page was found: more follow.
    fn take(&mut self, chunks: &[String]) -> Result<bool> {
        for data in chunks {
            for line in decode_lines(data)? {
                if line.seq <= self.cursor {
                    continue;
                }
                if self.lines.len() == self.limit {
                    return Ok(true);
                }
                self.cursor = line.seq;
                self.lines.push(line);
            }
        }
        Ok(false)
    }
}

/// Reads of schedules and their fires, for the gateway (listing) and the scheduler (firing).
impl Store {
    /// A schedule of a project; one of another project is "not found".
    pub async fn schedule(&self, project_id: i64, id: i64) -> Result<crate::entity::schedule::Model> {
        use crate::entity::schedule;
        schedule::Entity::find_by_id(id)
            .filter(schedule::Column::ProjectId.eq(project_id))
            .one(self.conn())
            .await?
            .ok_or_else(|| Error::NotFound(format!("schedule {id} in project {project_id}")))
    }

    /// A project's schedules, newest first, before the cursor.
    pub async fn schedules(
        &self,
        project_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<crate::entity::schedule::Model>> {
        use crate::entity::schedule;
        let mut q = schedule::Entity::find().filter(schedule::Column::ProjectId.eq(project_id));
        if let Some(before) = before {
            q = q.filter(schedule::Column::Id.lt(before));
        }
        Ok(q.order_by_desc(schedule::Column::Id).limit(limit).all(self.conn()).await?)
    }

    /// Every enabled schedule: what the scheduler fires.
    pub async fn enabled_schedules(&self) -> Result<Vec<crate::entity::schedule::Model>> {
        use crate::entity::schedule;
        Ok(schedule::Entity::find().filter(schedule::Column::Enabled.eq(true)).all(self.conn()).await?)
    }

    /// The latest due time recorded (fired or skipped) for a schedule.
    pub async fn last_fire(&self, schedule_id: i64) -> Result<Option<i64>> {
        use crate::entity::schedule_fire;
        Ok(schedule_fire::Entity::find()
            .select_only()
            .column(schedule_fire::Column::DueAt)
            .filter(schedule_fire::Column::ScheduleId.eq(schedule_id))
            .order_by_desc(schedule_fire::Column::DueAt)
            .limit(1)
            .into_tuple()
            .one(self.conn())
            .await?)
    }

    /// A schedule's fires, newest due time first, due before `before` (the cursor of a page).
    pub async fn schedule_fires(
        &self,
        schedule_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<crate::entity::schedule_fire::Model>> {
        use crate::entity::schedule_fire;
        let mut q = schedule_fire::Entity::find().filter(schedule_fire::Column::ScheduleId.eq(schedule_id));
        if let Some(before) = before {
            q = q.filter(schedule_fire::Column::DueAt.lt(before));
        }
        Ok(q.order_by_desc(schedule_fire::Column::DueAt).limit(limit).all(self.conn()).await?)
    }

    /// A template with its project, for building the task a schedule fires.
    pub async fn template_to_run(
        &self,
        project_id: i64,
        template_id: i64,
    ) -> Result<(crate::entity::template::Model, crate::entity::project::Model)> {
        use crate::entity::{project, template};
        let t = template::Entity::find_by_id(template_id)
            .filter(template::Column::ProjectId.eq(project_id))
            .one(self.conn())
            .await?
            .ok_or_else(|| Error::NotFound(format!("template {template_id} in project {project_id}")))?;
        let p = project::Entity::find_by_id(project_id)
            .one(self.conn())
            .await?
            .ok_or_else(|| Error::NotFound(format!("project {project_id}")))?;
        Ok((t, p))
    }
}
