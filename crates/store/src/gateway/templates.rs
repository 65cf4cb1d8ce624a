//! Templates: a script plus how to run it.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef, Set,
};

use super::Tables;
use crate::entity::{project, template};
use crate::error::found;
use crate::{Error, Result, now_ms};

/// A template's settable fields, already validated by the caller.
#[derive(Debug, Clone, Default)]
pub struct TemplateFields {
    pub name: String,
    pub script: String,
    pub shell: String,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub labels: Vec<String>,
    pub timeout_seconds: i32,
    pub max_attempts: i32,
    pub max_parallel: i32,
    pub priority: i32,
}

impl TemplateFields {
    /// The fields of a stored template, for read-modify-write updates.
    pub fn of(t: &template::Model) -> Result<TemplateFields> {
        let json = |what: &str, s: &str| Error::Corrupt(format!("template {} {what}: {s}", t.id));
        Ok(TemplateFields {
            name: t.name.clone(),
            script: t.script.clone(),
            shell: t.shell.clone(),
            env: serde_json::from_str(&t.env).map_err(|e| json("env", &e.to_string()))?,
            secrets: serde_json::from_str(&t.secrets).map_err(|e| json("secrets", &e.to_string()))?,
            labels: serde_json::from_str(&t.labels).map_err(|e| json("labels", &e.to_string()))?,
            timeout_seconds: t.timeout_seconds,
            max_attempts: t.max_attempts,
            max_parallel: t.max_parallel,
            priority: t.priority,
        })
    }

    fn apply(self, row: &mut template::ActiveModel) {
        row.name = Set(self.name);
        row.script = Set(self.script);
        row.shell = Set(self.shell);
        row.env = Set(serde_json::to_string(&self.env).unwrap_or_default());
        row.secrets = Set(serde_json::to_string(&self.secrets).unwrap_or_default());
        row.labels = Set(serde_json::to_string(&self.labels).unwrap_or_default());
        row.timeout_seconds = Set(self.timeout_seconds);
        row.max_attempts = Set(self.max_attempts);
        row.max_parallel = Set(self.max_parallel);
        row.priority = Set(self.priority);
        row.updated_at = Set(now_ms());
    }
}

fn duplicate(name: &str) -> impl Fn(sea_orm::DbErr) -> Error + '_ {
    move |e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(format!("a template named {name:?} already exists in this project")),
        other => other,
    }
}

impl Tables {
    pub async fn create_template(&self, project_id: i64, fields: TemplateFields) -> Result<template::Model> {
        let name = fields.name.clone();
        let mut row =
            template::ActiveModel { project_id: Set(project_id), created_at: Set(now_ms()), ..Default::default() };
        fields.apply(&mut row);
        row.insert(self.conn()).await.map_err(duplicate(&name))
    }

    /// A template of a project; one of another project is "not found".
    pub async fn template(&self, project_id: i64, id: i64) -> Result<template::Model> {
        template::Entity::find_by_id(id)
            .filter(template::Column::ProjectId.eq(project_id))
            .one(self.conn())
            .await?
            .ok_or_else(|| Error::NotFound(format!("template {id} in project {project_id}")))
    }

    /// Template `id` of project `project_id` with its project, in one read (a task is created
    /// from both); `None` when either does not exist.
    pub async fn template_with_project(
        &self,
        project_id: i64,
        id: i64,
    ) -> Result<Option<(template::Model, project::Model)>> {
        let of_project: RelationDef = template::Entity::belongs_to(project::Entity)
            .from(template::Column::ProjectId)
            .to(project::Column::Id)
            .into();
        let found = template::Entity::find_by_id(id)
            .filter(template::Column::ProjectId.eq(project_id))
            .join(JoinType::InnerJoin, of_project)
            .select_also(project::Entity)
            .one(self.conn())
            .await?;
        Ok(found.and_then(|(t, p)| Some((t, p?))))
    }

    pub async fn templates(&self, project_id: i64, before: Option<i64>, limit: u64) -> Result<Vec<template::Model>> {
        let mut q = template::Entity::find()
            .filter(template::Column::ProjectId.eq(project_id))
            .order_by_desc(template::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            q = q.filter(template::Column::Id.lt(before));
        }
        Ok(q.all(self.conn()).await?)
    }

    pub async fn update_template(&self, current: template::Model, fields: TemplateFields) -> Result<template::Model> {
        let name = fields.name.clone();
        let mut row: template::ActiveModel = current.into();
        fields.apply(&mut row);
        row.update(self.conn()).await.map_err(duplicate(&name))
    }

    pub async fn delete_template(&self, project_id: i64, id: i64) -> Result<()> {
        let res = template::Entity::delete_many()
            .filter(template::Column::Id.eq(id))
            .filter(template::Column::ProjectId.eq(project_id))
            .exec(self.conn())
            .await?;
        found(res.rows_affected, || format!("template {id} in project {project_id}"))?;
        Ok(())
    }
}
