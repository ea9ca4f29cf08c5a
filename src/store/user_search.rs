//! Listing users: filters, the caller's scope, free-text search (a
//! trigram index on each store, and the in-memory one of
//! [`super::user_index`] in front) and keyset paging in sort order.

use std::sync::Arc;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
    sea_query::{Alias, Expr, Func, LikeExpr, Query},
};

use super::{
    Repo, StoreError,
    cache::Cache,
    entities::{presence, team_members, user_roles, users},
    escape_like,
    user_index::{Build, IndexedUser, Readiness},
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

/// Users reloaded per statement when refreshing the in-memory index; each
/// is also an `IN` list of hydration, well under SQLite's 32,766 bound
/// values.
const INDEX_CHUNK: usize = 2_000;
/// Users read per statement when building the index: a build of 100,000
/// users is 40 statements, not long queued behind the listings it relieves.
const BUILD_CHUNK: u64 = 10_000;
/// Users indexed between two yields of a build.
const ADD_SLICE: usize = 1_000;
/// How long a listing waits for its org's index to be built before it
/// reads the database instead: 100,000 users take about a second.
const BUILD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Repo<'_, DatabaseConnection> {
    /// Up to `limit` users matching `filter`, ordered by sort key then id,
    /// starting after `after`. A query listing without a presence filter
    /// (presence is not in the index) is answered from memory once the org
    /// is indexed.
    pub async fn list_users(
        &self,
        org: &OrgSettings,
        filter: &UserFilter,
        after: Option<&UserPageKey>,
        limit: u64,
    ) -> Result<Vec<(UserPageKey, User)>, StoreError> {
        if let (Some(cache), Some(query), None) =
            (self.cache, &filter.criteria.query, filter.criteria.presence)
            && let Some(found) = self
                .search_index(cache, org, filter, query, after, limit)
                .await?
        {
            return Ok(found);
        }
        self.list_users_in_db(org, filter, after, limit).await
    }

    /// The listing from the in-memory index, refreshed first; `None` when
    /// the org's index is not ready within [`BUILD_WAIT`] (building it, if
    /// nobody is).
    async fn search_index(
        &self,
        cache: &Arc<Cache>,
        org: &OrgSettings,
        filter: &UserFilter,
        query: &str,
        after: Option<&UserPageKey>,
        limit: u64,
    ) -> Result<Option<Vec<(UserPageKey, User)>>, StoreError> {
        let index = cache.user_index();
        for attempt in 0..2 {
            let built = index.built();
            tokio::pin!(built);
            built.as_mut().enable();
            match index.readiness(org.org_id) {
                Readiness::Unavailable => return Ok(None),
                Readiness::Build(build) => {
                    spawn_build(self.conn().clone(), cache.clone(), org.clone(), build);
                }
                Readiness::Building => {}
                Readiness::Ready => break,
                Readiness::Refresh(..) => {
                    self.refresh_index(cache, org).await?;
                    break;
                }
            }
            if attempt == 1 || tokio::time::timeout(BUILD_WAIT, built).await.is_err() {
                return Ok(None);
            }
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(index.search(org, filter, query, after, limit))
    }

    /// Reloads the org's users changed since its index's last refresh.
    async fn refresh_index(&self, cache: &Cache, org: &OrgSettings) -> Result<(), StoreError> {
        let index = cache.user_index();
        let _turn = index.refresh_turn().await;
        // Asked again with the turn held: what was pending may have been
        // refreshed meanwhile, and more may have changed.
        if let Readiness::Refresh(ids, upto) = index.readiness(org.org_id) {
            let mut reloaded = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(INDEX_CHUNK) {
                let rows = users::Entity::find()
                    .filter(users::Column::OrgId.eq(org.org_id.to_string()))
                    .filter(users::Column::Id.is_in(chunk.iter().map(ToString::to_string)))
                    .all(self.conn())
                    .await?;
                reloaded.extend(self.indexed_users(org, rows).await?);
            }
            index.apply(org.org_id, &ids, reloaded, upto);
        }
        Ok(())
    }
}

/// Reads every user of the org into a new index, in a task of its own
/// (so that a listing that gives up waiting does not stop it).
fn spawn_build(db: DatabaseConnection, cache: Arc<Cache>, org: OrgSettings, mut build: Build) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let repo = Repo {
            conn: &db,
            effects: None,
            cache: None,
        };
        match repo.add_all_users(&org, &mut build).await {
            Ok(count) => {
                if cache.user_index().install(build) {
                    tracing::info!(
                        org_id = %org.org_id,
                        users = count,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "user search index built"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(org_id = %org.org_id, %err, "user search index not built");
                cache.user_index().abandon(build);
            }
        }
    });
}

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Adds every user of the org to `build`, read in sort order
    /// [`BUILD_CHUNK`] at a time (so that what is read is not all held at
    /// once beside what is built); returns how many.
    async fn add_all_users(
        &self,
        org: &OrgSettings,
        build: &mut Build,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut after: Option<UserPageKey> = None;
        loop {
            let mut select =
                users::Entity::find().filter(users::Column::OrgId.eq(org.org_id.to_string()));
            if let Some(after) = &after {
                select = select.filter(sort_order_after(after));
            }
            let rows = select
                .order_by_asc(users::Column::SortKey)
                .order_by_asc(users::Column::Id)
                .limit(BUILD_CHUNK)
                .all(self.conn())
                .await?;
            let full = rows.len() as u64 == BUILD_CHUNK;
            after = rows.last().map(|last| UserPageKey {
                sort_key: last.sort_key.clone(),
                user_id: last.id.clone(),
            });
            let mut users = self.indexed_users(org, rows).await?.into_iter();
            // Indexing takes about 10 µs a user: in slices, yielding
            // between them, so this worker thread's other tasks go on.
            loop {
                let slice: Vec<IndexedUser> = users.by_ref().take(ADD_SLICE).collect();
                if slice.is_empty() {
                    break;
                }
                count += slice.len();
                build.add(slice);
                tokio::task::yield_now().await;
            }
            if !full {
                return Ok(count);
            }
        }
    }

    /// Rows as the index holds them: hydrated, with when each was locked.
    async fn indexed_users(
        &self,
        org: &OrgSettings,
        rows: Vec<users::Model>,
    ) -> Result<Vec<IndexedUser>, StoreError> {
        let locks: Vec<_> = rows.iter().map(|row| row.locked_at).collect();
        let users = self.hydrate(org, rows).await?;
        Ok(users
            .into_iter()
            .zip(locks)
            .map(|(user, locked_at)| IndexedUser { user, locked_at })
            .collect())
    }

    /// [`Repo::list_users`] from the database.
    async fn list_users_in_db(
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
            select = select.filter(sort_order_after(after));
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

/// The users after `key` in (sort key, id) order.
fn sort_order_after(key: &UserPageKey) -> Condition {
    Condition::any()
        .add(users::Column::SortKey.gt(key.sort_key.as_str()))
        .add(
            Condition::all()
                .add(users::Column::SortKey.eq(key.sort_key.as_str()))
                .add(users::Column::Id.gt(key.user_id.as_str())),
        )
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
