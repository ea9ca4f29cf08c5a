//! A trigram index over `users.search_text`, so a ListUsers query (a
//! substring) reads the users that contain it instead of every user of the
//! org.
//!
//! - PostgreSQL: a GIN `gin_trgm_ops` index (pg_trgm, a trusted extension),
//!   which `LIKE '%…%'` uses directly; the planner weighs it against the
//!   (org, sort key) index from the column's statistics.
//! - SQLite: an FTS5 table with the trigram tokenizer over the same column,
//!   external content on `users` (the text is not stored twice), kept in step
//!   by triggers. Its rowids are `users`' rowids, which VACUUM keeps because
//!   `users` has indexes; `INSERT INTO users_search(users_search)
//!   VALUES('rebuild')` rebuilds it from `users` should it ever drift.
//!   `case_sensitive 0` folds case per character, so a trigram match is never
//!   narrower than the `LIKE` the query keeps beside it.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_UP: &[&str] = &[
    // No per-row token counts (`columnsize=0`): they serve ranking, which a
    // listing sorted by name never asks for.
    "CREATE VIRTUAL TABLE users_search USING fts5(\
     search_text, content='users', tokenize='trigram case_sensitive 0', columnsize=0)",
    "CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN \
     INSERT INTO users_search(rowid, search_text) VALUES (new.rowid, new.search_text); \
     END",
    "CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN \
     INSERT INTO users_search(users_search, rowid, search_text) \
     VALUES ('delete', old.rowid, old.search_text); \
     END",
    // Most updates of a user (sign-ins, locks, versions) leave the text alone.
    "CREATE TRIGGER users_search_update AFTER UPDATE OF search_text ON users \
     WHEN old.search_text IS NOT new.search_text BEGIN \
     INSERT INTO users_search(users_search, rowid, search_text) \
     VALUES ('delete', old.rowid, old.search_text); \
     INSERT INTO users_search(rowid, search_text) VALUES (new.rowid, new.search_text); \
     END",
    "INSERT INTO users_search(users_search) VALUES ('rebuild')",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER users_search_update",
    "DROP TRIGGER users_search_delete",
    "DROP TRIGGER users_search_insert",
    "DROP TABLE users_search",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX users_search_trgm ON users USING gin (search_text gin_trgm_ops)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX users_search_trgm",
    // The extension goes too, unless something else in the database uses it.
    "DO $$ BEGIN DROP EXTENSION IF EXISTS pg_trgm; \
     EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, SQLITE_UP, POSTGRES_UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, SQLITE_DOWN, POSTGRES_DOWN).await
    }
}

async fn run(m: &SchemaManager<'_>, sqlite: &[&str], postgres: &[&str]) -> Result<(), DbErr> {
    let statements = match m.get_database_backend() {
        DbBackend::Sqlite => sqlite,
        DbBackend::Postgres => postgres,
        other => {
            return Err(DbErr::Migration(format!(
                "no user search index for {other:?}"
            )));
        }
    };
    for statement in statements {
        m.get_connection().execute_unprepared(statement).await?;
    }
    Ok(())
}
