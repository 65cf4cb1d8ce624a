//! Projects.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::Tables;
use crate::entity::{project, project_member, template};
use crate::error::found;
use crate::{Error, Result, now_ms};

/// Fields of a project to change; `None` leaves one as it is.
#[derive(Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub max_parallel: Option<i32>,
}

fn duplicate(name: &str) -> impl Fn(sea_orm::DbErr) -> Error + '_ {
    move |e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(format!("a project named {name:?} already exists")),
        other => other,
    }
}

/// A project to create.
#[derive(Debug, Clone, Copy)]
pub struct NewProject<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub max_parallel: i32,
}

pub(super) async fn insert_project(c: &impl ConnectionTrait, new: NewProject<'_>) -> Result<project::Model> {
    let now = now_ms();
    let row = project::ActiveModel {
        name: Set(new.name.to_owned()),
        description: Set(new.description.to_owned()),
        max_parallel: Set(new.max_parallel),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    row.insert(c).await.map_err(duplicate(new.name))
}

impl Tables {
    /// A project without members (an administrator's or a test's; the API gives every new
    /// project an owner with [`Tables::create_project_owned`]).
    pub async fn create_project(&self, name: &str, description: &str, max_parallel: i32) -> Result<project::Model> {
        insert_project(self.conn(), NewProject { name, description, max_parallel }).await
    }

    pub async fn project(&self, id: i64) -> Result<project::Model> {
        project::Entity::find_by_id(id).one(self.conn()).await?.ok_or_else(|| Error::NotFound(format!("project {id}")))
    }

    /// Projects newest first, below the cursor `before`.
    pub async fn projects(&self, before: Option<i64>, limit: u64) -> Result<Vec<project::Model>> {
        let mut q = project::Entity::find().order_by_desc(project::Column::Id).limit(limit);
        if let Some(before) = before {
            q = q.filter(project::Column::Id.lt(before));
        }
        Ok(q.all(self.conn()).await?)
    }

    pub async fn update_project(&self, id: i64, changes: ProjectChanges) -> Result<project::Model> {
        let current = self.project(id).await?;
        let name = changes.name.clone().unwrap_or_else(|| current.name.clone());
        let mut row: project::ActiveModel = current.into();
        if let Some(v) = changes.name {
            row.name = Set(v);
        }
        if let Some(v) = changes.description {
            row.description = Set(v);
        }
        if let Some(v) = changes.max_parallel {
            row.max_parallel = Set(v);
        }
        row.updated_at = Set(now_ms());
        row.update(self.conn()).await.map_err(duplicate(&name))
    }

    /// Deletes a project and its templates. Its tasks belong to the dispatcher, which must purge
    /// them first.
    pub async fn delete_project(&self, id: i64) -> Result<()> {
        template::Entity::delete_many().filter(template::Column::ProjectId.eq(id)).exec(self.conn()).await?;
        project_member::Entity::delete_many()
            .filter(project_member::Column::ProjectId.eq(id))
            .exec(self.conn())
            .await?;
        let res = project::Entity::delete_by_id(id).exec(self.conn()).await?;
        found(res.rows_affected, || format!("project {id}"))?;
        Ok(())
    }
}
