//! Import jobs on the wire.

use super::{Violations, parse_request_id, timestamp};
use crate::{
    api::pb,
    domain::{ImportJob, ImportStatus, RoleName, TeamId},
    error::{Error, ParseError, Reason},
    users::ImportOptions,
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

/// The options of an upload's first message.
pub fn parse_import_options(first: &pb::ImportUsersRequest) -> Result<ImportOptions, Error> {
    let mut v = Violations::default();
    let name = first.file_name.trim();
    let file_name = v.check(
        "file_name",
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            Err(ParseError::new(
                Reason::InvalidArgument,
                "must be 1 to 255 characters, without control characters",
            ))
        } else {
            Ok(name.to_owned())
        },
    );
    let request_id = v.check("request_id", parse_request_id(&first.request_id));
    let roles: Vec<Option<RoleName>> = first
        .default_roles
        .iter()
        .map(|r| v.check("default_roles", RoleName::parse(r)))
        .collect();
    let teams: Vec<Option<TeamId>> = first
        .default_team_ids
        .iter()
        .map(|t| v.check("default_team_ids", TeamId::parse(t)))
        .collect();
    v.finish(|| {
        Some(ImportOptions {
            file_name: file_name?,
            dry_run: first.dry_run,
            send_invites: first.send_invites,
            default_roles: roles.into_iter().collect::<Option<_>>()?,
            default_team_ids: teams.into_iter().collect::<Option<_>>()?,
            request_id: request_id?,
            size_bytes: first.size_bytes,
        })
    })
}
