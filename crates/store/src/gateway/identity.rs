//! Users, login sessions and API tokens. Secrets arrive here already hashed: passwords as argon2id
//! strings, session and API tokens as SHA-256 digests.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};

use super::Tables;
use crate::entity::{api_token, session, user};
use crate::error::found;
use crate::{Error, Result, now_ms};

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub admin: bool,
}

/// Fields of a user to change; `None` leaves one as it is.
#[derive(Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub password_hash: Option<String>,
    pub admin: Option<bool>,
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

    pub async fn users(&self) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find().order_by_asc(user::Column::Id).all(self.conn()).await?)
    }

    pub async fn update_user(&self, id: i64, changes: UserChanges) -> Result<user::Model> {
        let mut row: user::ActiveModel = self.user(id).await?.into();
        if let Some(v) = changes.username {
            row.username = Set(v);
        }
        if let Some(v) = changes.password_hash {
            row.password_hash = Set(v);
        }
        if let Some(v) = changes.admin {
            row.admin = Set(v);
        }
        Ok(row.update(self.conn()).await?)
    }

    /// Deletes a user with their sessions and tokens.
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        let res = user::Entity::delete_by_id(id).exec(self.conn()).await?;
        found(res.rows_affected, || format!("user {id}"))?;
        session::Entity::delete_many().filter(session::Column::UserId.eq(id)).exec(self.conn()).await?;
        api_token::Entity::delete_many().filter(api_token::Column::UserId.eq(id)).exec(self.conn()).await?;
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

    /// The user behind an unexpired session.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<user::Model>> {
        let found = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash))
            .filter(session::Column::ExpiresAt.gt(now_ms()))
            .one(self.conn())
            .await?;
        match found {
            Some(s) => Ok(user::Entity::find_by_id(s.user_id).one(self.conn()).await?),
            None => Ok(None),
        }
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        session::Entity::delete_many().filter(session::Column::TokenHash.eq(token_hash)).exec(self.conn()).await?;
        Ok(())
    }

    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        expires_at: Option<i64>,
    ) -> Result<api_token::Model> {
        let row = api_token::ActiveModel {
            user_id: Set(user_id),
            name: Set(name.to_owned()),
            token_hash: Set(token_hash.to_owned()),
            created_at: Set(now_ms()),
            expires_at: Set(expires_at),
            ..Default::default()
        };
        Ok(row.insert(self.conn()).await?)
    }

    pub async fn tokens_of(&self, user_id: i64) -> Result<Vec<api_token::Model>> {
        Ok(api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(user_id))
            .order_by_asc(api_token::Column::Id)
            .all(self.conn())
            .await?)
    }

    /// Deletes one of `user_id`'s tokens; another user's token is "not found".
    pub async fn delete_token(&self, user_id: i64, id: i64) -> Result<()> {
        let res = api_token::Entity::delete_many()
            .filter(api_token::Column::Id.eq(id))
            .filter(api_token::Column::UserId.eq(user_id))
            .exec(self.conn())
            .await?;
        found(res.rows_affected, || format!("token {id}"))?;
        Ok(())
    }

    /// The user behind an unexpired API token.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<user::Model>> {
        let found =
            api_token::Entity::find().filter(api_token::Column::TokenHash.eq(token_hash)).one(self.conn()).await?;
        match found {
            Some(t) if t.expires_at.is_none_or(|at| at > now_ms()) => {
                Ok(user::Entity::find_by_id(t.user_id).one(self.conn()).await?)
            }
            _ => Ok(None),
        }
    }
}
