use std::time::Duration;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::Expr,
};

use super::{Change, Repo, StoreError, corrupt, entities::orgs, non_negative};
use crate::domain::{OrgId, OrgSettings, OrgSlug};

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn org_count(&self) -> Result<u64, StoreError> {
        Ok(orgs::Entity::find().count(self.conn()).await?)
    }

    pub async fn insert_org(&self, org: &OrgSettings) -> Result<(), StoreError> {
        let secs = |d: Duration| d.as_secs() as i64;
        orgs::Entity::insert(orgs::ActiveModel {
            id: Set(org.org_id.to_string()),
            slug: Set(org.slug.as_str().to_owned()),
            name: Set(org.name.clone()),
            created_at: Set(chrono::Utc::now()),
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
        let result = orgs::Entity::update_many()
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
            )
            .col_expr(orgs::Column::Version, Expr::value(org.version + 1))
            .filter(orgs::Column::Id.eq(org.org_id.to_string()))
            .filter(orgs::Column::Version.eq(org.version))
            .exec(self.conn())
            .await?;
        self.changed(Change::Org(org.org_id));
        Ok(result.rows_affected == 1)
    }

    pub async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<OrgSettings>, StoreError> {
        orgs::Entity::find()
            .filter(orgs::Column::Slug.eq(slug.as_str()))
            .one(self.conn())
            .await?
            .map(org_settings)
            .transpose()
    }

    pub async fn org(&self, org_id: OrgId) -> Result<OrgSettings, StoreError> {
        let load = async {
            orgs::Entity::find_by_id(org_id.to_string())
                .one(self.conn())
                .await?
                .ok_or_else(|| corrupt(format!("org {org_id} is missing")))
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
