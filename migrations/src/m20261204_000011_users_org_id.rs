//! Users are read by id inside their org (`org_id = ? AND id IN (…)`) for
//! batches of changes. Without statistics SQLite's planner prefers the
//! `(org_id, state)` index to the primary key once the list is long, and
//! scans every user of the org; with this index both columns are searched
//! at once, whatever the list's length, and the rows come in id order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("users_org_id")
                .table(Users::Table)
                .col(Users::OrgId)
                .col(Users::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("users_org_id")
                .table(Users::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    OrgId,
    Id,
}
