//! What belongs to the platform rather than to an org: platform API keys,
//! the platform audit log, and the removal of an org with everything it
//! holds.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Query},
};

use super::{
    Change, Repo, StoreError, corrupt,
    entities::{
        api_keys, audit_events, avatars, credentials, idempotency_keys, import_jobs,
        import_report_lines, invites, orgs, platform_api_keys, platform_audit_events, presence,
        presence_events, presence_sequences, roles, sessions, team_members, teams, user_roles,
        user_tombstones, users,
    },
};
use crate::domain::{
    ApiKeyName, OrgId, PlatformAuditCriteria, PlatformAuditEntry, PlatformKey, PlatformKeyId,
};

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn insert_platform_key(
        &self,
        key: &PlatformKey,
        secret_hash: String,
    ) -> Result<(), StoreError> {
        platform_api_keys::Entity::insert(platform_api_keys::ActiveModel {
            id: Set(key.id.to_string()),
            name: Set(key.name.as_str().to_owned()),
            secret_hash: Set(secret_hash),
            secret_prefix: Set(key.secret_prefix.clone()),
            created_at: Set(key.created_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    /// The platform key of this name, revoked or not.
    pub async fn platform_key_by_name(
        &self,
        name: &ApiKeyName,
    ) -> Result<Option<PlatformKey>, StoreError> {
        platform_api_keys::Entity::find()
            .filter(platform_api_keys::Column::Name.eq(name.as_str()))
            .one(self.conn())
            .await?
            .map(platform_key)
            .transpose()
    }

    /// Every platform key, by name.
    pub async fn platform_keys(&self) -> Result<Vec<PlatformKey>, StoreError> {
        platform_api_keys::Entity::find()
            .order_by_asc(platform_api_keys::Column::Name)
            .all(self.conn())
            .await?
            .into_iter()
            .map(platform_key)
            .collect()
    }

    pub async fn live_platform_key(
        &self,
        secret_hash: &str,
    ) -> Result<Option<PlatformKey>, StoreError> {
        platform_api_keys::Entity::find()
            .filter(platform_api_keys::Column::SecretHash.eq(secret_hash))
            .filter(platform_api_keys::Column::RevokedAt.is_null())
            .one(self.conn())
            .await?
            .map(platform_key)
            .transpose()
    }

    /// Revokes a live key; false when there is none of that id.
    pub async fn revoke_platform_key(
        &self,
        id: PlatformKeyId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = platform_api_keys::Entity::update_many()
            .col_expr(platform_api_keys::Column::RevokedAt, Expr::value(now))
            .filter(platform_api_keys::Column::Id.eq(id.to_string()))
            .filter(platform_api_keys::Column::RevokedAt.is_null())
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Stamps the key's last use, at most once a minute (as org keys do).
    pub async fn touch_platform_key(
        &self,
        id: PlatformKeyId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use platform_api_keys::Column as Col;
        platform_api_keys::Entity::update_many()
            .col_expr(Col::LastUsedAt, Expr::value(now))
            .filter(Col::Id.eq(id.to_string()))
            .filter(
                Condition::any()
                    .add(Col::LastUsedAt.is_null())
                    .add(Col::LastUsedAt.lt(now - Duration::minutes(1))),
            )
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Appends an entry under a fresh id; returns the id.
    pub async fn append_platform_audit(
        &self,
        entry: PlatformAuditEntry,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        platform_audit_events::Entity::insert(platform_audit_events::ActiveModel {
            id: Set(id.clone()),
            occurred_at: Set(entry.occurred_at),
            actor_kind: Set(entry.actor_kind),
            actor_id: Set(entry.actor_id),
            action: Set(entry.action),
            org_id: Set(entry.org_id),
            org_slug: Set(entry.org_slug),
            request_id: Set(entry.request_id),
            peer: Set(entry.peer),
            details: Set(entry.details),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(id)
    }

    /// Up to `limit` entries matching `criteria`, newest first (time, then
    /// id, both descending), after `after` (time, id).
    pub async fn list_platform_audit(
        &self,
        criteria: &PlatformAuditCriteria,
        after: Option<(DateTime<Utc>, String)>,
        limit: u64,
    ) -> Result<Vec<PlatformAuditEntry>, StoreError> {
        use platform_audit_events::Column as Col;
        let mut select = platform_audit_events::Entity::find();
        if let Some(org_id) = criteria.org_id {
            select = select.filter(Col::OrgId.eq(org_id.to_string()));
        }
        if let Some(action) = &criteria.action {
            select = select.filter(Col::Action.eq(action.as_str()));
        }
        if let Some(start) = criteria.start {
            select = select.filter(Col::OccurredAt.gte(start));
        }
        if let Some(end) = criteria.end {
            select = select.filter(Col::OccurredAt.lt(end));
        }
        if let Some((at, id)) = after {
            select = select.filter(super::newest_first_after(Col::OccurredAt, Col::Id, at, &id));
        }
        Ok(select
            .order_by_desc(Col::OccurredAt)
            .order_by_desc(Col::Id)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| PlatformAuditEntry {
                id: row.id,
                occurred_at: row.occurred_at,
                actor_kind: row.actor_kind,
                actor_id: row.actor_id,
                action: row.action,
                org_id: row.org_id,
                org_slug: row.org_slug,
                request_id: row.request_id,
                peer: row.peer,
                details: row.details,
            })
            .collect())
    }

    /// Ends every session of the org's users.
    pub async fn delete_org_sessions(&self, org_id: OrgId) -> Result<(), StoreError> {
        sessions::Entity::delete_many()
            .filter(sessions::Column::OrgId.eq(org_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::Org(org_id));
        Ok(())
    }

    /// Removes the org and every row that belongs to it, its users' rows
    /// first (children before parents, so no foreign key is ever left
    /// dangling, whatever each one's delete rule). Returns how many users
    /// it held. Call inside one transaction: either all of it goes or none.
    pub async fn delete_org(&self, org_id: OrgId) -> Result<u64, StoreError> {
        let org = org_id.to_string();
        let users_of_org = || {
            Query::select()
                .column(users::Column::Id)
                .from(users::Entity)
                .and_where(users::Column::OrgId.eq(org.as_str()))
                .to_owned()
        };
        let jobs_of_org = Query::select()
            .column(import_jobs::Column::Id)
            .from(import_jobs::Entity)
            .and_where(import_jobs::Column::OrgId.eq(org.as_str()))
            .to_owned();
        let conn = self.conn();
        import_report_lines::Entity::delete_many()
            .filter(import_report_lines::Column::JobId.in_subquery(jobs_of_org))
            .exec(conn)
            .await?;
        import_jobs::Entity::delete_many()
            .filter(import_jobs::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        user_roles::Entity::delete_many()
            .filter(user_roles::Column::UserId.in_subquery(users_of_org()))
            .exec(conn)
            .await?;
        team_members::Entity::delete_many()
            .filter(team_members::Column::UserId.in_subquery(users_of_org()))
            .exec(conn)
            .await?;
        credentials::Entity::delete_many()
            .filter(credentials::Column::UserId.in_subquery(users_of_org()))
            .exec(conn)
            .await?;
        avatars::Entity::delete_many()
            .filter(avatars::Column::UserId.in_subquery(users_of_org()))
            .exec(conn)
            .await?;
        sessions::Entity::delete_many()
            .filter(sessions::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        invites::Entity::delete_many()
            .filter(invites::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        presence_events::Entity::delete_many()
            .filter(presence_events::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        presence::Entity::delete_many()
            .filter(presence::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        presence_sequences::Entity::delete_many()
            .filter(presence_sequences::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        api_keys::Entity::delete_many()
            .filter(api_keys::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        idempotency_keys::Entity::delete_many()
            .filter(idempotency_keys::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        audit_events::Entity::delete_many()
            .filter(audit_events::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        user_tombstones::Entity::delete_many()
            .filter(user_tombstones::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        let removed = users::Entity::delete_many()
            .filter(users::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?
            .rows_affected;
        teams::Entity::delete_many()
            .filter(teams::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        roles::Entity::delete_many()
            .filter(roles::Column::OrgId.eq(org.as_str()))
            .exec(conn)
            .await?;
        orgs::Entity::delete_by_id(org.clone()).exec(conn).await?;
        self.changed(Change::Org(org_id));
        Ok(removed)
    }
}

fn platform_key(row: platform_api_keys::Model) -> Result<PlatformKey, StoreError> {
    Ok(PlatformKey {
        id: PlatformKeyId::parse(&row.id).map_err(corrupt)?,
        name: ApiKeyName::parse(&row.name).map_err(corrupt)?,
        secret_prefix: row.secret_prefix,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    })
}
