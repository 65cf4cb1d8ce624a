//! Project members and their roles. A project always keeps at least one owner: every change that
//! could take the last one away counts the owners inside the same transaction, holding the
//! project's member rows, so two owners demoting each other at once cannot both succeed.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::Tables;
use crate::entity::{project, project_member, user};
use crate::{Error, Result, end_tx, now_ms};

/// The role an owner has; the one a project must always keep.
pub const OWNER: &str = "owner";

/// A member with the user's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    pub role: String,
}

impl Tables {
    /// Creates a project with `owner` as its first owner, in one transaction.
    pub async fn create_project_owned(
        &self,
        new: super::projects::NewProject<'_>,
        owner: i64,
    ) -> Result<project::Model> {
        let tx = self.write_tx().await?;
        let result = async {
            let p = super::projects::insert_project(&tx, new).await?;
            insert_member(&tx, p.id, owner, OWNER).await?;
            Ok(p)
        }
        .await;
        end_tx(tx, result).await
    }

    /// `user_id`'s role in `project_id`, if a member.
    pub async fn member_role(&self, project_id: i64, user_id: i64) -> Result<Option<String>> {
        Ok(project_member::Entity::find_by_id((project_id, user_id)).one(self.conn()).await?.map(|m| m.role))
    }

    /// Members of a project by user id, highest first, below the cursor `before`.
    pub async fn members(&self, project_id: i64, before: Option<i64>, limit: u64) -> Result<Vec<Member>> {
        let mut q = project_member::Entity::find()
            .filter(project_member::Column::ProjectId.eq(project_id))
            .order_by_desc(project_member::Column::UserId)
            .limit(limit);
        if let Some(before) = before {
            q = q.filter(project_member::Column::UserId.lt(before));
        }
        let rows = q.all(self.conn()).await?;
        let ids: Vec<i64> = rows.iter().map(|m| m.user_id).collect();
        let names: std::collections::HashMap<i64, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(self.conn())
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        Ok(rows
            .into_iter()
            .map(|m| Member {
                username: names.get(&m.user_id).cloned().unwrap_or_default(),
                user_id: m.user_id,
                role: m.role,
            })
            .collect())
    }

    /// The projects `user_id` is a member of with their role, newest first, below `before`.
    pub async fn projects_of(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<(project::Model, String)>> {
        let mut q = project_member::Entity::find()
            .filter(project_member::Column::UserId.eq(user_id))
            .order_by_desc(project_member::Column::ProjectId)
            .limit(limit);
        if let Some(before) = before {
            q = q.filter(project_member::Column::ProjectId.lt(before));
        }
        let memberships = q.all(self.conn()).await?;
        let ids: Vec<i64> = memberships.iter().map(|m| m.project_id).collect();
        let mut projects: std::collections::HashMap<i64, project::Model> = project::Entity::find()
            .filter(project::Column::Id.is_in(ids))
            .all(self.conn())
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        Ok(memberships.into_iter().filter_map(|m| projects.remove(&m.project_id).map(|p| (p, m.role))).collect())
    }

    /// The ids of the projects where `user_id` has role `role`.
    pub async fn projects_with_role(&self, user_id: i64, role: &str) -> Result<Vec<i64>> {
        Ok(project_member::Entity::find()
            .select_only()
            .column(project_member::Column::ProjectId)
            .filter(project_member::Column::UserId.eq(user_id))
            .filter(project_member::Column::Role.eq(role))
            .into_tuple()
            .all(self.conn())
            .await?)
    }

    /// Adds `user_id` to the project or changes their role. Taking the last owner's role away is a
    /// conflict.
    pub async fn set_member(&self, project_id: i64, user_id: i64, role: &str) -> Result<Member> {
        let tx = self.write_tx().await?;
        let result = async {
            let owners = lock_owners(&tx, project_id).await?;
            let current = project_member::Entity::find_by_id((project_id, user_id)).one(&tx).await?;
            match current {
                Some(m) => {
                    if m.role == OWNER && role != OWNER && owners == [user_id] {
                        return Err(last_owner(project_id));
                    }
                    project_member::Entity::update_many()
                        .col_expr(project_member::Column::Role, Expr::value(role))
                        .filter(project_member::Column::ProjectId.eq(project_id))
                        .filter(project_member::Column::UserId.eq(user_id))
                        .exec(&tx)
                        .await?;
                }
                None => insert_member(&tx, project_id, user_id, role).await?,
            }
            let username = user::Entity::find_by_id(user_id).one(&tx).await?.map(|u| u.username).unwrap_or_default();
            Ok(Member { user_id, username, role: role.to_owned() })
        }
        .await;
        end_tx(tx, result).await
    }

    /// Removes `user_id` from the project; removing the last owner is a conflict.
    pub async fn remove_member(&self, project_id: i64, user_id: i64) -> Result<()> {
        let tx = self.write_tx().await?;
        let result = async {
            let owners = lock_owners(&tx, project_id).await?;
            if owners == [user_id] {
                return Err(last_owner(project_id));
            }
            let res = project_member::Entity::delete_by_id((project_id, user_id)).exec(&tx).await?;
            if res.rows_affected == 0 {
                return Err(Error::NotFound(format!("member {user_id} of project {project_id}")));
            }
            Ok(())
        }
        .await;
        end_tx(tx, result).await
    }

    /// The projects `user_id` is the only owner of (which must get another owner before the
    /// user can go).
    pub async fn sole_ownerships(&self, user_id: i64) -> Result<Vec<i64>> {
        let mut sole = Vec::new();
        for pid in self.projects_with_role(user_id, OWNER).await? {
            let owners = project_member::Entity::find()
                .filter(project_member::Column::ProjectId.eq(pid))
                .filter(project_member::Column::Role.eq(OWNER))
                .count(self.conn())
                .await?;
            if owners <= 1 {
                sole.push(pid);
            }
        }
        Ok(sole)
    }
}

/// The project's owners, with the project's member rows locked for the transaction (SQLite's
/// write transaction serializes anyway).
async fn lock_owners(tx: &DatabaseTransaction, project_id: i64) -> Result<Vec<i64>> {
    let rows = project_member::Entity::find()
        .filter(project_member::Column::ProjectId.eq(project_id))
        .lock_exclusive()
        .all(tx)
        .await?;
    Ok(rows.into_iter().filter(|m| m.role == OWNER).map(|m| m.user_id).collect())
}

fn last_owner(project_id: i64) -> Error {
    Error::Conflict(format!("project {project_id} must keep at least one owner; make someone else owner first"))
}

async fn insert_member(c: &impl ConnectionTrait, project_id: i64, user_id: i64, role: &str) -> Result<()> {
    let row = project_member::ActiveModel {
        project_id: Set(project_id),
        user_id: Set(user_id),
        role: Set(role.to_owned()),
        created_at: Set(now_ms()),
    };
    row.insert(c).await?;
    Ok(())
}
