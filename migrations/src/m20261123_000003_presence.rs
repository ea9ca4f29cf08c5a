//! Presence: each user's current presence, the per-org sequence counter and
//! the ordered log of presence events that watchers resume from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per user, kept in step with the user's state, roles, teams
        // and capacity in the same transaction as any change to them, so a
        // watcher's snapshot is one query. Team ids are comma-separated.
        m.create_table(
            Table::create()
                .table(Presence::Table)
                .col(string(Presence::UserId).primary_key())
                .col(string(Presence::OrgId))
                .col(string(Presence::Status))
                .col(timestamp_with_time_zone(Presence::StatusChangedAt))
                .col(integer(Presence::ActiveChats))
                .col(timestamp_with_time_zone_null(Presence::LeaseExpiresAt))
                .col(integer(Presence::EffectiveMaxChats))
                .col(boolean(Presence::MaxChatsOverridden))
                .col(text(Presence::TeamIds))
                .col(boolean(Presence::CanHandleChats))
                .col(boolean(Presence::Watched))
                .foreign_key(
                    ForeignKey::create()
                        .from(Presence::Table, Presence::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("presence_org_user")
                .table(Presence::Table)
                .col(Presence::OrgId)
                .col(Presence::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("presence_lease")
                .table(Presence::Table)
                .col(Presence::LeaseExpiresAt)
                .to_owned(),
        )
        .await?;

        // Every presence writer updates its org's row first: the row lock
        // serialises them, so sequence order is commit order.
        m.create_table(
            Table::create()
                .table(PresenceSequences::Table)
                .col(string(PresenceSequences::OrgId).primary_key())
                .col(big_integer(PresenceSequences::LastSequence))
                .to_owned(),
        )
        .await?;

        // No foreign key to users: a deleted user's last events stay for
        // watchers that resume after the deletion.
        m.create_table(
            Table::create()
                .table(PresenceEvents::Table)
                .col(string(PresenceEvents::OrgId))
                .col(big_integer(PresenceEvents::Sequence))
                .col(string(PresenceEvents::UserId))
                .col(string(PresenceEvents::Reason))
                .col(timestamp_with_time_zone(PresenceEvents::OccurredAt))
                .col(string(PresenceEvents::Status))
                .col(timestamp_with_time_zone(PresenceEvents::StatusChangedAt))
                .col(integer(PresenceEvents::ActiveChats))
                .col(integer(PresenceEvents::EffectiveMaxChats))
                .col(boolean(PresenceEvents::MaxChatsOverridden))
                .col(text(PresenceEvents::TeamIds))
                .col(boolean(PresenceEvents::CanHandleChats))
                .col(boolean(PresenceEvents::Watched))
                .col(string(PresenceEvents::PrevStatus))
                .col(text(PresenceEvents::PrevTeamIds))
                .col(boolean(PresenceEvents::PrevWatched))
                .primary_key(
                    Index::create()
                        .col(PresenceEvents::OrgId)
                        .col(PresenceEvents::Sequence),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("presence_events_time")
                .table(PresenceEvents::Table)
                .col(PresenceEvents::OccurredAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PresenceEvents::Table.into_iden(),
            PresenceSequences::Table.into_iden(),
            Presence::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Presence {
    Table,
    UserId,
    OrgId,
    Status,
    StatusChangedAt,
    ActiveChats,
    LeaseExpiresAt,
    EffectiveMaxChats,
    MaxChatsOverridden,
    TeamIds,
    CanHandleChats,
    Watched,
}

#[derive(DeriveIden)]
enum PresenceSequences {
    Table,
    OrgId,
    LastSequence,
}

#[derive(DeriveIden)]
enum PresenceEvents {
    Table,
    OrgId,
    Sequence,
    UserId,
    Reason,
    OccurredAt,
    Status,
    StatusChangedAt,
    ActiveChats,
    EffectiveMaxChats,
    MaxChatsOverridden,
    TeamIds,
    CanHandleChats,
    Watched,
    PrevStatus,
    PrevTeamIds,
    PrevWatched,
}
