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
mod invites;
mod orgs;
mod roles;
mod sessions;
mod teams;
mod users;

use std::time::Duration;

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use audit::{ActionFilter, AuditCriteria, AuditEntry, AuditPageKey, AuditRecord};
pub use invites::InviteRecord;
pub use sessions::SessionRecord;
pub use users::{CredentialRecord, UserCriteria, UserFilter, UserPageKey};

use crate::error::Error;

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
        let db = Database::connect(opts).await?;
        Ok(Self { db })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    pub fn read(&self) -> Repo<'_, DatabaseConnection> {
        Repo(&self.db)
    }

    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        let tx = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok(WriteTx(tx))
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// A write transaction; dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx(DatabaseTransaction);

impl WriteTx {
    pub fn repo(&self) -> Repo<'_, DatabaseTransaction> {
        Repo(&self.0)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await?;
        Ok(())
    }
}

/// Repository methods over a connection or a transaction.
pub struct Repo<'a, C>(&'a C);

impl<C> Clone for Repo<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Repo<'_, C> {}

impl<C: ConnectionTrait> Repo<'_, C> {
    fn conn(&self) -> &C {
        self.0
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Counts stored as SQL integers are never negative; clamp rather than trust.
fn non_negative(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
