//! Import jobs on the wire.

use super::timestamp;
use crate::{
    api::pb,
    domain::{ImportJob, ImportStatus},
};

impl From<&ImportJob> for pb::ImportJob {
    fn from(job: &ImportJob) -> Self {
        pb::ImportJob {
            import_job_id: job.id.to_string(),
            file_name: job.file_name.clone(),
            uploaded_at: Some(timestamp(job.uploaded_at)),
            uploaded_by: job.uploaded_by.clone(),
            status: match job.status {
                ImportStatus::Uploading => pb::ImportJobStatus::Uploading,
                ImportStatus::Completed => pb::ImportJobStatus::Completed,
                ImportStatus::CompletedWithErrors => pb::ImportJobStatus::CompletedWithErrors,
                ImportStatus::Failed => pb::ImportJobStatus::Failed,
            }
            .into(),
            total_rows: clamp(job.total_rows),
            imported_rows: clamp(job.imported_rows),
            failed_rows: clamp(job.failed_rows),
            finished_at: job.finished_at.map(timestamp),
            dry_run: job.dry_run,
        }
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
