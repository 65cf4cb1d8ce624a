//! API tokens, stored as digests. A token may be narrowed to one project and a lower role; it
//! never acts with more than its user's rights at the time of the request (the gateway takes the
//! lesser of the two).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::Tables;
use crate::entity::{api_token, user};
use crate::error::found;
use crate::{Result, now_ms};

/// A token to store.
pub struct NewToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub expires_at: Option<i64>,
    pub project_id: Option<i64>,
    pub role: Option<&'a str>,
}

impl Tables {
    pub async fn create_token(&self, new: NewToken<'_>) -> Result<api_token::Model> {
        let row = api_token::ActiveModel {
            user_id: Set(new.user_id),
            name: Set(new.name.to_owned()),
            token_hash: Set(new.token_hash.to_owned()),
            created_at: Set(now_ms()),
            expires_at: Set(new.expires_at),
            project_id: Set(new.project_id),
            role: Set(new.role.map(str::to_owned)),
            ..Default::default()
        };
        Ok(row.insert(self.conn()).await?)
    }

    /// `user_id`'s tokens, newest first, below the cursor `before`.
    pub async fn tokens_of(&self, user_id: i64, before: Option<i64>, limit: u64) -> Result<Vec<api_token::Model>> {
        let mut q = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(user_id))
            .order_by_desc(api_token::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            q = q.filter(api_token::Column::Id.lt(before));
        }
        Ok(q.all(self.conn()).await?)
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

    /// The user behind an unexpired API token, with the token.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<(user::Model, api_token::Model)>> {
        let found =
            api_token::Entity::find().filter(api_token::Column::TokenHash.eq(token_hash)).one(self.conn()).await?;
        match found {
            Some(t) if t.expires_at.is_none_or(|at| at > now_ms()) => {
                Ok(user::Entity::find_by_id(t.user_id).one(self.conn()).await?.map(|u| (u, t)))
            }
            _ => Ok(None),
        }
    }
}
