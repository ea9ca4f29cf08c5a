//! The only module that touches the database. Repositories return domain
//! types; sea-orm stays inside.
//!
//! Reads go through [`Store::read`]; every change goes through a [`WriteTx`],
//! which on SQLite begins `IMMEDIATE` (so two writers never deadlock upgrading
//! a read lock) and rolls back unless committed.

mod api_keys;
mod audit;
mod avatars;
mod entities;
mod idempotency;
mod imports;
mod invites;
mod orgs;
mod presence;
mod roles;
mod sessions;
mod teams;
mod users;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use audit::{ActionFilter, AuditCriteria, AuditEntry, AuditPageKey, AuditRecord};
pub use imports::{ImportCriteria, ImportOrder};
pub use invites::InviteRecord;
pub use presence::{LogBounds, PresenceRecord, SequenceGuard};
pub use sessions::SessionRecord;
pub use users::{CredentialRecord, UserCriteria, UserFilter, UserPageKey};

use crate::{domain::OrgId, error::Error};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the change; the detail names the constraint
    /// or its columns.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value no longer parses into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => StoreError::Conflict(detail),
            _ => StoreError::Db(err),
        }
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Error::internal(err)
    }
}

/// A database handle, cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    signal: Arc<PresenceSignal>,
    /// On SQLite, which has one writer, write transactions queue here in
    /// turn instead of polling in SQLite's busy handler, whose sleeps (up to
    /// 100 ms each) would make writes under contention slow and unfair.
    write_turn: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// Which orgs have committed presence events that this process has not
/// read yet: set after a local commit and, on PostgreSQL, by other
/// replicas' notifications (see [`Store::listen_presence`]).
#[derive(Default)]
pub struct PresenceSignal {
    pending: Mutex<HashSet<OrgId>>,
    notify: tokio::sync::Notify,
}

impl PresenceSignal {
    pub fn raise(&self, org_id: OrgId) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(org_id);
        self.notify.notify_one();
    }

    /// Waits until an org is raised, then returns every raised org.
    pub async fn wait(&self) -> HashSet<OrgId> {
        loop {
            let raised =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
            if !raised.is_empty() {
                return raised;
            }
            self.notify.notified().await;
        }
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut opts = ConnectOptions::new(url);
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10));
        if url.starts_with("sqlite:") {
            opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        } else {
            opts.max_connections(32);
        }
        let write_turn = url
            .starts_with("sqlite:")
            .then(|| Arc::new(tokio::sync::Mutex::new(())));
        let db = Database::connect(opts).await?;
        Ok(Self {
            db,
            signal: Arc::default(),
            write_turn,
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    pub fn read(&self) -> Repo<'_, DatabaseConnection> {
        Repo {
            conn: &self.db,
            touched: None,
        }
    }

    /// The connection pool itself, for tools that measure the database
    /// next to Roster (the benchmark's storage ceiling); Roster's own code
    /// goes through [`Store::read`] and [`Store::write`].
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn presence_signal(&self) -> Arc<PresenceSignal> {
        self.signal.clone()
    }

    /// On PostgreSQL, raises the signal for every org another replica
    /// announces; returns at once on SQLite (one process writes). Reconnects
    /// after a lost connection and then raises `on_reconnect`'s orgs, since
    /// announcements made meanwhile were missed.
    pub async fn listen_presence(
        &self,
        on_reconnect: impl Fn() -> Vec<OrgId>,
    ) -> Result<(), StoreError> {
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let pool = self.db.get_postgres_connection_pool();
        loop {
            let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(%err, "presence listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(err) = listener.listen(presence::PRESENCE_CHANNEL).await {
                tracing::warn!(%err, "presence listener cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            for org_id in on_reconnect() {
                self.signal.raise(org_id);
            }
            loop {
                match listener.recv().await {
                    Ok(note) => match OrgId::parse(note.payload()) {
                        Ok(org_id) => self.signal.raise(org_id),
                        Err(_) => tracing::warn!(
                            payload = note.payload(),
                            "unknown presence notification"
                        ),
                    },
                    Err(err) => {
                        tracing::warn!(%err, "presence listener lost its connection; reconnecting");
                        break;
                    }
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
            touched: Mutex::default(),
            signal: self.signal.clone(),
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
    /// Orgs whose presence log this transaction appended to.
    touched: Mutex<HashSet<OrgId>>,
    signal: Arc<PresenceSignal>,
    /// Held until the transaction ends (see `Store::write_turn`).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub fn repo(&self) -> Repo<'_, DatabaseTransaction> {
        Repo {
            conn: &self.tx,
            touched: Some(&self.touched),
        }
    }

    /// Commits, then wakes this process's presence readers for the orgs
    /// whose log grew.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        let touched = self
            .touched
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        for org_id in touched {
            self.signal.raise(org_id);
        }
        Ok(())
    }
}

/// Repository methods over a connection or a transaction.
pub struct Repo<'a, C> {
    conn: &'a C,
    touched: Option<&'a Mutex<HashSet<OrgId>>>,
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

    /// Notes that the transaction appended presence events for the org.
    fn touched(&self, org_id: OrgId) {
        if let Some(touched) = self.touched {
            touched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(org_id);
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Counts stored as SQL integers are never negative; clamp rather than trust.
fn non_negative(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
