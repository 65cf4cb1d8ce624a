//! Users, login sessions and API tokens. Secrets arrive here already hashed: passwords as argon2id
//! strings, session and API tokens as SHA-256 digests.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

use super::Tables;
use crate::entity::{api_token, project_member, session, user};
use crate::error::{found, on_deadlock};
use crate::{Error, Result, end_tx, now_ms};

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub admin: bool,
}

/// Fields of a user to change; `None` leaves one as it is.
#[derive(Default, Clone)]
pub struct UserChanges {
    pub username: Option<String>,
    /// A new password ends every session of the user but `keep_session`, in the same
    /// transaction: whoever held the old password is logged out with it.
    pub password_hash: Option<String>,
    pub admin: Option<bool>,
    /// The digest of the session that stays when the password changes (the caller's own).
    pub keep_session: Option<String>,
}

impl Tables {
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<user::Model> {
        let row = user::ActiveModel {
            username: Set(new.username.to_owned()),
            password_hash: Set(new.password_hash.to_owned()),
            admin: Set(new.admin),
            created_at: Set(now_ms()),
            ..Default::default()
        };
        row.insert(self.conn()).await.map_err(|e| match Error::from(e) {
            Error::Conflict(_) => Error::Conflict(format!("user {:?} already exists", new.username)),
            other => other,
        })
    }

    pub async fn count_users(&self) -> Result<u64> {
        Ok(user::Entity::find().count(self.conn()).await?)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find().filter(user::Column::Username.eq(username)).one(self.conn()).await?)
    }

    pub async fn user(&self, id: i64) -> Result<user::Model> {
        user::Entity::find_by_id(id).one(self.conn()).await?.ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    /// Users newest first, below the cursor `before`.
    pub async fn users(&self, before: Option<i64>, limit: u64) -> Result<Vec<user::Model>> {
        let mut q = user::Entity::find().order_by_desc(user::Column::Id).limit(limit);
        if let Some(before) = before {
            q = q.filter(user::Column::Id.lt(before));
        }
        Ok(q.all(self.conn()).await?)
    }

    pub async fn update_user(&self, id: i64, changes: UserChanges) -> Result<user::Model> {
        // MySQL may pick this transaction as a deadlock victim against a login of the same user
        // (both touch the user's range of the sessions index); it left nothing behind then.
        on_deadlock(|| self.update_user_once(id, changes.clone())).await
    }

    async fn update_user_once(&self, id: i64, changes: UserChanges) -> Result<user::Model> {
        let tx = self.write_tx().await?;
        let result = async {
            let found = user::Entity::find_by_id(id).one(&tx).await?;
            let mut row: user::ActiveModel = found.ok_or_else(|| Error::NotFound(format!("user {id}")))?.into();
            let new_password = changes.password_hash.is_some();
            if let Some(v) = changes.username {
                row.username = Set(v);
            }
            if let Some(v) = changes.password_hash {
                row.password_hash = Set(v);
            }
            if let Some(v) = changes.admin {
                row.admin = Set(v);
            }
            let updated = row.update(&tx).await?;
            if new_password {
                end_sessions(&tx, id, changes.keep_session.as_deref()).await?;
            }
            Ok(updated)
        }
        .await;
        end_tx(tx, result).await
    }

    /// Deletes a user with their sessions, tokens and memberships. The sole owner of a project
    /// cannot go: the project must keep an owner.
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        if let Some(pid) = self.sole_ownerships(id).await?.first() {
            return Err(Error::Conflict(format!(
                "user {id} is the only owner of project {pid}; make someone else owner first"
            )));
        }
        let res = user::Entity::delete_by_id(id).exec(self.conn()).await?;
        found(res.rows_affected, || format!("user {id}"))?;
        session::Entity::delete_many().filter(session::Column::UserId.eq(id)).exec(self.conn()).await?;
        api_token::Entity::delete_many().filter(api_token::Column::UserId.eq(id)).exec(self.conn()).await?;
        project_member::Entity::delete_many().filter(project_member::Column::UserId.eq(id)).exec(self.conn()).await?;
        Ok(())
    }

    pub async fn create_session(&self, user_id: i64, token_hash: &str, ttl_ms: i64) -> Result<()> {
        let now = now_ms();
        let row = session::ActiveModel {
            user_id: Set(user_id),
            token_hash: Set(token_hash.to_owned()),
            created_at: Set(now),
            expires_at: Set(now + ttl_ms),
            ..Default::default()
        };
        row.insert(self.conn()).await?;
        Ok(())
    }

    /// The user behind an unexpired session, and when the session expires (Unix ms).
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<(user::Model, i64)>> {
        // One statement: every API call of a browser asks this first.
        let sessions: sea_orm::RelationDef =
            session::Entity::belongs_to(user::Entity).from(session::Column::UserId).to(user::Column::Id).into();
        let found = user::Entity::find()
            .join(sea_orm::JoinType::InnerJoin, sessions.rev())
            .filter(session::Column::TokenHash.eq(token_hash))
            .filter(session::Column::ExpiresAt.gt(now_ms()))
            .column_as(session::Column::ExpiresAt, SESSION_EXPIRES)
            .into_model::<SessionUser>()
            .one(self.conn())
            .await?;
        Ok(found.map(|s| (s.user, s.expires_at)))
    }

    /// Ends every session of `user_id` except `keep` (a digest); returns how many ended.
    pub async fn end_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<u64> {
        end_sessions(self.conn(), user_id, keep).await
    }

    /// Deletes up to `batch` sessions that expired by `now` (Unix ms), oldest first; returns how
    /// many. Fewer than `batch` means none is left.
    pub async fn delete_expired_sessions(&self, now: i64, batch: u64) -> Result<u64> {
        let ids: Vec<i64> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::ExpiresAt.lte(now))
            .order_by_asc(session::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(self.conn())
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res = session::Entity::delete_many().filter(session::Column::Id.is_in(ids)).exec(self.conn()).await?;
        Ok(res.rows_affected)
    }

    /// Deletes up to `batch` API tokens that expired by `now` (Unix ms); returns how many.
    pub async fn delete_expired_tokens(&self, now: i64, batch: u64) -> Result<u64> {
        let ids: Vec<i64> = api_token::Entity::find()
            .select_only()
            .column(api_token::Column::Id)
            .filter(api_token::Column::ExpiresAt.lte(now))
            .order_by_asc(api_token::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(self.conn())
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res = api_token::Entity::delete_many().filter(api_token::Column::Id.is_in(ids)).exec(self.conn()).await?;
        Ok(res.rows_affected)
    }

    /// Ends a session; `true` when there was one to end.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let res =
            session::Entity::delete_many().filter(session::Column::TokenHash.eq(token_hash)).exec(self.conn()).await?;
        Ok(res.rows_affected > 0)
    }
}

async fn end_sessions(c: &impl ConnectionTrait, user_id: i64, keep: Option<&str>) -> Result<u64> {
    let mut q = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        q = q.filter(session::Column::TokenHash.ne(keep));
    }
    Ok(q.exec(c).await?.rows_affected)
}

const SESSION_EXPIRES: &str = "session_expires_at";

/// A user read with the expiry of the session that found them.
struct SessionUser {
    user: user::Model,
    expires_at: i64,
}

impl sea_orm::FromQueryResult for SessionUser {
    fn from_query_result(res: &sea_orm::QueryResult, pre: &str) -> std::result::Result<Self, sea_orm::DbErr> {
        Ok(SessionUser {
            user: user::Model::from_query_result(res, pre)?,
            expires_at: res.try_get(pre, SESSION_EXPIRES)?,
        })
    }
}
