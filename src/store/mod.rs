//! The only module that touches the database. Repositories return domain
//! types; sea-orm stays inside.
//!
//! Reads go through [`Store::read`]; every change goes through a [`WriteTx`],
//! which on SQLite begins `IMMEDIATE` (so two writers never deadlock upgrading
//! a read lock) and rolls back unless committed.

mod activity;
mod api_keys;
mod audit;
mod avatars;
mod cache;
mod credentials;
mod entities;
mod error;
mod idempotency;
mod imports;
mod invites;
mod orgs;
mod platform;
mod presence;
mod presence_log;
mod roles;
mod sessions;
mod signal;
mod teams;
mod user_index;
mod user_search;
mod users;

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use audit::AuditRecord;
pub use cache::Change;
pub use credentials::{CredentialRecord, LoginCandidate};
use error::open_failure;
pub use error::{StoreError, Unique};
pub use invites::InviteRecord;
pub use presence::{PresenceRecord, SequenceGuard};
pub use presence_log::LogBounds;
pub use sessions::SessionRecord;
use signal::presence_announcement;
pub use signal::{Pending, PresenceSignal};

use crate::domain::{OrgId, PresenceEvent};

use cache::Cache;

/// The PostgreSQL channel on which a commit names what it changed, so that
/// every replica's [`Cache`] forgets it.
const CHANGE_CHANNEL: &str = "roster_changes";
/// A notification's payload must stay under 8,000 bytes; past this, it says
/// "everything" instead of naming each change.
const MAX_CHANGE_PAYLOAD: usize = 7_000;

/// A database handle, cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    signal: Arc<PresenceSignal>,
    /// Names this process in its presence notifications, so that it skips
    /// its own: it has taken those events in from memory already.
    replica: Arc<str>,
    /// On SQLite, which has one writer, write transactions queue here in
    /// turn instead of polling in SQLite's busy handler, whose sleeps (up to
    /// 100 ms each) would make writes under contention slow and unfair.
    write_turn: Option<Arc<tokio::sync::Mutex<()>>>,
    /// `None` when configured off.
    cache: Option<Arc<Cache>>,
    org_changes: OrgChanges,
}

/// Announces, after commit, the orgs whose settings, roles, teams or
/// lifecycle changed, here or (on PostgreSQL) on another replica; `None`
/// means "perhaps any". Receivers that fall behind see `Lagged` and should
/// assume any org changed.
pub type OrgChanges = tokio::sync::broadcast::Sender<Option<OrgId>>;

/// The connection pool's counters (see [`Store::pool_usage`]).
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`), with
    /// a cache of sessions and users of `cache_capacity` entries each (0:
    /// none; see [`cache`]). A statement that cannot get a connection
    /// within `acquire_timeout` (on SQLite: the write lock) fails with
    /// [`StoreError::Unavailable`], so callers learn of an outage in about
    /// that time instead of queueing behind it.
    pub async fn connect(
        url: &str,
        cache_capacity: usize,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut opts = ConnectOptions::new(url);
        opts.sqlx_logging(false).acquire_timeout(acquire_timeout);
        if url.starts_with("sqlite:") {
            opts.max_connections(8).map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(acquire_timeout)
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        } else {
            opts.max_connections(32);
        }
        let write_turn = url
            .starts_with("sqlite:")
            .then(|| Arc::new(tokio::sync::Mutex::new(())));
        let db = match Database::connect(opts).await {
            Ok(db) => db,
            Err(err) => return Err(open_failure(url, err).await),
        };
        let cache =
            NonZeroUsize::new(cache_capacity).map(|capacity| Arc::new(Cache::new(capacity)));
        // One process writes an SQLite file: every change is known here.
        // PostgreSQL's replicas learn of each other's through `listen`.
        if let Some(cache) = cache.as_ref().filter(|_| write_turn.is_some()) {
            cache.enable();
        }
        Ok(Self {
            db,
            signal: Arc::default(),
            replica: uuid::Uuid::now_v7().to_string().into(),
            write_turn,
            cache,
            org_changes: tokio::sync::broadcast::channel(64).0,
        })
    }

    /// The migrations this database lacks, by name, without changing it.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            migrations::Migrator::get_pending_migrations_read_only(&self.db)
                .await?
                .iter()
                .map(|m| m.name().to_owned())
                .collect(),
        )
    }

    /// Whether the database answers a trivial query now; for health.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    pub fn read(&self) -> Repo<'_, DatabaseConnection> {
        Repo {
            conn: &self.db,
            effects: None,
            cache: self.cache.as_ref(),
        }
    }

    /// The connection pool itself, for tools that measure the database
    /// next to Roster (the benchmark's storage ceiling); Roster's own code
    /// goes through [`Store::read`] and [`Store::write`].
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// How many connections the pool holds now, idle among them, and at
    /// most; read from the pool's counters, without waiting.
    pub fn pool_usage(&self) -> PoolUsage {
        let (open, idle, max) = match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        };
        PoolUsage {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    pub fn presence_signal(&self) -> Arc<PresenceSignal> {
        self.signal.clone()
    }

    /// Follows the orgs that change from now on (see [`OrgChanges`]).
    pub fn org_changes(&self) -> tokio::sync::broadcast::Receiver<Option<OrgId>> {
        self.org_changes.subscribe()
    }

    /// On PostgreSQL, follows the other replicas' commits: raises the
    /// presence signal for every org they announce and forgets the cached
    /// reads they changed. Returns at once on SQLite (one process writes).
    /// Reconnects after a lost connection, with the cache off meanwhile and
    /// empty after, and raises `on_reconnect`'s orgs, since announcements
    /// made meanwhile were missed.
    pub async fn listen(&self, on_reconnect: impl Fn() -> Vec<OrgId>) -> Result<(), StoreError> {
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let pool = self.db.get_postgres_connection_pool();
        loop {
            if let Some(cache) = &self.cache {
                cache.disable();
            }
            let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(%err, "change listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(err) = listener
                .listen_all([presence::PRESENCE_CHANNEL, CHANGE_CHANNEL])
                .await
            {
                tracing::warn!(%err, "change listener cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            if let Some(cache) = &self.cache {
                cache.enable();
            }
            for org_id in on_reconnect() {
                self.signal.raise(org_id);
            }
            loop {
                match listener.recv().await {
                    Ok(note) if note.channel() == CHANGE_CHANNEL => self.forget(note.payload()),
                    Ok(note) => match presence_announcement(note.payload(), &self.replica) {
                        Ok(Some(org_id)) => self.signal.raise(org_id),
                        Ok(None) => {}
                        Err(_) => tracing::warn!(
                            payload = note.payload(),
                            "unknown presence notification"
                        ),
                    },
                    Err(err) => {
                        tracing::warn!(%err, "change listener lost its connection; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    /// Applies another replica's change notification to the cache.
    fn forget(&self, payload: &str) {
        let changes: Option<Vec<Change>> = payload.split(',').map(Change::decode).collect();
        match changes {
            Some(changes) => {
                announce_orgs(&self.org_changes, &changes);
                if let Some(cache) = &self.cache {
                    cache.invalidate(changes);
                }
            }
            // "*", or anything this version cannot read.
            None => {
                let _ = self.org_changes.send(None);
                if let Some(cache) = &self.cache {
                    cache.invalidate_all();
                }
            }
        }
    }

    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        let turn = match &self.write_turn {
            Some(turn) => Some(turn.clone().lock_owned().await),
            None => None,
        };
        let tx = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok(WriteTx {
            tx,
            effects: Mutex::default(),
            signal: self.signal.clone(),
            replica: self.replica.clone(),
            cache: self.cache.clone(),
            org_changes: self.org_changes.clone(),
            _turn: turn,
        })
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// A write transaction; dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx {
    tx: DatabaseTransaction,
    effects: Mutex<Effects>,
    signal: Arc<PresenceSignal>,
    replica: Arc<str>,
    cache: Option<Arc<Cache>>,
    org_changes: OrgChanges,
    /// Held until the transaction ends (see `Store::write_turn`).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub fn repo(&self) -> Repo<'_, DatabaseTransaction> {
        Repo {
            conn: &self.tx,
            effects: Some(&self.effects),
            cache: None,
        }
    }

    /// Commits (on PostgreSQL, telling the other replicas what changed),
    /// then forgets the cached reads the transaction changed and hands this
    /// process's presence readers the events it committed.
    pub async fn commit(self) -> Result<(), StoreError> {
        let effects = self
            .effects
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if self.tx.get_database_backend() == sea_orm::DbBackend::Postgres {
            for org_id in effects.presence.keys() {
                self.tx
                    .execute_raw(sea_orm::Statement::from_sql_and_values(
                        sea_orm::DbBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [
                            presence::PRESENCE_CHANNEL.into(),
                            format!("{org_id} {}", self.replica).into(),
                        ],
                    ))
                    .await?;
            }
        }
        if !effects.changes.is_empty()
            && self.tx.get_database_backend() == sea_orm::DbBackend::Postgres
        {
            let mut payload = effects
                .changes
                .iter()
                .map(Change::encode)
                .collect::<Vec<_>>()
                .join(",");
            if payload.len() > MAX_CHANGE_PAYLOAD {
                payload = "*".into();
            }
            self.tx
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANGE_CHANNEL.into(), payload.into()],
                ))
                .await?;
        }
        let committed = self.tx.commit().await;
        let changes: Vec<Change> = effects.changes.into_iter().collect();
        // Forgotten even if the commit failed: it may have happened anyway.
        if let Some(cache) = &self.cache {
            cache.invalidate(changes.iter().copied());
        }
        committed?;
        announce_orgs(&self.org_changes, &changes);
        for (org_id, events) in effects.presence {
            self.signal.committed(org_id, events);
        }
        Ok(())
    }
}

/// Announces the orgs among `changes`; nobody listening is fine.
fn announce_orgs(org_changes: &OrgChanges, changes: &[Change]) {
    for change in changes {
        if let Change::Org(org_id) = change {
            let _ = org_changes.send(Some(*org_id));
        }
    }
}

/// What a write transaction did that others must hear of once it commits.
#[derive(Default)]
struct Effects {
    /// The presence events appended, per org, in sequence order.
    presence: HashMap<OrgId, Vec<PresenceEvent>>,
    /// Cached reads it changed.
    changes: HashSet<Change>,
}

/// Repository methods over a connection or a transaction.
pub struct Repo<'a, C> {
    conn: &'a C,
    /// Set in a transaction.
    effects: Option<&'a Mutex<Effects>>,
    /// Set outside a transaction, when the store has one.
    cache: Option<&'a Arc<Cache>>,
}

impl<C> Clone for Repo<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Repo<'_, C> {}

impl<C: ConnectionTrait> Repo<'_, C> {
    fn conn(&self) -> &C {
        self.conn
    }

    /// Notes the presence events the transaction appended for the org.
    fn appended(&self, org_id: OrgId, events: &[PresenceEvent]) {
        if let Some(effects) = self.effects {
            effects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .presence
                .entry(org_id)
                .or_default()
                .extend_from_slice(events);
        }
    }

    /// Notes a change to what the cache may hold; called after the write.
    /// Outside a transaction the write has already committed, so the cache
    /// forgets it at once.
    fn changed(&self, change: Change) {
        match (self.effects, self.cache) {
            (Some(effects), _) => {
                effects
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .changes
                    .insert(change);
            }
            (None, Some(cache)) => cache.invalidate([change]),
            (None, None) => {}
        }
    }

    /// A read served from the cache when it holds the answer; otherwise
    /// `load`ed, and kept by `keep` unless a change overlapped the load.
    async fn cached<T: Clone>(
        &self,
        hit: impl FnOnce(&Cache) -> Option<T>,
        load: impl Future<Output = Result<T, StoreError>>,
        keep: impl FnOnce(&mut cache::Entries, T),
    ) -> Result<T, StoreError> {
        let Some(cache) = self.cache else {
            return load.await;
        };
        if let Some(found) = hit(cache) {
            return Ok(found);
        }
        let ticket = cache.ticket();
        let loaded = load.await?;
        if let Some(ticket) = ticket {
            cache.keep(ticket, |entries| keep(entries, loaded.clone()));
        }
        Ok(loaded)
    }
}

/// The rows after (`at`, `id`) in a listing ordered newest first by `time`,
/// then by `id` descending: the next page's keyset condition.
fn newest_first_after<C: sea_orm::ColumnTrait>(
    time: C,
    id_column: C,
    at: chrono::DateTime<chrono::Utc>,
    id: &str,
) -> sea_orm::Condition {
    sea_orm::Condition::any().add(time.lt(at)).add(
        sea_orm::Condition::all()
            .add(time.eq(at))
            .add(id_column.lt(id)),
    )
}

/// Escapes LIKE's wildcards so a query matches literally (with `\\` as the
/// escape character).
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

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Counts stored as SQL integers are never negative; clamp rather than trust.
fn non_negative(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
