//! Creating tasks: submissions that arrive together (see `group`) are inserted with one
//! statement that hands the rows back, and each caller gets a row of its own.

use sea_orm::{DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, IdenStatic, Iterable, QueryTrait};

use super::tasks::{NewTask, new_task_row};
use crate::entity::task;
use crate::{Error, Result};

/// The most tasks one INSERT creates.
pub(super) const CREATE_GROUP: usize = 64;

/// Inserts `new` in one statement and answers each with its row. The database need not return
/// the rows in the order they were given: each is matched to a request with the same content
/// (requests with the same content are interchangeable: each gets a task of its own).
pub(super) async fn insert_many(conn: DatabaseConnection, new: Vec<NewTask>) -> Result<Vec<task::Model>> {
    type Key = (i64, i64, i32, Option<i64>, Option<i64>, String);
    let wanted: Vec<Key> = new
        .iter()
        .map(|n| (n.project_id, n.template_id, n.priority, n.schedule_id, n.created_by, n.spec.to_json()))
        .collect();
    let rows: Vec<task::ActiveModel> = new.into_iter().map(new_task_row).collect();
    let mut stored = insert_returning(&conn, rows).await?;
    stored.sort_by_key(|t| t.id);
    let mut taken = vec![false; stored.len()];
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let found = stored.iter().enumerate().position(|(i, t)| {
            !taken[i]
                && (t.project_id, t.template_id, t.priority, t.schedule_id, t.created_by, &t.spec)
                    == (w.0, w.1, w.2, w.3, w.4, &w.5)
        });
        let Some(i) = found else {
            return Err(Error::Database("an inserted task was not handed back".into()));
        };
        taken[i] = true;
        out.push(stored[i].clone());
    }
    Ok(out)
}

/// `INSERT … RETURNING` of `rows`. sea-orm knows MariaDB only as MySQL, which has no RETURNING,
/// so there the clause is added to the statement it builds (the caller checked that the server
/// is MariaDB 10.5 or later).
async fn insert_returning(conn: &DatabaseConnection, rows: Vec<task::ActiveModel>) -> Result<Vec<task::Model>> {
    if conn.get_database_backend() != DbBackend::MySql {
        return Ok(task::Entity::insert_many(rows).exec_with_returning(conn).await?);
    }
    let stmt = task::Entity::insert_many(rows).build(DbBackend::MySql);
    let columns: Vec<String> = task::Column::iter().map(|c| format!("`{}`", c.as_str())).collect();
    let sql = format!("{} RETURNING {}", stmt.sql, columns.join(", "));
    Ok(task::Model::find_by_statement(sea_orm::Statement { sql, ..stmt }).all(conn).await?)
}
