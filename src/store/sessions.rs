use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{Change, Repo, StoreError, corrupt, entities::sessions};
use crate::domain::{OrgId, SessionId, UserId};

/// A live session, found by its token's hash.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session_id: SessionId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
}

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn insert_session(
        &self,
        session: &SessionRecord,
        token_hash: String,
    ) -> Result<(), StoreError> {
        sessions::Entity::insert(sessions::ActiveModel {
            id: Set(session.session_id.to_string()),
            org_id: Set(session.org_id.to_string()),
            user_id: Set(session.user_id.to_string()),
            token_hash: Set(token_hash),
            created_at: Set(Utc::now()),
            expires_at: Set(session.expires_at),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    /// Whether a session with this token hash is kept but has expired
    /// (expired sessions are cleared when their user next signs in).
    pub async fn session_expired(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sessions::Entity::find()
            .filter(sessions::Column::TokenHash.eq(token_hash))
            .filter(sessions::Column::ExpiresAt.lte(now))
            .one(self.conn())
            .await?
            .is_some())
    }

    /// The unexpired session with this token hash.
    pub async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let load = async {
            let Some(row) = sessions::Entity::find()
                .filter(sessions::Column::TokenHash.eq(token_hash))
                .filter(sessions::Column::ExpiresAt.gt(now))
                .one(self.conn())
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(SessionRecord {
                session_id: SessionId::parse(&row.id).map_err(corrupt)?,
                org_id: OrgId::parse(&row.org_id).map_err(corrupt)?,
                user_id: UserId::parse(&row.user_id).map_err(corrupt)?,
                expires_at: row.expires_at,
            }))
        };
        self.cached(
            |cache| cache.session(token_hash, now).map(Some),
            load,
            |entries, session| {
                if let Some(session) = session {
                    entries.keep_session(token_hash.to_owned(), session);
                }
            },
        )
        .await
    }

    /// Removes the user's sessions that have expired, so the table holds
    /// only live sessions plus, at most, each user's stale ones since their
    /// last sign-in.
    pub async fn delete_expired_sessions(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user_id.to_string()))
            .filter(sessions::Column::ExpiresAt.lte(now))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Ends every session of the user at once.
    pub async fn delete_user_sessions(&self, user_id: UserId) -> Result<(), StoreError> {
        sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }

    /// Ends one session of the user.
    pub async fn delete_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<(), StoreError> {
        sessions::Entity::delete_by_id(session_id.to_string())
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }
}
