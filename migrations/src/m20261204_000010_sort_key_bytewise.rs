//! Users are listed in `sort_key` order, and the in-memory search index
//! answers in the same order compared bytewise. SQLite compares text
//! bytewise already (`BINARY`); on PostgreSQL the column took the
//! database's collation, which under a locale such as `en_US.UTF-8` orders
//! differently (spaces and punctuation ignored at first). The `"C"`
//! collation makes both stores and the index agree; PostgreSQL rebuilds the
//! `(org_id, sort_key, id)` index with it.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        collate(m, "\"C\"").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        collate(m, "\"default\"").await
    }
}

async fn collate(m: &SchemaManager<'_>, collation: &str) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    m.get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE users ALTER COLUMN sort_key TYPE varchar COLLATE {collation}"
        ))
        .await?;
    Ok(())
}
