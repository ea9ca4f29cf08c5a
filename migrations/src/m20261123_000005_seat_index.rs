//! Seats are counted by org and state (INVITED and ACTIVE users) under the
//! org's lock; this index answers the count from the index alone instead of
//! reading every user row of the org.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("users_org_state")
                .table(Users::Table)
                .col(Users::OrgId)
                .col(Users::State)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("users_org_state")
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
    State,
}
