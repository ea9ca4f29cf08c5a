//! What can go wrong in the store, told apart where a caller's answer
//! depends on it: a conflict, a database that cannot be reached now (so the
//! RPC answers `UNAVAILABLE`), one that cannot be opened at start-up (named
//! by where it was looked for), or a bug.

use sea_orm::{DbErr, RuntimeErr, SqlErr};

use crate::{domain::OrgId, error::Error};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the change.
    #[error("conflict: {0}")]
    Conflict(Unique),
    /// A stored value no longer parses into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The org a caller was resolved in is gone: it was deleted meanwhile.
    #[error("org {0} no longer exists")]
    OrgGone(OrgId),
    /// The database could not be reached or answered that it cannot serve
    /// now: a refused or lost connection, a pool that had no connection to
    /// give within the acquire timeout, a server shutting down or starting
    /// up, an SQLite file locked by another process past the busy timeout.
    /// Retrying later, or on another replica, may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// The database could not be opened at start-up: `target` says where
    /// it was looked for (never a password), `cause` why.
    #[error("cannot open the database at {target}: {cause}")]
    Open { target: String, cause: String },
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            return StoreError::Unavailable(err);
        }
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                StoreError::Conflict(Unique::of(&err, detail))
            }
            _ => StoreError::Db(err),
        }
    }
}

/// The unique rule a refused change broke, where callers answer differently
/// per rule; the rest are [`Unique::Other`] with the database's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unique {
    /// Emails are unique across the service (`users.email`).
    #[error("the email is taken")]
    UserEmail,
    /// Login ids are unique inside an org (`users (org_id, login_id)`).
    #[error("the login id is taken in the org")]
    UserLoginId,
    #[error("{0}")]
    Other(String),
}

impl Unique {
    /// Told apart by what each backend names: PostgreSQL the constraint
    /// (the names the migrations give, or `<table>_<column>_key` for a
    /// column's own UNIQUE), SQLite the columns
    /// (`UNIQUE constraint failed: users.email`), since it keeps no names.
    fn of(err: &DbErr, detail: String) -> Self {
        let (DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
            err
        else {
            return Unique::Other(detail);
        };
        let Some(db) = sqlx.as_database_error() else {
            return Unique::Other(detail);
        };
        let rule = match db.constraint() {
            Some(name) => name,
            None => db
                .message()
                .strip_prefix("UNIQUE constraint failed: ")
                .unwrap_or_default(),
        };
        match rule {
            "users_email_key" | "users.email" => Unique::UserEmail,
            "users_org_login_id" | "users.org_id, users.login_id" => Unique::UserLoginId,
            _ => Unique::Other(detail),
        }
    }
}

/// Whether a database error means "cannot be reached now" rather than a
/// refusal of the statement itself (a constraint, a bug).
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        // Whatever stops a connection from being made: refused, closed
        // during the handshake, garbage instead of the server's answer.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(err)) | DbErr::Query(RuntimeErr::SqlxError(err)) => {
            sqlx_unavailable(err)
        }
        _ => false,
    }
}

fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match err {
        // A connection that broke mid-statement reads as I/O or protocol
        // errors (the server's bytes stopped, or made no sense).
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => true,
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Class 08: connection exceptions; 57P01-57P03: the server is
                // shutting down, crashed or starting up; 53300: no connection
                // slot left.
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            } else {
                // SQLite's primary code is the low byte of the extended one:
                // 5 SQLITE_BUSY, 6 SQLITE_LOCKED (another connection holds the
                // file past the busy timeout).
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            }
        }
        _ => false,
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                // Debug only: health logs each outage once, as it begins and
                // ends, instead of once per refused RPC.
                tracing::debug!(error = %cause, "database unavailable");
                Error::database_unavailable()
            }
            StoreError::OrgGone(_) => Error::org_not_found(),
            err => Error::internal(err),
        }
    }
}

/// Why the database at `url` could not be opened, and where that is. The
/// pool says only that it timed out, so for PostgreSQL one direct
/// connection attempt finds the cause (refused, unknown host, no such
/// database, authentication).
pub(super) async fn open_failure(url: &str, err: DbErr) -> StoreError {
    use sea_orm::sqlx::{
        Connection,
        postgres::{PgConnectOptions, PgConnection},
        sqlite::SqliteConnectOptions,
    };
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if let Some(opts) = postgres
        .then(|| url.parse::<PgConnectOptions>().ok())
        .flatten()
    {
        let target = format!(
            "PostgreSQL {}:{} (database {}, user {})",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or(opts.get_username()),
            opts.get_username()
        );
        let cause = match PgConnection::connect_with(&opts).await {
            Ok(conn) => {
                let _ = conn.close().await;
                err.to_string()
            }
            Err(cause) => cause.to_string(),
        };
        return StoreError::Open { target, cause };
    }
    let target = match url.parse::<SqliteConnectOptions>() {
        Ok(opts) => format!("SQLite file {}", opts.get_filename().display()),
        Err(_) => "an unreadable URL (expected sqlite://FILE or postgres://…)".into(),
    };
    StoreError::Open {
        target,
        cause: err.to_string(),
    }
}
