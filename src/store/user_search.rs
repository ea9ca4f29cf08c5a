//! Listing users: filters, the caller's scope, free-text search (a
//! trigram index on each store) and keyset paging in sort order.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement,
    sea_query::{Alias, Expr, Func, LikeExpr, Query},
};

use super::{
    Repo, StoreError,
    entities::{presence, team_members, user_roles, users},
    escape_like,
    users::lock_cutoff,
};
use crate::domain::{
    OrgSettings, PresenceStatus, TeamId, User, UserFilter, UserId, UserPageKey, UserScope,
};

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

impl<C: ConnectionTrait> Repo<'_, C> {
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
