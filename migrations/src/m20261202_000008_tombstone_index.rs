//! `ListDeletedUsers` reads an org's tombstones newest first, page by page:
//! this index serves each page in that order without sorting the org's
//! tombstones.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("user_tombstones_org_deleted")
                .table(UserTombstones::Table)
                .col(UserTombstones::OrgId)
                .col(UserTombstones::DeletedAt)
                .col(UserTombstones::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("user_tombstones_org_deleted")
                .table(UserTombstones::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum UserTombstones {
    Table,
    OrgId,
    DeletedAt,
    Id,
}
