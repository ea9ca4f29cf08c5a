//! Orgs, users, roles, teams and memberships, credentials, sessions, API keys,
//! audit events and idempotency keys.
//!
//! Ids are UUID text; timestamps are UTC with time zone. Emails are stored
//! normalised (trimmed, lower case) so the unique index enforces the
//! case-insensitive rule.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Orgs::Table)
                .col(string(Orgs::Id).primary_key())
                .col(string_uniq(Orgs::Slug))
                .col(string(Orgs::Name))
                .col(timestamp_with_time_zone(Orgs::CreatedAt))
                .col(integer_null(Orgs::SeatLimit))
                .col(integer(Orgs::DefaultMaxChats))
                .col(integer(Orgs::PasswordMinLength))
                .col(integer(Orgs::LockoutThreshold))
                .col(big_integer(Orgs::LockoutDurationSecs))
                .col(string(Orgs::LoginWith))
                .col(big_integer(Orgs::InviteLifetimeSecs))
                .col(big_integer(Orgs::SessionLifetimeSecs))
                .col(big_integer(Orgs::PresenceLeaseSecs))
                .col(big_integer(Orgs::Version))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(string(Users::Id).primary_key())
                .col(string(Users::OrgId))
                .col(string_uniq(Users::Email))
                .col(string_null(Users::LoginId))
                .col(string(Users::DisplayName))
                .col(string(Users::SortKey))
                .col(text(Users::SearchText))
                .col(string(Users::PublicName))
                .col(string(Users::State))
                .col(timestamp_with_time_zone_null(Users::LockedAt))
                .col(integer_null(Users::MaxChats))
                .col(string_null(Users::LoginWith))
                .col(string(Users::Language))
                .col(string(Users::LandlinePhone))
                .col(string(Users::MobilePhone))
                .col(string(Users::JobTitle))
                .col(string(Users::Location))
                .col(boolean(Users::CanViewColleaguesChats))
                .col(big_integer(Users::Version))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .col(timestamp_with_time_zone_null(Users::LastLoginAt))
                .col(timestamp_with_time_zone_null(Users::LastLogoutAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Users::Table, Users::OrgId)
                        .to(Orgs::Table, Orgs::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_org_login_id")
                .table(Users::Table)
                .col(Users::OrgId)
                .col(Users::LoginId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_org_sort")
                .table(Users::Table)
                .col(Users::OrgId)
                .col(Users::SortKey)
                .col(Users::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Roles::Table)
                .col(string(Roles::OrgId))
                .col(string(Roles::Name))
                .col(string(Roles::Description))
                .col(text(Roles::Permissions))
                .col(big_integer(Roles::Version))
                .col(timestamp_with_time_zone(Roles::CreatedAt))
                .primary_key(Index::create().col(Roles::OrgId).col(Roles::Name))
                .foreign_key(
                    ForeignKey::create()
                        .from(Roles::Table, Roles::OrgId)
                        .to(Orgs::Table, Orgs::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(UserRoles::Table)
                .col(string(UserRoles::UserId))
                .col(string(UserRoles::RoleName))
                .primary_key(
                    Index::create()
                        .col(UserRoles::UserId)
                        .col(UserRoles::RoleName),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(UserRoles::Table, UserRoles::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("user_roles_role")
                .table(UserRoles::Table)
                .col(UserRoles::RoleName)
                .col(UserRoles::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Teams::Table)
                .col(string(Teams::Id).primary_key())
                .col(string(Teams::OrgId))
                .col(string(Teams::Name))
                .col(string(Teams::Description))
                .col(big_integer(Teams::Version))
                .col(timestamp_with_time_zone(Teams::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Teams::Table, Teams::OrgId)
                        .to(Orgs::Table, Orgs::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("teams_org_name")
                .table(Teams::Table)
                .col(Teams::OrgId)
                .col(Teams::Name)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TeamMembers::Table)
                .col(string(TeamMembers::TeamId))
                .col(string(TeamMembers::UserId))
                .primary_key(
                    Index::create()
                        .col(TeamMembers::TeamId)
                        .col(TeamMembers::UserId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TeamMembers::Table, TeamMembers::TeamId)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TeamMembers::Table, TeamMembers::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("team_members_user")
                .table(TeamMembers::Table)
                .col(TeamMembers::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Credentials::Table)
                .col(string(Credentials::UserId).primary_key())
                .col(string(Credentials::PasswordHash))
                .col(boolean(Credentials::PasswordChangeRequired))
                .col(integer(Credentials::FailedLogins))
                .col(timestamp_with_time_zone(Credentials::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Credentials::Table, Credentials::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(string(Sessions::Id).primary_key())
                .col(string(Sessions::OrgId))
                .col(string(Sessions::UserId))
                .col(string_uniq(Sessions::TokenHash))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sessions_user")
                .table(Sessions::Table)
                .col(Sessions::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(string(ApiKeys::Id).primary_key())
                .col(string(ApiKeys::OrgId))
                .col(string(ApiKeys::Name))
                .col(text(ApiKeys::Scopes))
                .col(string_uniq(ApiKeys::SecretHash))
                .col(string(ApiKeys::SecretPrefix))
                .col(string_null(ApiKeys::CreatedBy))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::OrgId)
                        .to(Orgs::Table, Orgs::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("api_keys_org_name")
                .table(ApiKeys::Table)
                .col(ApiKeys::OrgId)
                .col(ApiKeys::Name)
                .unique()
                .to_owned(),
        )
        .await?;

        // Append-only: no foreign key to users, so entries outlive the users they name.
        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(string(AuditEvents::Id).primary_key())
                .col(string(AuditEvents::OrgId))
                .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                .col(string(AuditEvents::ActorKind))
                .col(string_null(AuditEvents::ActorId))
                .col(string(AuditEvents::Action))
                .col(string_null(AuditEvents::TargetUserId))
                .col(string_null(AuditEvents::RequestId))
                .col(string_null(AuditEvents::Peer))
                .col(text(AuditEvents::Details))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_events_org_time")
                .table(AuditEvents::Table)
                .col(AuditEvents::OrgId)
                .col(AuditEvents::OccurredAt)
                .col(AuditEvents::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(string(IdempotencyKeys::OrgId))
                .col(string(IdempotencyKeys::Operation))
                .col(string(IdempotencyKeys::RequestId))
                .col(string(IdempotencyKeys::ResourceId))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::OrgId)
                        .col(IdempotencyKeys::Operation)
                        .col(IdempotencyKeys::RequestId),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Sessions::Table.into_iden(),
            Credentials::Table.into_iden(),
            TeamMembers::Table.into_iden(),
            Teams::Table.into_iden(),
            UserRoles::Table.into_iden(),
            Roles::Table.into_iden(),
            Users::Table.into_iden(),
            Orgs::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
    SeatLimit,
    DefaultMaxChats,
    PasswordMinLength,
    LockoutThreshold,
    LockoutDurationSecs,
    LoginWith,
    InviteLifetimeSecs,
    SessionLifetimeSecs,
    PresenceLeaseSecs,
    Version,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrgId,
    Email,
    LoginId,
    DisplayName,
    SortKey,
    SearchText,
    PublicName,
    State,
    LockedAt,
    MaxChats,
    LoginWith,
    Language,
    LandlinePhone,
    MobilePhone,
    JobTitle,
    Location,
    CanViewColleaguesChats,
    Version,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
    LastLogoutAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    OrgId,
    Name,
    Description,
    Permissions,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserRoles {
    Table,
    UserId,
    RoleName,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    OrgId,
    Name,
    Description,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TeamMembers {
    Table,
    TeamId,
    UserId,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    UserId,
    PasswordHash,
    PasswordChangeRequired,
    FailedLogins,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    OrgId,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrgId,
    Name,
    Scopes,
    SecretHash,
    SecretPrefix,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OrgId,
    OccurredAt,
    ActorKind,
    ActorId,
    Action,
    TargetUserId,
    RequestId,
    Peer,
    Details,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    OrgId,
    Operation,
    RequestId,
    ResourceId,
    CreatedAt,
}
