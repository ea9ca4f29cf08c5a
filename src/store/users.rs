use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
    sea_query::{Alias, Expr, Func, LikeExpr, Query},
};

use super::{
    Change, Repo, StoreError, corrupt,
    entities::{
        credentials, presence, roles, team_members, teams, user_roles, user_tombstones, users,
    },
    non_negative,
};
use crate::domain::{
    DisplayName, Email, LoginId, LoginWith, OrgId, OrgSettings, Permission, PermissionSet,
    PresenceStatus, ProfileText, RoleName, TeamId, Tombstone, User, UserId, UserScope, UserState,
};

/// Users per insert statement: SQLite allows 32,766 bound values, and a
/// user has 25 columns.
const INSERT_CHUNK: usize = 500;

/// SQLite's FTS5 trigram index of `users.search_text`, external content
/// keyed by `users`' rowid (see the migration that makes it).
const SEARCH_TABLE: &str = "users_search";

/// Below this many users containing a query, a listing reads just those
/// users and sorts them (about a microsecond each); from it on, walking the
/// org in sort order finds a page of matches sooner. With 2,000 matches
/// spread evenly among 100,000 users, a page of 50 is some 2,500 rows into
/// the walk: about the cost of reading the candidates, whose worst case
/// this keeps near 2 ms.
const SEARCH_CANDIDATES: i64 = 2_000;

/// What a caller asks a listing for; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserCriteria {
    /// Substring of the display name, public name, email, login id or id.
    pub query: Option<String>,
    pub role: Option<RoleName>,
    pub team: Option<TeamId>,
    pub state: Option<UserState>,
    pub locked: Option<bool>,
    pub presence: Option<PresenceStatus>,
}

/// Which users a listing returns: the criteria, within what the caller may see.
#[derive(Debug, Clone)]
pub struct UserFilter {
    pub criteria: UserCriteria,
    pub scope: UserScope,
}

/// Where a page of users starts: after this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPageKey {
    pub sort_key: String,
    pub user_id: String,
}

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
    /// Inserts a user with their roles and teams. A taken email or login id
    /// is a [`StoreError::Conflict`] naming the column.
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
        Ok(())
    }

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
        let credential = credentials::Entity::find_by_id(id.to_string())
            .one(self.conn())
            .await?
            .map(|c| CredentialRecord {
                password_hash: c.password_hash,
                password_change_required: c.password_change_required,
                failed_logins: non_negative(c.failed_logins),
            });
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

    /// Up to `limit` users matching `filter`, ordered by sort key then id,
    /// starting after `after`.
    pub async fn list_users(
        &self,
        org: &OrgSettings,
        filter: &UserFilter,
        after: Option<&UserPageKey>,
        limit: u64,
    ) -> Result<Vec<(UserPageKey, User)>, StoreError> {
        let mut select = users::Entity::find()
            .filter(users::Column::OrgId.eq(org.org_id.to_string()))
            .filter(scope_condition(&filter.scope));
        let criteria = &filter.criteria;
        if let Some(query) = &criteria.query {
            let query = query.to_lowercase();
            // The LIKE decides what matches on every path; the trigram index
            // only narrows which users it is tried on.
            let pattern = format!("%{}%", escape_like(&query));
            select = select.filter(
                Expr::col((users::Entity, users::Column::SearchText))
                    .like(LikeExpr::new(pattern).escape('\\')),
            );
            if let Some(rowids) = self.search_candidates(&query).await? {
                if rowids.is_empty() {
                    return Ok(Vec::new());
                }
                // The candidates drive the query (CROSS JOIN fixes the join
                // order in SQLite): each is read by rowid, then the few that
                // match are sorted. Left to itself, the planner walks the
                // whole org in sort order and tests each user.
                let list = rowids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let candidates = Alias::new("candidates");
                QueryTrait::query(&mut select)
                    .from_clear()
                    .from_function(
                        Func::cust(Alias::new("json_each")).arg(format!("[{list}]")),
                        candidates.clone(),
                    )
                    .cross_join(users::Entity);
                select = select.filter(
                    Expr::col((users::Entity, Alias::new("rowid")))
                        .equals((candidates, Alias::new("value"))),
                );
            }
        }
        if let Some(role) = &criteria.role {
            select = select.filter(
                users::Column::Id.in_subquery(
                    Query::select()
                        .column(user_roles::Column::UserId)
                        .from(user_roles::Entity)
                        .and_where(user_roles::Column::RoleName.eq(role.as_str()))
                        .to_owned(),
                ),
            );
        }
        if let Some(team) = criteria.team {
            select = select.filter(users::Column::Id.in_subquery(members_of(&[team])));
        }
        if let Some(state) = criteria.state {
            select = select.filter(users::Column::State.eq(state.as_str()));
        }
        if let Some(locked) = criteria.locked {
            // Spelled out both ways: NOT over a NULL `locked_at` would be
            // NULL and drop never-locked users from `locked = false`.
            let condition = match (lock_cutoff(org), locked) {
                (None, true) => Condition::all().add(users::Column::LockedAt.is_not_null()),
                (None, false) => Condition::all().add(users::Column::LockedAt.is_null()),
                (Some(cutoff), true) => Condition::all().add(users::Column::LockedAt.gt(cutoff)),
                (Some(cutoff), false) => Condition::any()
                    .add(users::Column::LockedAt.is_null())
                    .add(users::Column::LockedAt.lte(cutoff)),
            };
            select = select.filter(condition);
        }
        if let Some(status) = criteria.presence {
            // Users without a presence row are OFFLINE.
            let signed_in = |condition| {
                Query::select()
                    .column(presence::Column::UserId)
                    .from(presence::Entity)
                    .and_where(condition)
                    .to_owned()
            };
            select = select.filter(match status {
                PresenceStatus::Offline => users::Column::Id.not_in_subquery(signed_in(
                    presence::Column::Status.ne(PresenceStatus::Offline.as_str()),
                )),
                other => users::Column::Id
                    .in_subquery(signed_in(presence::Column::Status.eq(other.as_str()))),
            });
        }
        if let Some(after) = after {
            select = select.filter(
                Condition::any()
                    .add(users::Column::SortKey.gt(after.sort_key.as_str()))
                    .add(
                        Condition::all()
                            .add(users::Column::SortKey.eq(after.sort_key.as_str()))
                            .add(users::Column::Id.gt(after.user_id.as_str())),
                    ),
            );
        }
        let rows = select
            .order_by_asc(users::Column::SortKey)
            .order_by_asc(users::Column::Id)
            .limit(limit)
            .all(self.conn())
            .await?;
        let keys: Vec<UserPageKey> = rows
            .iter()
            .map(|r| UserPageKey {
                sort_key: r.sort_key.clone(),
                user_id: r.id.clone(),
            })
            .collect();
        let users = self.hydrate(org, rows).await?;
        Ok(keys.into_iter().zip(users).collect())
    }

    /// On SQLite, the rowids of the users whose search text may contain
    /// `query` (lower case) by the trigram index, when there are fewer than
    /// [`SEARCH_CANDIDATES`]. `None` leaves the query to the ordered scan: on
    /// PostgreSQL (whose planner weighs the trigram and sort-key indexes
    /// itself), for queries under three characters (which trigrams cannot
    /// find), for a NUL (where SQLite's LIKE stops reading the pattern), and
    /// when matches are common enough that the scan soon fills a page.
    ///
    /// The rowids are read once, here, rather than by the listing again: the
    /// index lookup is most of a selective listing's cost in the database. A
    /// user changed in between is judged by the LIKE on their current row.
    async fn search_candidates(&self, query: &str) -> Result<Option<Vec<i64>>, StoreError> {
        if self.conn().get_database_backend() != DbBackend::Sqlite
            || query.chars().count() < 3
            || query.contains('\0')
        {
            return Ok(None);
        }
        // A quoted FTS5 string takes every character literally but `"`, doubled.
        let phrase = format!("\"{}\"", query.replace('"', "\"\""));
        let rows = self
            .conn()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ? LIMIT ?"),
                [phrase.into(), SEARCH_CANDIDATES.into()],
            ))
            .await?;
        if rows.len() >= SEARCH_CANDIDATES as usize {
            return Ok(None);
        }
        let rowids = rows
            .iter()
            .map(|row| row.try_get_by_index::<i64>(0))
            .collect::<Result<_, _>>()?;
        Ok(Some(rowids))
    }

    /// After many users were inserted at once, on PostgreSQL: moves the
    /// trigram index's pending entries into the index proper (GIN queues
    /// inserts in a list of up to 4 MB that every query reads through: about
    /// 8 ms per query when full), and refreshes the planner's statistics,
    /// without which it takes 100,000 new users for a few hundred and
    /// filters them all rather than use the index. Autovacuum does both,
    /// later. Nothing on SQLite, whose plans here need neither.
    pub async fn settle_users_after_bulk_insert(&self) -> Result<(), StoreError> {
        if self.conn().get_database_backend() == DbBackend::Postgres {
            self.conn()
                .execute_unprepared("SELECT gin_clean_pending_list('users_search_trgm'::regclass)")
                .await?;
            self.conn().execute_unprepared("ANALYZE users").await?;
        }
        Ok(())
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

    /// Which of `ids` are teams of the org.
    pub async fn existing_teams(
        &self,
        org_id: OrgId,
        ids: &[TeamId],
    ) -> Result<Vec<TeamId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        teams::Entity::find()
            .select_only()
            .column(teams::Column::Id)
            .filter(teams::Column::OrgId.eq(org_id.to_string()))
            .filter(teams::Column::Id.is_in(ids.iter().map(ToString::to_string)))
            .into_tuple::<String>()
            .all(self.conn())
            .await?
            .iter()
            .map(|id| TeamId::parse(id).map_err(corrupt))
            .collect()
    }

    /// The permissions of the org's custom roles among `names`; names that are
    /// not custom roles of the org are absent.
    pub async fn custom_roles(
        &self,
        org_id: OrgId,
        names: &[RoleName],
    ) -> Result<HashMap<RoleName, PermissionSet>, StoreError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let load = async {
            roles::Entity::find()
                .filter(roles::Column::OrgId.eq(org_id.to_string()))
                .all(self.conn())
                .await?
                .into_iter()
                .map(|row| {
                    let name = RoleName::parse(&row.name).map_err(corrupt)?;
                    let perms = row
                        .permissions
                        .split_whitespace()
                        .map(Permission::parse)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(corrupt)?;
                    Ok((name, PermissionSet::of(&perms)))
                })
                .collect::<Result<HashMap<_, _>, StoreError>>()
                .map(Arc::new)
        };
        let all = self
            .cached(
                |cache| cache.roles(org_id),
                load,
                |entries, roles| entries.keep_roles(org_id, roles),
            )
            .await?;
        Ok(names
            .iter()
            .filter_map(|name| all.get(name).map(|perms| (name.clone(), *perms)))
            .collect())
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

    async fn bump_version(&self, user_id: UserId) -> Result<(), StoreError> {
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

fn login_with_of(row: &users::Model) -> Result<Option<LoginWith>, StoreError> {
    row.login_with
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(corrupt)
}

/// Whether the user's lock is in force, given [`lock_cutoff`].
fn locked_now(row: &users::Model, cutoff: Option<DateTime<Utc>>) -> bool {
    row.locked_at
        .is_some_and(|at| cutoff.is_none_or(|cutoff| at > cutoff))
}

/// Locks set after this instant are still in force; `None` means locks last
/// until an admin unlocks.
fn lock_cutoff(org: &OrgSettings) -> Option<DateTime<Utc>> {
    if org.lockout_duration.is_zero() {
        None
    } else {
        chrono::Duration::from_std(org.lockout_duration)
            .ok()
            .map(|d| Utc::now() - d)
    }
}

pub(super) fn members_of(teams: &[TeamId]) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(team_members::Column::UserId)
        .from(team_members::Entity)
        .and_where(team_members::Column::TeamId.is_in(teams.iter().map(ToString::to_string)))
        .to_owned()
}

pub(super) fn scope_condition(scope: &UserScope) -> Condition {
    let is_me = |me: &Option<UserId>| match me {
        Some(me) => users::Column::Id.eq(me.to_string()),
        None => Expr::value(false),
    };
    match scope {
        UserScope::Org => Condition::all(),
        UserScope::Teams { teams, me } => Condition::any()
            .add(is_me(me))
            .add(users::Column::Id.in_subquery(members_of(teams))),
        UserScope::Me(me) => Condition::all().add(is_me(me)),
    }
}

/// Escapes LIKE's wildcards so a query matches literally.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
