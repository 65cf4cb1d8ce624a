//! The first read of a followed log, for many followers in one statement: each task's status and
//! whether any of its log is stored. A follower reads once after it subscribes (what was stored,
//! and the end, before it subscribed reach it no other way); under load clients start following
//! hundreds of tasks a second, and for nearly all of them nothing is stored yet, so that read
//! alone answers. Followers of tasks with stored lines go on to read them.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::Tables;
use crate::Result;
use crate::entity::task;

/// The most tasks one read asks about.
pub(super) const GROUP: usize = 256;

/// What the first read found of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStart {
    pub status: String,
    /// Whether any line of its log is stored.
    pub stored: bool,
}

/// The tasks' statuses and whether they have stored lines, in one statement (one snapshot per
/// task: a final status with nothing stored means an empty, complete log). `None` for a task
/// that does not exist.
pub(super) async fn read(conn: sea_orm::DatabaseConnection, ids: Vec<i64>) -> Result<Vec<Option<LogStart>>> {
    // The first chunk by the (task_id, seq_first) index: one lookup per task, however long its
    // log.
    let first_chunk =
        Expr::cust("(SELECT MIN(seq_first) FROM task_log_chunks WHERE task_log_chunks.task_id = tasks.id)");
    let rows: Vec<(i64, String, Option<i64>)> = task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .column(task::Column::Status)
        .column_as(first_chunk, "first_chunk")
        .filter(task::Column::Id.is_in(ids.clone()))
        .into_tuple()
        .all(&conn)
        .await?;
    let found: HashMap<i64, LogStart> =
        rows.into_iter().map(|(id, status, first)| (id, LogStart { status, stored: first.is_some() })).collect();
    // A task may be asked about by several followers at once.
    Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
}

impl Tables {
    /// A task's status and whether any of its log is stored, read together with those of the
    /// other followers starting now. `None` when the task does not exist.
    pub async fn log_start(&self, task_id: i64) -> Result<Option<LogStart>> {
        self.log_starts.write(task_id).await
    }
}
