use std::time::Duration;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, UpdateMany, sea_query::Expr,
};

use super::{Change, Repo, StoreError, corrupt, entities::orgs, non_negative};
use crate::domain::{OrgId, OrgSettings, OrgSlug, OrgState, ProfileText};

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn org_count(&self) -> Result<u64, StoreError> {
        Ok(orgs::Entity::find().count(self.conn()).await?)
    }

    /// Inserts a new org; `create_request_id` is the CreateOrg request id
    /// that makes it, unique among orgs. A slug or request id already taken
    /// is a [`StoreError::Conflict`].
    pub async fn insert_org(
        &self,
        org: &OrgSettings,
        create_request_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let secs = |d: Duration| d.as_secs() as i64;
        orgs::Entity::insert(orgs::ActiveModel {
            id: Set(org.org_id.to_string()),
            slug: Set(org.slug.as_str().to_owned()),
            name: Set(org.name.clone()),
            created_at: Set(org.created_at),
            state: Set(org.state.as_str().to_owned()),
            suspended_at: Set(org.suspended_at),
            suspend_reason: Set(
                Some(org.suspend_reason.as_str().to_owned()).filter(|r| !r.is_empty())
            ),
            create_request_id: Set(create_request_id.map(str::to_owned)),
            seat_limit: Set(org.seat_limit.map(|n| n as i32)),
            default_max_chats: Set(org.default_max_chats as i32),
            password_min_length: Set(org.password_min_length as i32),
            lockout_threshold: Set(org.lockout_threshold as i32),
            lockout_duration_secs: Set(secs(org.lockout_duration)),
            login_with: Set(org.login_with.as_str().to_owned()),
            invite_lifetime_secs: Set(secs(org.invite_lifetime)),
            session_lifetime_secs: Set(secs(org.session_lifetime)),
            presence_lease_secs: Set(secs(org.presence_lease)),
            version: Set(org.version),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    /// Takes the org row's write lock until the transaction ends (a no-op
    /// update: PostgreSQL locks the row, SQLite already holds the write lock).
    pub async fn lock_org(&self, org_id: OrgId) -> Result<(), StoreError> {
        orgs::Entity::update_many()
            .col_expr(orgs::Column::Version, Expr::col(orgs::Column::Version))
            .filter(orgs::Column::Id.eq(org_id.to_string()))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Writes every setting of `org` and bumps its version, if the stored
    /// version is still `org.version`; false when a concurrent change won.
    pub async fn update_org_settings(&self, org: &OrgSettings) -> Result<bool, StoreError> {
        let secs = |d: Duration| d.as_secs() as i64;
        let update = orgs::Entity::update_many()
            .col_expr(orgs::Column::Name, Expr::value(org.name.as_str()))
            .col_expr(
                orgs::Column::SeatLimit,
                Expr::value(org.seat_limit.map(|n| n as i32)),
            )
            .col_expr(
                orgs::Column::DefaultMaxChats,
                Expr::value(org.default_max_chats as i32),
            )
            .col_expr(
                orgs::Column::PasswordMinLength,
                Expr::value(org.password_min_length as i32),
            )
            .col_expr(
                orgs::Column::LockoutThreshold,
                Expr::value(org.lockout_threshold as i32),
            )
            .col_expr(
                orgs::Column::LockoutDurationSecs,
                Expr::value(secs(org.lockout_duration)),
            )
            .col_expr(
                orgs::Column::LoginWith,
                Expr::value(org.login_with.as_str()),
            )
            .col_expr(
                orgs::Column::InviteLifetimeSecs,
                Expr::value(secs(org.invite_lifetime)),
            )
            .col_expr(
                orgs::Column::SessionLifetimeSecs,
                Expr::value(secs(org.session_lifetime)),
            )
            .col_expr(
                orgs::Column::PresenceLeaseSecs,
                Expr::value(secs(org.presence_lease)),
            );
        self.update_org_if_unchanged(org, update).await
    }

    /// Sets the org's lifecycle state (and when and why it was suspended)
    /// and bumps its version, if the stored version is still `org.version`;
    /// false when a concurrent change won.
    pub async fn update_org_state(&self, org: &OrgSettings) -> Result<bool, StoreError> {
        let reason = Some(org.suspend_reason.as_str()).filter(|r| !r.is_empty());
        let update = orgs::Entity::update_many()
            .col_expr(orgs::Column::State, Expr::value(org.state.as_str()))
            .col_expr(orgs::Column::SuspendedAt, Expr::value(org.suspended_at))
            .col_expr(orgs::Column::SuspendReason, Expr::value(reason));
        self.update_org_if_unchanged(org, update).await
    }

    /// Runs `update` on the org and bumps its version, if the stored version
    /// is still `org.version`; false when a concurrent change won.
    async fn update_org_if_unchanged(
        &self,
        org: &OrgSettings,
        update: UpdateMany<orgs::Entity>,
    ) -> Result<bool, StoreError> {
        let result = update
            .col_expr(orgs::Column::Version, Expr::value(org.version + 1))
            .filter(orgs::Column::Id.eq(org.org_id.to_string()))
            .filter(orgs::Column::Version.eq(org.version))
            .exec(self.conn())
            .await?;
        self.changed(Change::Org(org.org_id));
        Ok(result.rows_affected == 1)
    }

    /// The org a CreateOrg call with this request id made, if it still exists.
    pub async fn org_by_create_request(
        &self,
        request_id: &str,
    ) -> Result<Option<OrgSettings>, StoreError> {
        self.one_org(orgs::Entity::find().filter(orgs::Column::CreateRequestId.eq(request_id)))
            .await
    }

    /// The org of this id, read from the database (never the cache), if it
    /// exists: for callers that name an org which may have been deleted.
    pub async fn find_org(&self, org_id: OrgId) -> Result<Option<OrgSettings>, StoreError> {
        self.one_org(orgs::Entity::find_by_id(org_id.to_string()))
            .await
    }

    async fn one_org(
        &self,
        select: sea_orm::Select<orgs::Entity>,
    ) -> Result<Option<OrgSettings>, StoreError> {
        select.one(self.conn()).await?.map(org_settings).transpose()
    }

    /// Up to `limit` orgs in slug order after `after`, whose slug starts with
    /// `slug_prefix` and, when given, in `state`.
    pub async fn list_orgs(
        &self,
        slug_prefix: &str,
        state: Option<OrgState>,
        after: Option<&OrgSlug>,
        limit: u64,
    ) -> Result<Vec<OrgSettings>, StoreError> {
        let mut select = orgs::Entity::find();
        if !slug_prefix.is_empty() {
            // Slugs hold only [a-z0-9-]: nothing in a prefix needs escaping.
            select = select.filter(orgs::Column::Slug.starts_with(slug_prefix));
        }
        if let Some(state) = state {
            select = select.filter(orgs::Column::State.eq(state.as_str()));
        }
        if let Some(after) = after {
            select = select.filter(orgs::Column::Slug.gt(after.as_str()));
        }
        select
            .order_by_asc(orgs::Column::Slug)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(org_settings)
            .collect()
    }

    pub async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<OrgSettings>, StoreError> {
        self.one_org(orgs::Entity::find().filter(orgs::Column::Slug.eq(slug.as_str())))
            .await
    }

    pub async fn org(&self, org_id: OrgId) -> Result<OrgSettings, StoreError> {
        let load = async {
            orgs::Entity::find_by_id(org_id.to_string())
                .one(self.conn())
                .await?
                .ok_or(StoreError::OrgGone(org_id))
                .and_then(org_settings)
        };
        self.cached(
            |cache| cache.org(org_id),
            load,
            |entries, org| entries.keep_org(org),
        )
        .await
    }
}

fn org_settings(row: orgs::Model) -> Result<OrgSettings, StoreError> {
    let secs = |s: i64| Duration::from_secs(s.max(0) as u64);
    Ok(OrgSettings {
        org_id: OrgId::parse(&row.id).map_err(corrupt)?,
        slug: OrgSlug::parse(&row.slug).map_err(corrupt)?,
        name: row.name,
        created_at: row.created_at,
        state: row.state.parse().map_err(corrupt)?,
        suspended_at: row.suspended_at,
        suspend_reason: ProfileText::parse(row.suspend_reason.as_deref().unwrap_or(""), usize::MAX)
            .map_err(corrupt)?,
        seat_limit: row.seat_limit.map(non_negative),
        default_max_chats: non_negative(row.default_max_chats),
        password_min_length: non_negative(row.password_min_length),
        lockout_threshold: non_negative(row.lockout_threshold),
        lockout_duration: secs(row.lockout_duration_secs),
        login_with: row.login_with.parse().map_err(corrupt)?,
        invite_lifetime: secs(row.invite_lifetime_secs),
        session_lifetime: secs(row.session_lifetime_secs),
        presence_lease: secs(row.presence_lease_secs),
        version: row.version,
    })
}
