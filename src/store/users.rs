use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, Query},
};

use super::{
    Change, Repo, StoreError, corrupt,
    entities::{credentials, team_members, user_roles, user_tombstones, users},
    non_negative,
};
use crate::domain::{
    DisplayName, Email, LoginId, LoginWith, OrgId, OrgSettings, ProfileText, RoleName, TeamId,
    Tombstone, User, UserId, UserState,
};

/// Users per insert statement: SQLite allows 32,766 bound values, and a
/// user has 25 columns.
const INSERT_CHUNK: usize = 500;

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Inserts a user with their roles and teams. A taken email or login id
    /// is a [`StoreError::Conflict`] naming the rule ([`super::Unique`]).
    pub async fn insert_user(&self, org_id: OrgId, user: &User) -> Result<(), StoreError> {
        self.insert_users(org_id, std::slice::from_ref(user)).await
    }

    /// Inserts users with their roles and teams, a statement per table and
    /// per [`INSERT_CHUNK`] users.
    pub async fn insert_users(&self, org_id: OrgId, users: &[User]) -> Result<(), StoreError> {
        for batch in users.chunks(INSERT_CHUNK) {
            self.insert_user_chunk(org_id, batch).await?;
        }
        Ok(())
    }

    async fn insert_user_chunk(&self, org_id: OrgId, batch: &[User]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        users::Entity::insert_many(batch.iter().map(|user| users::ActiveModel {
            id: Set(user.id.to_string()),
            org_id: Set(org_id.to_string()),
            email: Set(user.email.as_str().to_owned()),
            login_id: Set(user.login_id.as_ref().map(|l| l.as_str().to_owned())),
            display_name: Set(user.display_name.as_str().to_owned()),
            sort_key: Set(user.display_name.sort_key()),
            search_text: Set(user.search_text()),
            public_name: Set(user.public_name.as_str().to_owned()),
            state: Set(user.state.as_str().to_owned()),
            locked_at: Set(None),
            max_chats: Set(user.max_chats.map(|n| n as i32)),
            login_with: Set(user.login_with.map(|l| l.as_str().to_owned())),
            language: Set(user.language.as_str().to_owned()),
            landline_phone: Set(user.landline_phone.as_str().to_owned()),
            mobile_phone: Set(user.mobile_phone.as_str().to_owned()),
            job_title: Set(user.job_title.as_str().to_owned()),
            location: Set(user.location.as_str().to_owned()),
            can_view_colleagues_chats: Set(user.can_view_colleagues_chats),
            version: Set(user.version),
            created_at: Set(user.created_at),
            updated_at: Set(now),
            last_login_at: Set(None),
            last_logout_at: Set(None),
            suspend_reason: Set(None),
            has_avatar: Set(false),
        }))
        .exec_without_returning(self.conn())
        .await?;
        let roles: Vec<_> = batch
            .iter()
            .flat_map(|user| {
                user.roles.iter().map(|role| user_roles::ActiveModel {
                    user_id: Set(user.id.to_string()),
                    role_name: Set(role.as_str().to_owned()),
                })
            })
            .collect();
        if !roles.is_empty() {
            user_roles::Entity::insert_many(roles)
                .exec_without_returning(self.conn())
                .await?;
        }
        let members: Vec<_> = batch
            .iter()
            .flat_map(|user| {
                user.team_ids.iter().map(|team| team_members::ActiveModel {
                    team_id: Set(team.to_string()),
                    user_id: Set(user.id.to_string()),
                })
            })
            .collect();
        if !members.is_empty() {
            team_members::Entity::insert_many(members)
                .exec_without_returning(self.conn())
                .await?;
        }
        // Nothing cached names a new user, but the search index must learn of them.
        for user in batch {
            self.changed(Change::User(user.id));
        }
        Ok(())
    }

    pub async fn user(
        &self,
        org: &OrgSettings,
        user_id: UserId,
    ) -> Result<Option<User>, StoreError> {
        let load = async {
            let row = users::Entity::find_by_id(user_id.to_string())
                .filter(users::Column::OrgId.eq(org.org_id.to_string()))
                .one(self.conn())
                .await?;
            Ok(self.hydrate(org, row.into_iter().collect()).await?.pop())
        };
        self.cached(
            |cache| cache.user(org.org_id, user_id).map(Some),
            load,
            |entries, user| {
                if let Some(user) = user {
                    entries.keep_user(org.org_id, user);
                }
            },
        )
        .await
    }

    /// The org's users of `user_ids`, in id order, read in one query (not
    /// from the cache: for a transaction that has just written them).
    pub async fn users_in(
        &self,
        org: &OrgSettings,
        user_ids: &[UserId],
    ) -> Result<Vec<User>, StoreError> {
        let rows = users::Entity::find()
            .filter(users::Column::OrgId.eq(org.org_id.to_string()))
            .filter(users::Column::Id.is_in(user_ids.iter().map(|id| id.to_string())))
            .order_by_asc(users::Column::Id)
            .all(self.conn())
            .await?;
        self.hydrate(org, rows).await
    }

    /// The org's user of this email, in any state.
    pub async fn user_by_email(
        &self,
        org: &OrgSettings,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let row = users::Entity::find()
            .filter(users::Column::OrgId.eq(org.org_id.to_string()))
            .filter(users::Column::Email.eq(email.as_str()))
            .one(self.conn())
            .await?;
        Ok(self.hydrate(org, row.into_iter().collect()).await?.pop())
    }

    /// Users holding a seat: `INVITED` and `ACTIVE`.
    pub async fn count_seats(&self, org_id: OrgId) -> Result<u64, StoreError> {
        Ok(users::Entity::find()
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .filter(
                users::Column::State
                    .is_in([UserState::Invited.as_str(), UserState::Active.as_str()]),
            )
            .count(self.conn())
            .await?)
    }

    pub async fn record_logout(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        users::Entity::update_many()
            .col_expr(users::Column::LastLogoutAt, Expr::value(now))
            .filter(users::Column::Id.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }

    /// Writes every editable column of `user` and bumps its version, if the
    /// stored version is still `user.version`. Returns false when it is not
    /// (a concurrent change won). Roles and teams are written only when given.
    pub async fn update_user(
        &self,
        user: &User,
        roles: Option<&[RoleName]>,
        teams: Option<&[TeamId]>,
    ) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .col_expr(
                users::Column::LoginId,
                Expr::value(user.login_id.as_ref().map(|l| l.as_str().to_owned())),
            )
            .col_expr(
                users::Column::DisplayName,
                Expr::value(user.display_name.as_str()),
            )
            .col_expr(
                users::Column::SortKey,
                Expr::value(user.display_name.sort_key()),
            )
            .col_expr(users::Column::SearchText, Expr::value(user.search_text()))
            .col_expr(
                users::Column::PublicName,
                Expr::value(user.public_name.as_str()),
            )
            .col_expr(users::Column::State, Expr::value(user.state.as_str()))
            .col_expr(
                users::Column::MaxChats,
                Expr::value(user.max_chats.map(|n| n as i32)),
            )
            .col_expr(
                users::Column::LoginWith,
                Expr::value(user.login_with.map(|l| l.as_str().to_owned())),
            )
            .col_expr(users::Column::Language, Expr::value(user.language.as_str()))
            .col_expr(
                users::Column::LandlinePhone,
                Expr::value(user.landline_phone.as_str()),
            )
            .col_expr(
                users::Column::MobilePhone,
                Expr::value(user.mobile_phone.as_str()),
            )
            .col_expr(
                users::Column::JobTitle,
                Expr::value(user.job_title.as_str()),
            )
            .col_expr(users::Column::Location, Expr::value(user.location.as_str()))
            .col_expr(
                users::Column::CanViewColleaguesChats,
                Expr::value(user.can_view_colleagues_chats),
            )
            .col_expr(
                users::Column::SuspendReason,
                Expr::value(
                    Some(user.suspend_reason.as_str().to_owned()).filter(|r| !r.is_empty()),
                ),
            )
            .col_expr(users::Column::HasAvatar, Expr::value(user.has_avatar))
            .col_expr(users::Column::Version, Expr::value(user.version + 1))
            .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(users::Column::Id.eq(user.id.to_string()))
            .filter(users::Column::Version.eq(user.version))
            .exec(self.conn())
            .await?;
        if result.rows_affected != 1 {
            return Ok(false);
        }
        if let Some(roles) = roles {
            user_roles::Entity::delete_many()
                .filter(user_roles::Column::UserId.eq(user.id.to_string()))
                .exec(self.conn())
                .await?;
            if !roles.is_empty() {
                user_roles::Entity::insert_many(roles.iter().map(|role| user_roles::ActiveModel {
                    user_id: Set(user.id.to_string()),
                    role_name: Set(role.as_str().to_owned()),
                }))
                .exec_without_returning(self.conn())
                .await?;
            }
        }
        if let Some(teams) = teams {
            team_members::Entity::delete_many()
                .filter(team_members::Column::UserId.eq(user.id.to_string()))
                .exec(self.conn())
                .await?;
            if !teams.is_empty() {
                team_members::Entity::insert_many(teams.iter().map(|team| {
                    team_members::ActiveModel {
                        team_id: Set(team.to_string()),
                        user_id: Set(user.id.to_string()),
                    }
                }))
                .exec_without_returning(self.conn())
                .await?;
            }
        }
        self.changed(Change::User(user.id));
        Ok(true)
    }

    pub(super) async fn bump_version(&self, user_id: UserId) -> Result<(), StoreError> {
        users::Entity::update_many()
            .col_expr(
                users::Column::Version,
                Expr::col(users::Column::Version).add(1),
            )
            .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(users::Column::Id.eq(user_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user_id));
        Ok(())
    }

    /// Active users holding the admin role.
    pub async fn count_active_admins(&self, org_id: OrgId) -> Result<u64, StoreError> {
        Ok(users::Entity::find()
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .filter(users::Column::State.eq(UserState::Active.as_str()))
            .filter(
                users::Column::Id.in_subquery(
                    Query::select()
                        .column(user_roles::Column::UserId)
                        .from(user_roles::Entity)
                        .and_where(user_roles::Column::RoleName.eq(RoleName::ADMIN))
                        .to_owned(),
                ),
            )
            .count(self.conn())
            .await?)
    }

    /// Deletes the user and, by cascade, their credential, sessions, roles,
    /// memberships and avatar. With `tombstone`, keeps id, name and email.
    pub async fn delete_user(
        &self,
        org_id: OrgId,
        user: &User,
        tombstone: Option<Option<UserId>>,
    ) -> Result<(), StoreError> {
        if let Some(deleted_by) = tombstone {
            user_tombstones::Entity::insert(user_tombstones::ActiveModel {
                id: Set(user.id.to_string()),
                org_id: Set(org_id.to_string()),
                email: Set(user.email.as_str().to_owned()),
                display_name: Set(user.display_name.as_str().to_owned()),
                deleted_at: Set(Utc::now()),
                deleted_by: Set(deleted_by.map(|id| id.to_string())),
            })
            .exec_without_returning(self.conn())
            .await?;
        }
        users::Entity::delete_by_id(user.id.to_string())
            .exec(self.conn())
            .await?;
        self.changed(Change::User(user.id));
        Ok(())
    }

    /// Up to `limit` tombstones of the org, most recently deleted first
    /// (then by id), after `after` (deleted at, id); only those of `ids`
    /// unless it is empty.
    pub async fn tombstones(
        &self,
        org_id: OrgId,
        ids: &[UserId],
        after: Option<(DateTime<Utc>, UserId)>,
        limit: u64,
    ) -> Result<Vec<Tombstone>, StoreError> {
        use user_tombstones::Column as Col;
        let mut select = user_tombstones::Entity::find().filter(Col::OrgId.eq(org_id.to_string()));
        if !ids.is_empty() {
            select = select.filter(Col::Id.is_in(ids.iter().map(ToString::to_string)));
        }
        if let Some((at, id)) = after {
            select = select.filter(super::newest_first_after(
                Col::DeletedAt,
                Col::Id,
                at,
                &id.to_string(),
            ));
        }
        select
            .order_by_desc(Col::DeletedAt)
            .order_by_desc(Col::Id)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| {
                Ok(Tombstone {
                    id: UserId::parse(&row.id).map_err(corrupt)?,
                    email: Email::parse(&row.email).map_err(corrupt)?,
                    display_name: DisplayName::parse(&row.display_name).map_err(corrupt)?,
                    deleted_at: row.deleted_at,
                    deleted_by: row
                        .deleted_by
                        .as_deref()
                        .map(UserId::parse)
                        .transpose()
                        .map_err(corrupt)?,
                })
            })
            .collect()
    }

    /// Turns rows into users, loading roles, teams and credential flags in
    /// one query each for the whole batch. Keeps the rows' order.
    pub(super) async fn hydrate(
        &self,
        org: &OrgSettings,
        rows: Vec<users::Model>,
    ) -> Result<Vec<User>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut roles_of: HashMap<String, Vec<RoleName>> = HashMap::new();
        for row in user_roles::Entity::find()
            .filter(user_roles::Column::UserId.is_in(ids.clone()))
            .order_by_asc(user_roles::Column::RoleName)
            .all(self.conn())
            .await?
        {
            let role = RoleName::parse(&row.role_name).map_err(corrupt)?;
            roles_of.entry(row.user_id).or_default().push(role);
        }
        let mut teams_of: HashMap<String, Vec<TeamId>> = HashMap::new();
        for row in team_members::Entity::find()
            .filter(team_members::Column::UserId.is_in(ids.clone()))
            .order_by_asc(team_members::Column::TeamId)
            .all(self.conn())
            .await?
        {
            let team = TeamId::parse(&row.team_id).map_err(corrupt)?;
            teams_of.entry(row.user_id).or_default().push(team);
        }
        let change_required: HashMap<String, bool> = credentials::Entity::find()
            .filter(credentials::Column::UserId.is_in(ids))
            .all(self.conn())
            .await?
            .into_iter()
            .map(|c| (c.user_id, c.password_change_required))
            .collect();
        let cutoff = lock_cutoff(org);
        rows.into_iter()
            .map(|row| {
                let text = |s: &str| ProfileText::parse(s, usize::MAX).map_err(corrupt);
                let max_chats = row.max_chats.map(non_negative);
                Ok(User {
                    id: UserId::parse(&row.id).map_err(corrupt)?,
                    email: Email::parse(&row.email).map_err(corrupt)?,
                    login_id: row
                        .login_id
                        .as_deref()
                        .map(LoginId::parse)
                        .transpose()
                        .map_err(corrupt)?,
                    display_name: DisplayName::parse(&row.display_name).map_err(corrupt)?,
                    public_name: text(&row.public_name)?,
                    state: row.state.parse().map_err(corrupt)?,
                    locked: locked_now(&row, cutoff),
                    roles: roles_of.remove(&row.id).unwrap_or_default(),
                    team_ids: teams_of.remove(&row.id).unwrap_or_default(),
                    max_chats,
                    effective_max_chats: max_chats.unwrap_or(org.default_max_chats),
                    login_with: login_with_of(&row)?,
                    language: text(&row.language)?,
                    landline_phone: text(&row.landline_phone)?,
                    mobile_phone: text(&row.mobile_phone)?,
                    job_title: text(&row.job_title)?,
                    location: text(&row.location)?,
                    can_view_colleagues_chats: row.can_view_colleagues_chats,
                    password_change_required: change_required
                        .get(&row.id)
                        .copied()
                        .unwrap_or(false),
                    version: row.version,
                    created_at: row.created_at,
                    last_login_at: row.last_login_at,
                    last_logout_at: row.last_logout_at,
                    suspend_reason: text(row.suspend_reason.as_deref().unwrap_or_default())?,
                    has_avatar: row.has_avatar,
                })
            })
            .collect()
    }
}

pub(super) fn login_with_of(row: &users::Model) -> Result<Option<LoginWith>, StoreError> {
    row.login_with
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(corrupt)
}

/// Whether the user's lock is in force, given [`lock_cutoff`].
pub(super) fn locked_now(row: &users::Model, cutoff: Option<DateTime<Utc>>) -> bool {
    lock_in_force(row.locked_at, cutoff)
}

/// Whether a lock set at `locked_at` is in force, given [`lock_cutoff`].
pub(super) fn lock_in_force(
    locked_at: Option<DateTime<Utc>>,
    cutoff: Option<DateTime<Utc>>,
) -> bool {
    locked_at.is_some_and(|at| cutoff.is_none_or(|cutoff| at > cutoff))
}

/// Locks set after this instant are still in force; `None` means locks last
/// until an admin unlocks.
pub(super) fn lock_cutoff(org: &OrgSettings) -> Option<DateTime<Utc>> {
    if org.lockout_duration.is_zero() {
        None
    } else {
        chrono::Duration::from_std(org.lockout_duration)
            .ok()
            .map(|d| Utc::now() - d)
    }
}
