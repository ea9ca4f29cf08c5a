//! The user lifecycle: suspension reasons, invitations, avatars and the
//! tombstones that keep a deleted user's id, name and email for history.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(string_null(Users::SuspendReason))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(boolean(Users::HasAvatar).default(false))
                .to_owned(),
        )
        .await?;

        // No foreign key to users: a revoked invitation outlives its pending
        // user, so its link can still say "revoked" rather than "unknown".
        m.create_table(
            Table::create()
                .table(Invites::Table)
                .col(string(Invites::Id).primary_key())
                .col(string(Invites::OrgId))
                .col(string(Invites::UserId))
                .col(string_uniq(Invites::TokenHash))
                .col(timestamp_with_time_zone(Invites::CreatedAt))
                .col(timestamp_with_time_zone(Invites::ExpiresAt))
                .col(timestamp_with_time_zone_null(Invites::UsedAt))
                .col(timestamp_with_time_zone_null(Invites::RevokedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("invites_user")
                .table(Invites::Table)
                .col(Invites::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Avatars::Table)
                .col(string(Avatars::UserId).primary_key())
                .col(string(Avatars::ContentType))
                .col(blob(Avatars::Image))
                .col(timestamp_with_time_zone(Avatars::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Avatars::Table, Avatars::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(UserTombstones::Table)
                .col(string(UserTombstones::Id).primary_key())
                .col(string(UserTombstones::OrgId))
                .col(string(UserTombstones::Email))
                .col(string(UserTombstones::DisplayName))
                .col(timestamp_with_time_zone(UserTombstones::DeletedAt))
                .col(string_null(UserTombstones::DeletedBy))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UserTombstones::Table.into_iden(),
            Avatars::Table.into_iden(),
            Invites::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in [Users::HasAvatar, Users::SuspendReason] {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    SuspendReason,
    HasAvatar,
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Id,
    OrgId,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Avatars {
    Table,
    UserId,
    ContentType,
    Image,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserTombstones {
    Table,
    Id,
    OrgId,
    Email,
    DisplayName,
    DeletedAt,
    DeletedBy,
}
