//! The presence log as a history for activity reports: each event also
//! records how many chats the user had open before it, so the state at the
//! start of a report's range is known from the first event after it, and an
//! index finds one user's events by time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Events written before this migration count as having had no chats
        // open before them.
        m.alter_table(
            Table::alter()
                .table(PresenceEvents::Table)
                .add_column(integer(PresenceEvents::PrevActiveChats).default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("presence_events_user_time")
                .table(PresenceEvents::Table)
                .col(PresenceEvents::OrgId)
                .col(PresenceEvents::UserId)
                .col(PresenceEvents::OccurredAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("presence_events_user_time")
                .table(PresenceEvents::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(PresenceEvents::Table)
                .drop_column(PresenceEvents::PrevActiveChats)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum PresenceEvents {
    Table,
    OrgId,
    UserId,
    OccurredAt,
    PrevActiveChats,
}
