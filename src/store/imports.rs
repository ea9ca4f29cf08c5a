//! Import jobs and their report lines.

use std::collections::HashSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::{
    Repo, StoreError, corrupt,
    entities::{import_jobs, import_report_lines, users},
};
use crate::domain::{
    ImportCriteria, ImportJob, ImportJobId, ImportOrder, ImportStatus, OrgId, ReportLine,
};

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn insert_import_job(
        &self,
        org_id: OrgId,
        job: &ImportJob,
    ) -> Result<(), StoreError> {
        import_jobs::Entity::insert(import_jobs::ActiveModel {
            id: Set(job.id.to_string()),
            org_id: Set(org_id.to_string()),
            file_name: Set(job.file_name.clone()),
            uploaded_at: Set(job.uploaded_at),
            uploaded_by: Set(job.uploaded_by.clone()),
            status: Set(job.status.as_str().to_owned()),
            total_rows: Set(job.total_rows as i64),
            imported_rows: Set(job.imported_rows as i64),
            failed_rows: Set(job.failed_rows as i64),
            finished_at: Set(job.finished_at),
            dry_run: Set(job.dry_run),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    /// Writes the job's status, counts and end time.
    pub async fn update_import_job(&self, job: &ImportJob) -> Result<(), StoreError> {
        import_jobs::Entity::update_many()
            .col_expr(
                import_jobs::Column::Status,
                Expr::value(job.status.as_str()),
            )
            .col_expr(
                import_jobs::Column::TotalRows,
                Expr::value(job.total_rows as i64),
            )
            .col_expr(
                import_jobs::Column::ImportedRows,
                Expr::value(job.imported_rows as i64),
            )
            .col_expr(
                import_jobs::Column::FailedRows,
                Expr::value(job.failed_rows as i64),
            )
            .col_expr(
                import_jobs::Column::FinishedAt,
                Expr::value(job.finished_at),
            )
            .filter(import_jobs::Column::Id.eq(job.id.to_string()))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Appends report lines after the job's `written` lines so far.
    pub async fn append_report_lines(
        &self,
        job_id: ImportJobId,
        written: u64,
        lines: &[ReportLine],
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        import_report_lines::Entity::insert_many(lines.iter().enumerate().map(|(i, line)| {
            import_report_lines::ActiveModel {
                job_id: Set(job_id.to_string()),
                position: Set((written + i as u64) as i64),
                line_no: Set(line.line_no as i64),
                text: Set(line.text.clone()),
            }
        }))
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    pub async fn import_job(
        &self,
        org_id: OrgId,
        id: ImportJobId,
    ) -> Result<Option<ImportJob>, StoreError> {
        import_jobs::Entity::find_by_id(id.to_string())
            .filter(import_jobs::Column::OrgId.eq(org_id.to_string()))
            .one(self.conn())
            .await?
            .map(job_of_row)
            .transpose()
    }

    /// A page of the org's jobs after `after` (the previous page's last job).
    pub async fn list_import_jobs(
        &self,
        org_id: OrgId,
        criteria: &ImportCriteria,
        after: Option<&ImportJob>,
        limit: u64,
    ) -> Result<Vec<ImportJob>, StoreError> {
        let column = match criteria.order {
            ImportOrder::UploadedAt => import_jobs::Column::UploadedAt,
            ImportOrder::FileName => import_jobs::Column::FileName,
            ImportOrder::UploadedBy => import_jobs::Column::UploadedBy,
            ImportOrder::Status => import_jobs::Column::Status,
        };
        let mut select =
            import_jobs::Entity::find().filter(import_jobs::Column::OrgId.eq(org_id.to_string()));
        if let Some(t) = criteria.uploaded_after {
            select = select.filter(import_jobs::Column::UploadedAt.gte(t));
        }
        if let Some(t) = criteria.uploaded_before {
            select = select.filter(import_jobs::Column::UploadedAt.lt(t));
        }
        if let Some(last) = after {
            let key: sea_orm::Value = match criteria.order {
                ImportOrder::UploadedAt => last.uploaded_at.into(),
                ImportOrder::FileName => last.file_name.clone().into(),
                ImportOrder::UploadedBy => last.uploaded_by.clone().into(),
                ImportOrder::Status => last.status.as_str().into(),
            };
            let id = last.id.to_string();
            let (beyond, id_beyond) = if criteria.descending {
                (column.lt(key.clone()), import_jobs::Column::Id.lt(id))
            } else {
                (column.gt(key.clone()), import_jobs::Column::Id.gt(id))
            };
            select = select.filter(
                sea_orm::Condition::any()
                    .add(beyond)
                    .add(sea_orm::Condition::all().add(column.eq(key)).add(id_beyond)),
            );
        }
        let (order, id_order) = if criteria.descending {
            (sea_orm::Order::Desc, sea_orm::Order::Desc)
        } else {
            (sea_orm::Order::Asc, sea_orm::Order::Asc)
        };
        select
            .order_by(column, order)
            .order_by(import_jobs::Column::Id, id_order)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(job_of_row)
            .collect()
    }

    pub async fn import_report(&self, job_id: ImportJobId) -> Result<Vec<ReportLine>, StoreError> {
        Ok(import_report_lines::Entity::find()
            .filter(import_report_lines::Column::JobId.eq(job_id.to_string()))
            .order_by_asc(import_report_lines::Column::Position)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| ReportLine::new(row.line_no.max(0) as u64, row.text))
            .collect())
    }

    /// Jobs still UPLOADING, which only a stopped server leaves behind.
    pub async fn unfinished_import_jobs(&self) -> Result<Vec<ImportJob>, StoreError> {
        import_jobs::Entity::find()
            .filter(import_jobs::Column::Status.eq(ImportStatus::Uploading.as_str()))
            .all(self.conn())
            .await?
            .into_iter()
            .map(job_of_row)
            .collect()
    }

    /// How many report lines the job has.
    pub async fn report_line_count(&self, job_id: ImportJobId) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(import_report_lines::Entity::find()
            .filter(import_report_lines::Column::JobId.eq(job_id.to_string()))
            .count(self.conn())
            .await?)
    }

    /// Which of `emails` (normalised) any user of any org has.
    pub async fn taken_emails(&self, emails: &[String]) -> Result<HashSet<String>, StoreError> {
        if emails.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(users::Entity::find()
            .select_only()
            .column(users::Column::Email)
            .filter(users::Column::Email.is_in(emails.iter().cloned()))
            .into_tuple::<String>()
            .all(self.conn())
            .await?
            .into_iter()
            .collect())
    }

    /// Which of `login_ids` (normalised) a user of the org has.
    pub async fn taken_login_ids(
        &self,
        org_id: OrgId,
        login_ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        if login_ids.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(users::Entity::find()
            .select_only()
            .column(users::Column::LoginId)
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .filter(users::Column::LoginId.is_in(login_ids.iter().cloned()))
            .into_tuple::<Option<String>>()
            .all(self.conn())
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

fn job_of_row(row: import_jobs::Model) -> Result<ImportJob, StoreError> {
    Ok(ImportJob {
        id: ImportJobId::parse(&row.id).map_err(corrupt)?,
        file_name: row.file_name,
        uploaded_at: row.uploaded_at,
        uploaded_by: row.uploaded_by,
        status: row.status.parse().map_err(corrupt)?,
        total_rows: row.total_rows.max(0) as u64,
        imported_rows: row.imported_rows.max(0) as u64,
        failed_rows: row.failed_rows.max(0) as u64,
        finished_at: row.finished_at,
        dry_run: row.dry_run,
    })
}
