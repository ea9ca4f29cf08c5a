//! Bulk imports: one row per import job and its report, one line per
//! problem, kept as long as the job.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ImportJobs::Table)
                .col(string(ImportJobs::Id).primary_key())
                .col(string(ImportJobs::OrgId))
                .col(string(ImportJobs::FileName))
                .col(timestamp_with_time_zone(ImportJobs::UploadedAt))
                .col(string(ImportJobs::UploadedBy))
                .col(string(ImportJobs::Status))
                .col(big_integer(ImportJobs::TotalRows))
                .col(big_integer(ImportJobs::ImportedRows))
                .col(big_integer(ImportJobs::FailedRows))
                .col(timestamp_with_time_zone_null(ImportJobs::FinishedAt))
                .col(boolean(ImportJobs::DryRun))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("import_jobs_org_uploaded")
                .table(ImportJobs::Table)
                .col(ImportJobs::OrgId)
                .col(ImportJobs::UploadedAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ImportReportLines::Table)
                .col(string(ImportReportLines::JobId))
                .col(big_integer(ImportReportLines::Position))
                .col(big_integer(ImportReportLines::LineNo))
                .col(text(ImportReportLines::Text))
                .primary_key(
                    Index::create()
                        .col(ImportReportLines::JobId)
                        .col(ImportReportLines::Position),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ImportReportLines::Table, ImportReportLines::JobId)
                        .to(ImportJobs::Table, ImportJobs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ImportReportLines::Table.into_iden(),
            ImportJobs::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    Id,
    OrgId,
    FileName,
    UploadedAt,
    UploadedBy,
    Status,
    TotalRows,
    ImportedRows,
    FailedRows,
    FinishedAt,
    DryRun,
}

#[derive(DeriveIden)]
enum ImportReportLines {
    Table,
    JobId,
    Position,
    LineNo,
    Text,
}
