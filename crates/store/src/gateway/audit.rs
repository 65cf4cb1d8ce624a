//! The audit log: one row per write through the API, appended and read, and deleted only by
//! retention.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Tables;
use crate::Result;
use crate::entity::audit_entry;

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project_id: Option<i64>,
    pub user_id: Option<i64>,
    pub action: Option<String>,
    /// Entries with a lower id (newer entries come first).
    pub before: Option<i64>,
}

/// The most entries one INSERT writes.
pub(super) const GROUP: usize = 128;

/// Writes entries made at about the same time in one statement.
pub(super) async fn insert(conn: sea_orm::DatabaseConnection, entries: Vec<audit_entry::Model>) -> Result<Vec<()>> {
    let n = entries.len();
    let rows = entries.into_iter().map(|e| {
        let mut row: audit_entry::ActiveModel = e.into();
        row.id = sea_orm::ActiveValue::NotSet;
        row
    });
    audit_entry::Entity::insert_many(rows).exec_without_returning(&conn).await?;
    Ok(vec![(); n])
}

impl Tables {
    /// Returns once the entry is stored; entries made at the same time by other requests are
    /// stored with it.
    pub async fn append_audit(&self, entry: audit_entry::Model) -> Result<()> {
        self.audit.write(entry).await
    }

    /// Entries newest first.
    pub async fn audit(&self, f: AuditFilter, limit: u64) -> Result<Vec<audit_entry::Model>> {
        let mut q = audit_entry::Entity::find().order_by_desc(audit_entry::Column::Id).limit(limit);
        if let Some(p) = f.project_id {
            q = q.filter(audit_entry::Column::ProjectId.eq(p));
        }
        if let Some(u) = f.user_id {
            q = q.filter(audit_entry::Column::UserId.eq(u));
        }
        if let Some(a) = f.action {
            q = q.filter(audit_entry::Column::Action.eq(a));
        }
        if let Some(b) = f.before {
            q = q.filter(audit_entry::Column::Id.lt(b));
        }
        Ok(q.all(self.conn()).await?)
    }

    /// Deletes up to `batch` of the oldest entries made before `cutoff` (ms); returns how many.
    pub async fn delete_audit_before(&self, cutoff: i64, batch: u64) -> Result<u64> {
        let ids: Vec<i64> = audit_entry::Entity::find()
            .select_only()
            .column(audit_entry::Column::Id)
            .filter(audit_entry::Column::Time.lt(cutoff))
            .order_by_asc(audit_entry::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(self.conn())
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res =
            audit_entry::Entity::delete_many().filter(audit_entry::Column::Id.is_in(ids)).exec(self.conn()).await?;
        Ok(res.rows_affected)
    }
}
