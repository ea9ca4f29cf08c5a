//! Invitation tokens, stored as hashes. Rows outlive their pending user so a
//! revoked link can say so.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr,
};

use super::{Repo, StoreError, corrupt, entities::invites};
use crate::domain::{OrgId, UserId};

/// An invitation link as stored.
#[derive(Debug, Clone)]
pub struct InviteRecord {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn insert_invite(
        &self,
        org_id: OrgId,
        user_id: UserId,
        token_hash: String,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.insert_invites(org_id, vec![(user_id, token_hash, expires_at)])
            .await
    }

    /// Inserts links (user, token hash, expiry) in one statement.
    pub async fn insert_invites(
        &self,
        org_id: OrgId,
        links: Vec<(UserId, String, DateTime<Utc>)>,
    ) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        invites::Entity::insert_many(links.into_iter().map(|(user_id, token_hash, expires_at)| {
            invites::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                org_id: Set(org_id.to_string()),
                user_id: Set(user_id.to_string()),
                token_hash: Set(token_hash),
                created_at: Set(now),
                expires_at: Set(expires_at),
                used_at: Set(None),
                revoked_at: Set(None),
            }
        }))
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    pub async fn invite_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<InviteRecord>, StoreError> {
        let Some(row) = invites::Entity::find()
            .filter(invites::Column::TokenHash.eq(token_hash))
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(InviteRecord {
            org_id: OrgId::parse(&row.org_id).map_err(corrupt)?,
            user_id: UserId::parse(&row.user_id).map_err(corrupt)?,
            expires_at: row.expires_at,
            used_at: row.used_at,
            revoked_at: row.revoked_at,
        }))
    }

    /// Kills every open link of the user.
    pub async fn revoke_invites(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        invites::Entity::update_many()
            .col_expr(invites::Column::RevokedAt, Expr::value(now))
            .filter(invites::Column::UserId.eq(user_id.to_string()))
            .filter(invites::Column::UsedAt.is_null())
            .filter(invites::Column::RevokedAt.is_null())
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Marks the link used, if it still is open; false when another accept won.
    pub async fn use_invite(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = invites::Entity::update_many()
            .col_expr(invites::Column::UsedAt, Expr::value(now))
            .filter(invites::Column::TokenHash.eq(token_hash))
            .filter(invites::Column::UsedAt.is_null())
            .filter(invites::Column::RevokedAt.is_null())
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }
}
