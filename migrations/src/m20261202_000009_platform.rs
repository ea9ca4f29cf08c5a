//! Tenants as a managed resource: an org's lifecycle state, the request id
//! that created it (so a retried CreateOrg creates once), the platform API
//! keys that belong to no org, and the platform's own audit log.
//!
//! The platform log has no foreign key to `orgs`: it keeps the record of an
//! org after the org and everything it held are deleted.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        m.alter_table(
            Table::alter()
                .table(Orgs::Table)
                .add_column(string(Orgs::State).default("active"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Orgs::Table)
                .add_column(timestamp_with_time_zone_null(Orgs::SuspendedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Orgs::Table)
                .add_column(string_null(Orgs::SuspendReason))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Orgs::Table)
                .add_column(string_null(Orgs::CreateRequestId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("orgs_create_request_id")
                .table(Orgs::Table)
                .col(Orgs::CreateRequestId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(PlatformApiKeys::Table)
                .col(string(PlatformApiKeys::Id).primary_key())
                .col(string_uniq(PlatformApiKeys::Name))
                .col(string_uniq(PlatformApiKeys::SecretHash))
                .col(string(PlatformApiKeys::SecretPrefix))
                .col(timestamp_with_time_zone(PlatformApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(PlatformApiKeys::LastUsedAt))
                .col(timestamp_with_time_zone_null(PlatformApiKeys::RevokedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(PlatformAuditEvents::Table)
                .col(string(PlatformAuditEvents::Id).primary_key())
                .col(timestamp_with_time_zone(PlatformAuditEvents::OccurredAt))
                .col(string(PlatformAuditEvents::ActorKind))
                .col(string_null(PlatformAuditEvents::ActorId))
                .col(string(PlatformAuditEvents::Action))
                .col(string_null(PlatformAuditEvents::OrgId))
                .col(string_null(PlatformAuditEvents::OrgSlug))
                .col(string_null(PlatformAuditEvents::RequestId))
                .col(string_null(PlatformAuditEvents::Peer))
                .col(text(PlatformAuditEvents::Details))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("platform_audit_events_time")
                .table(PlatformAuditEvents::Table)
                .col(PlatformAuditEvents::OccurredAt)
                .col(PlatformAuditEvents::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PlatformAuditEvents::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(PlatformApiKeys::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("orgs_create_request_id")
                .table(Orgs::Table)
                .to_owned(),
        )
        .await?;
        for column in [
            Orgs::CreateRequestId,
            Orgs::SuspendReason,
            Orgs::SuspendedAt,
            Orgs::State,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Orgs::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    State,
    SuspendedAt,
    SuspendReason,
    CreateRequestId,
}

#[derive(DeriveIden)]
enum PlatformApiKeys {
    Table,
    Id,
    Name,
    SecretHash,
    SecretPrefix,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum PlatformAuditEvents {
    Table,
    Id,
    OccurredAt,
    ActorKind,
    ActorId,
    Action,
    OrgId,
    OrgSlug,
    RequestId,
    Peer,
    Details,
}
