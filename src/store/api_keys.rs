//! API keys, stored with a SHA-256 of their secret. Ids are UUID v7, so id
//! order is creation order and serves as the listing's key.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use super::{Repo, StoreError, corrupt, entities::api_keys};
use crate::domain::{ApiKey, ApiKeyId, ApiKeyName, OrgId, Permission, PermissionSet, UserId};

impl<C: ConnectionTrait> Repo<'_, C> {
    /// A taken name is a [`StoreError::Conflict`].
    pub async fn insert_api_key(
        &self,
        org_id: OrgId,
        key: &ApiKey,
        secret_hash: String,
    ) -> Result<(), StoreError> {
        api_keys::Entity::insert(api_keys::ActiveModel {
            id: Set(key.id.to_string()),
            org_id: Set(org_id.to_string()),
            name: Set(key.name.as_str().to_owned()),
            scopes: Set(scope_text(key.scopes)),
            secret_hash: Set(secret_hash),
            secret_prefix: Set(key.secret_prefix.clone()),
            created_by: Set(key.created_by.map(|id| id.to_string())),
            created_at: Set(key.created_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    pub async fn api_key(&self, org_id: OrgId, id: ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        api_keys::Entity::find_by_id(id.to_string())
            .filter(api_keys::Column::OrgId.eq(org_id.to_string()))
            .one(self.conn())
            .await?
            .map(api_key)
            .transpose()
    }

    /// Up to `limit` keys of the org, oldest first, after `after`.
    pub async fn list_api_keys(
        &self,
        org_id: OrgId,
        show_revoked: bool,
        after: Option<ApiKeyId>,
        limit: u64,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let mut select =
            api_keys::Entity::find().filter(api_keys::Column::OrgId.eq(org_id.to_string()));
        if !show_revoked {
            select = select.filter(api_keys::Column::RevokedAt.is_null());
        }
        if let Some(after) = after {
            select = select.filter(api_keys::Column::Id.gt(after.to_string()));
        }
        select
            .order_by_asc(api_keys::Column::Id)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(api_key)
            .collect()
    }

    pub async fn revoke_api_key(&self, id: ApiKeyId, now: DateTime<Utc>) -> Result<(), StoreError> {
        api_keys::Entity::update_many()
            .col_expr(api_keys::Column::RevokedAt, Expr::value(now))
            .filter(api_keys::Column::Id.eq(id.to_string()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// The unrevoked key with this secret hash, and its org.
    pub async fn live_api_key(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(OrgId, ApiKey)>, StoreError> {
        let Some(row) = api_keys::Entity::find()
            .filter(api_keys::Column::SecretHash.eq(secret_hash))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let org_id = OrgId::parse(&row.org_id).map_err(corrupt)?;
        Ok(Some((org_id, api_key(row)?)))
    }

    /// Stamps the key's last use, at most once a minute, so a busy service
    /// does not turn every call into a write.
    pub async fn touch_api_key(&self, id: ApiKeyId, now: DateTime<Utc>) -> Result<(), StoreError> {
        api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, Expr::value(now))
            .filter(api_keys::Column::Id.eq(id.to_string()))
            .filter(
                Condition::any()
                    .add(api_keys::Column::LastUsedAt.is_null())
                    .add(api_keys::Column::LastUsedAt.lt(now - Duration::minutes(1))),
            )
            .exec(self.conn())
            .await?;
        Ok(())
    }
}

fn scope_text(scopes: PermissionSet) -> String {
    scopes
        .iter()
        .map(Permission::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn api_key(row: api_keys::Model) -> Result<ApiKey, StoreError> {
    let scopes = row
        .scopes
        .split_whitespace()
        .map(Permission::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    Ok(ApiKey {
        id: ApiKeyId::parse(&row.id).map_err(corrupt)?,
        name: ApiKeyName::parse(&row.name).map_err(corrupt)?,
        scopes: PermissionSet::of(&scopes),
        secret_prefix: row.secret_prefix,
        created_by: row
            .created_by
            .as_deref()
            .map(UserId::parse)
            .transpose()
            .map_err(corrupt)?,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    })
}
