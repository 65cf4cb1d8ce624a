//! Project secrets. Values arrive sealed; nothing here sees them in the clear.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::Tables;
use crate::entity::project_secret;
use crate::error::found;
use crate::{Error, Result, now_ms};

impl Tables {
    pub async fn create_secret(&self, project_id: i64, name: &str, sealed: &str) -> Result<project_secret::Model> {
        let now = now_ms();
        let row = project_secret::ActiveModel {
            project_id: Set(project_id),
            name: Set(name.to_owned()),
            sealed: Set(sealed.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        row.insert(self.conn()).await.map_err(|e| match Error::from(e) {
            Error::Conflict(_) => {
                Error::Conflict(format!("secret {name:?} already exists; PUT it to change its value"))
            }
            other => other,
        })
    }

    /// Replaces a secret's value; `NotFound` if it does not exist.
    pub async fn update_secret(&self, project_id: i64, name: &str, sealed: &str) -> Result<()> {
        let res = project_secret::Entity::update_many()
            .col_expr(project_secret::Column::Sealed, Expr::value(sealed))
            .col_expr(project_secret::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(project_secret::Column::ProjectId.eq(project_id))
            .filter(project_secret::Column::Name.eq(name))
            .exec(self.conn())
            .await?;
        found(res.rows_affected, || format!("secret {name:?} in project {project_id}"))?;
        Ok(())
    }

    pub async fn delete_secret(&self, project_id: i64, name: &str) -> Result<()> {
        let res = project_secret::Entity::delete_many()
            .filter(project_secret::Column::ProjectId.eq(project_id))
            .filter(project_secret::Column::Name.eq(name))
            .exec(self.conn())
            .await?;
        found(res.rows_affected, || format!("secret {name:?} in project {project_id}"))?;
        Ok(())
    }

    /// A project's secrets newest first, below the cursor `before` (their values stay sealed).
    pub async fn secrets_page(
        &self,
        project_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<project_secret::Model>> {
        let mut q = project_secret::Entity::find()
            .filter(project_secret::Column::ProjectId.eq(project_id))
            .order_by_desc(project_secret::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            q = q.filter(project_secret::Column::Id.lt(before));
        }
        Ok(q.all(self.conn()).await?)
    }

    pub async fn delete_project_secrets(&self, project_id: i64) -> Result<()> {
        project_secret::Entity::delete_many()
            .filter(project_secret::Column::ProjectId.eq(project_id))
            .exec(self.conn())
            .await?;
        Ok(())
    }
}
