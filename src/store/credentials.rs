//! Credentials: password hashes, failed sign-ins and locks, and what a
//! sign-in reads to decide.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    sea_query::Expr,
};

use super::{
    Change, Repo, StoreError, corrupt,
    entities::{credentials, users},
    non_negative,
    users::{lock_cutoff, locked_now, login_with_of},
};
use crate::domain::{Email, LoginWith, OrgSettings, UserId, UserState};

/// A user as a sign-in sees them: who, how they may sign in, whether they
/// may, and their credential.
#[derive(Debug, Clone)]
pub struct LoginCandidate {
    pub id: UserId,
    pub email: Email,
    pub login_with: Option<LoginWith>,
    pub state: UserState,
    pub locked: bool,
    pub credential: Option<CredentialRecord>,
}

/// A user's password credential and sign-in failure count.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub password_hash: String,
    pub password_change_required: bool,
    pub failed_logins: u32,
}

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn insert_credentials(
        &self,
        user_id: UserId,
        password_hash: String,
        password_change_required: bool,
    ) -> Result<(), StoreError> {
        credentials::Entity::insert(credentials::ActiveModel {
            user_id: Set(user_id.to_string()),
            password_hash: Set(password_hash),
            password_change_required: Set(password_change_required),
            failed_logins: Set(0),
            updated_at: Set(Utc::now()),
        })
        .exec_without_returning(self.conn())
        .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }

    /// What a sign-in with `login` (an email or a login id) needs to
    /// decide, read with the same two statements whether or not it names a
    /// user, so that timing does not tell which logins exist.
    pub async fn login_candidate(
        &self,
        org: &OrgSettings,
        login: &str,
    ) -> Result<Option<LoginCandidate>, StoreError> {
        let login = login.trim();
        let rows = users::Entity::find()
            .filter(users::Column::OrgId.eq(org.org_id.to_string()))
            .filter(
                Condition::any()
                    .add(users::Column::Email.eq(login.to_lowercase()))
                    .add(users::Column::LoginId.eq(login)),
            )
            .all(self.conn())
            .await?;
        // An email match wins over another user's identical login id.
        let row = rows
            .iter()
            .find(|r| r.email == login.to_lowercase())
            .or(rows.first());
        let id = row.map_or_else(
            || Ok(UserId::none()),
            |r| UserId::parse(&r.id).map_err(corrupt),
        )?;
        let credential = self.credential(id).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let cutoff = lock_cutoff(org);
        Ok(Some(LoginCandidate {
            id,
            email: Email::parse(&row.email).map_err(corrupt)?,
            login_with: login_with_of(row)?,
            state: row.state.parse().map_err(corrupt)?,
            locked: locked_now(row, cutoff),
            credential,
        }))
    }

    /// Counts a failed sign-in; locks the user when `threshold` (if non-zero)
    /// consecutive failures are reached. Returns whether the user is now locked.
    pub async fn record_login_failure(
        &self,
        user_id: UserId,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        credentials::Entity::update_many()
            .col_expr(
                credentials::Column::FailedLogins,
                Expr::col(credentials::Column::FailedLogins).add(1),
            )
            .filter(credentials::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        let failures = credentials::Entity::find_by_id(user_id.to_string())
            .one(self.conn())
            .await?
            .map_or(0, |c| non_negative(c.failed_logins));
        let lock = threshold > 0 && failures >= threshold;
        if lock {
            users::Entity::update_many()
                .col_expr(users::Column::LockedAt, Expr::value(now))
                .filter(users::Column::Id.eq(user_id.to_string()))
                .exec(self.conn())
                .await?;
        }
        self.changed(Change::User(user_id));
        Ok(lock)
    }

    /// Takes the write lock of the user's credential row until the
    /// transaction ends (a no-op update), so a sign-in reads the lock state
    /// after every failure that committed before it.
    pub async fn lock_credential(&self, user_id: UserId) -> Result<(), StoreError> {
        credentials::Entity::update_many()
            .col_expr(
                credentials::Column::FailedLogins,
                Expr::col(credentials::Column::FailedLogins),
            )
            .filter(credentials::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Resets the failure count and any expired lock, and stamps the sign-in.
    pub async fn record_login_success(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        credentials::Entity::update_many()
            .col_expr(credentials::Column::FailedLogins, Expr::value(0))
            .filter(credentials::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        users::Entity::update_many()
            .col_expr(users::Column::LastLoginAt, Expr::value(now))
            .col_expr(
                users::Column::LockedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(users::Column::Id.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }

    /// Clears a lock and the failure count behind it.
    pub async fn unlock_user(&self, user_id: UserId) -> Result<(), StoreError> {
        credentials::Entity::update_many()
            .col_expr(credentials::Column::FailedLogins, Expr::value(0))
            .filter(credentials::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        users::Entity::update_many()
            .col_expr(
                users::Column::LockedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                users::Column::Version,
                Expr::col(users::Column::Version).add(1),
            )
            .filter(users::Column::Id.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }

    /// Ends a lock that has run its org's lockout duration: clears it and the
    /// failure count behind it, so the next failure counts from one again.
    /// Returns whether there was such a lock. Never touches a lock still in
    /// force, nor any lock when locks last until an admin unlocks.
    pub async fn clear_expired_lock(
        &self,
        org: &OrgSettings,
        user_id: UserId,
    ) -> Result<bool, StoreError> {
        let Some(cutoff) = lock_cutoff(org) else {
            return Ok(false);
        };
        let cleared = users::Entity::update_many()
            .col_expr(
                users::Column::LockedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(users::Column::Id.eq(user_id.to_string()))
            .filter(users::Column::LockedAt.lte(cutoff))
            .exec(self.conn())
            .await?
            .rows_affected
            == 1;
        if cleared {
            credentials::Entity::update_many()
                .col_expr(credentials::Column::FailedLogins, Expr::value(0))
                .filter(credentials::Column::UserId.eq(user_id.to_string()))
                .exec(self.conn())
                .await?;
            self.changed(Change::User(user_id));
        }
        Ok(cleared)
    }

    /// The user's password credential; `None` for an invited user, who has
    /// none until they accept.
    pub async fn credential(
        &self,
        user_id: UserId,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(credentials::Entity::find_by_id(user_id.to_string())
            .one(self.conn())
            .await?
            .map(|c| CredentialRecord {
                password_hash: c.password_hash,
                password_change_required: c.password_change_required,
                failed_logins: non_negative(c.failed_logins),
            }))
    }

    /// Replaces the user's password hash, resets the failure count and sets
    /// whether the password must be changed at next sign-in. Bumps the user's version, since
    /// `password_change_required` is part of the user clients read. Returns
    /// false when the user has no credential.
    pub async fn set_password(
        &self,
        user_id: UserId,
        password_hash: String,
        password_change_required: bool,
    ) -> Result<bool, StoreError> {
        let updated = credentials::Entity::update_many()
            .col_expr(
                credentials::Column::PasswordHash,
                Expr::value(password_hash),
            )
            .col_expr(
                credentials::Column::PasswordChangeRequired,
                Expr::value(password_change_required),
            )
            // Failures counted against the old password say nothing about the new one.
            .col_expr(credentials::Column::FailedLogins, Expr::value(0))
            .col_expr(credentials::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(credentials::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?
            .rows_affected
            == 1;
        if updated {
            self.bump_version(user_id).await?;
        }
        Ok(updated)
    }

    /// Requires the user to change their password before anything else.
    /// Bumps the user's version; returns false when the user has no credential.
    pub async fn require_password_change(&self, user_id: UserId) -> Result<bool, StoreError> {
        let updated = credentials::Entity::update_many()
            .col_expr(
                credentials::Column::PasswordChangeRequired,
                Expr::value(true),
            )
            .col_expr(credentials::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(credentials::Column::UserId.eq(user_id.to_string()))
            .exec(self.conn())
            .await?
            .rows_affected
            == 1;
        if updated {
            self.bump_version(user_id).await?;
        }
        Ok(updated)
    }
}
