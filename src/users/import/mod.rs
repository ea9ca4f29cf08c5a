//! Bulk import of users from a CSV file (format: docs/csv.md).
//!
//! Every row takes the path a single invitation takes ([`build_user`]: the
//! same parsing, role and team checks and grant rule), then the file-wide
//! checks: duplicates inside the file, against existing users, and the
//! seat limit. Valid rows become INVITED users; the others become report
//! lines. Rows are committed in batches, each batch with its report lines
//! and the job's counts in one transaction, so the report always matches
//! the users that exist. A job a stopped server left UPLOADING is marked
//! FAILED at the next start ([`Users::recover_imports`]); its committed
//! batches stay.

mod csv;
mod rows;

use csv::read_csv;
use rows::RowChecker;

use std::collections::HashMap;

use chrono::Utc;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Catalogue, Users, export, identity_conflict, invites, profile_json};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize},
    domain::{
        ImportCriteria, ImportJob, ImportJobId, ImportStatus, OrgSettings, Permission, ReportLine,
        RoleName, TeamId, User,
    },
    error::{Error, Reason, Result},
    store::StoreError,
};

/// An import of at least this many users settles the users table at its
/// end (PostgreSQL: trigram index and planner statistics, see
/// `settle_users_after_bulk_insert`), so that listings with a query are fast
/// at once rather than after autovacuum's next visit.
const SETTLE_AFTER_ROWS: u64 = 1_000;

/// Rows validated and committed together: large enough that commits do
/// not dominate, small enough that a stop loses little work.
const BATCH: usize = 2000;
const IMPORT_USERS: &str = "ImportUsers";
/// The columns a file must have, then those it may have (an export's
/// first columns, so an export imports again).
const REQUIRED: &[&str] = &export::IMPORT_REQUIRED;
const OPTIONAL: &[&str] = &export::IMPORT_OPTIONAL;

/// What the first message of an upload asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub file_name: String,
    pub dry_run: bool,
    pub send_invites: bool,
    pub default_roles: Vec<RoleName>,
    pub default_team_ids: Vec<TeamId>,
    pub request_id: Option<String>,
    /// The file's size as the client declared it.
    pub size_bytes: Option<u64>,
}

/// One data row of the file: where it starts and its cells, or why they
/// cannot be read (not UTF-8, or NUL, which text cannot hold).
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line_no: u64,
    pub cells: Result<Vec<String>, String>,
}

/// What the reader thread sends: the header's column positions, batches of
/// rows, or why the file cannot be read at all.
enum Parsed {
    Header {
        columns: HashMap<&'static str, usize>,
        ignored: Vec<String>,
    },
    Rows(Vec<ImportRow>),
    Fatal(String),
}

impl Users {
    /// Records a new job (UPLOADING), or returns the job a retried upload
    /// with the same request id created, with `false`.
    pub async fn start_import(
        &self,
        principal: &Principal,
        origin: &Origin,
        options: &ImportOptions,
    ) -> Result<(ImportJob, bool)> {
        authorize(principal, Permission::ManageUsers)?;
        let org = self.store.read().org(principal.org_id).await?;
        if let Some(job) = self
            .replayed_import(&org, options.request_id.as_deref())
            .await?
        {
            return Ok((job, false));
        }
        let job = ImportJob {
            id: ImportJobId::generate(),
            file_name: options.file_name.clone(),
            uploaded_at: Utc::now(),
            uploaded_by: actor_id(principal),
            status: ImportStatus::Uploading,
            total_rows: 0,
            imported_rows: 0,
            failed_rows: 0,
            finished_at: None,
            dry_run: options.dry_run,
        };
        let tx = self.store.write().await?;
        if let Some(request_id) = &options.request_id {
            match tx
                .repo()
                .insert_idempotency(org.org_id, IMPORT_USERS, request_id, &job.id.to_string())
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    drop(tx);
                    let job = self
                        .replayed_import(&org, Some(request_id))
                        .await?
                        .ok_or_else(job_not_found)?;
                    return Ok((job, false));
                }
                Err(err) => return Err(err.into()),
            }
        }
        tx.repo().insert_import_job(org.org_id, &job).await?;
        tx.repo()
            .append_audit(audit::resource_entry(
                org.org_id,
                AuditActor::from(principal),
                Action::ImportStart,
                format!("import_jobs/{}", job.id),
                origin,
                json!({ "file_name": job.file_name, "dry_run": job.dry_run }),
            ))
            .await?;
        tx.commit().await?;
        Ok((job, true))
    }

    async fn replayed_import(
        &self,
        org: &OrgSettings,
        request_id: Option<&str>,
    ) -> Result<Option<ImportJob>> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        let read = self.store.read();
        let Some(id) = read
            .idempotent_resource(org.org_id, IMPORT_USERS, request_id)
            .await?
        else {
            return Ok(None);
        };
        let id = ImportJobId::parse(&id).map_err(Error::internal)?;
        Ok(read.import_job(org.org_id, id).await?)
    }

    /// Ends a job whose import broke off as FAILED, with why; what its
    /// committed batches imported stays.
    pub async fn abandon_import(
        &self,
        principal: &Principal,
        id: ImportJobId,
        why: &str,
    ) -> Result<ImportJob> {
        let job = self.import_job(principal, id).await?;
        self.fail_import(principal, job, why).await
    }

    /// Ends a job as FAILED, with why.
    pub async fn fail_import(
        &self,
        principal: &Principal,
        mut job: ImportJob,
        why: &str,
    ) -> Result<ImportJob> {
        job.status = ImportStatus::Failed;
        job.finished_at = Some(Utc::now());
        let tx = self.store.write().await?;
        let written = tx.repo().report_line_count(job.id).await?;
        tx.repo()
            .append_report_lines(job.id, written, &[ReportLine::new(0, why)])
            .await?;
        tx.repo().update_import_job(&job).await?;
        tx.commit().await?;
        tracing::info!(org_id = %principal.org_id, job_id = %job.id, why, "import failed");
        Ok(job)
    }

    /// Imports the rows of `file` into `job`; returns the finished job.
    pub async fn run_import(
        &self,
        principal: &Principal,
        origin: &Origin,
        options: &ImportOptions,
        job: ImportJob,
        file: std::fs::File,
    ) -> Result<ImportJob> {
        let org = self.store.read().org(principal.org_id).await?;
        let read = self.store.read();
        let teams = read.teams(org.org_id).await?;
        let catalogue = Catalogue {
            custom_roles: read
                .all_custom_roles(org.org_id)
                .await?
                .into_iter()
                .map(|r| (r.name, r.permissions))
                .collect(),
            teams: teams.iter().map(|t| t.id).collect(),
        };
        let team_ids_by_name: HashMap<String, TeamId> =
            teams.iter().map(|t| (t.name.unique_key(), t.id)).collect();

        let (sender, mut receiver) = mpsc::channel(2);
        let reader = tokio::task::spawn_blocking(move || read_csv(file, &sender));
        let mut rows = RowChecker {
            org: &org,
            principal,
            options,
            catalogue: &catalogue,
            team_ids_by_name: &team_ids_by_name,
            columns: HashMap::new(),
            emails: HashMap::new(),
            login_ids: HashMap::new(),
        };
        let mut run = Run {
            org: &org,
            principal,
            origin,
            options,
            job,
            written: 0,
            accepted_in_dry_run: 0,
        };
        let mut header_seen = false;
        let mut cut_short = false;
        while let Some(parsed) = receiver.recv().await {
            match parsed {
                Parsed::Fatal(why) => {
                    if !header_seen {
                        return self.fail_import(principal, run.job, &why).await;
                    }
                    cut_short = true;
                    let lines = [ReportLine::new(
                        0,
                        format!("{why}; the rest of the file was not read"),
                    )];
                    self.commit_batch(&mut run, &lines, Vec::new()).await?;
                }
                Parsed::Header { columns, ignored } => {
                    header_seen = true;
                    rows.columns = columns;
                    if !ignored.is_empty() {
                        let lines = [ReportLine::new(
                            1,
                            format!(
                                "columns ignored (not part of the format): {}",
                                ignored.join(", ")
                            ),
                        )];
                        self.commit_batch(&mut run, &lines, Vec::new()).await?;
                    }
                }
                Parsed::Rows(batch) => {
                    let before = (run.job.imported_rows, run.job.failed_rows);
                    run.job.total_rows += batch.len() as u64;
                    let mut lines = Vec::new();
                    let mut candidates = Vec::new();
                    for row in batch {
                        match rows.check(&row) {
                            Ok(user) => candidates.push((row.line_no, user)),
                            Err(text) => lines.push(ReportLine::new(row.line_no, text)),
                        }
                    }
                    run.job.failed_rows += lines.len() as u64;
                    self.commit_batch(&mut run, &lines, candidates).await?;
                    if !options.dry_run {
                        crate::metrics::get().import_rows(
                            run.job.imported_rows - before.0,
                            run.job.failed_rows - before.1,
                        );
                    }
                }
            }
        }
        reader.await.map_err(Error::internal)?;
        let mut job = run.job;
        if !header_seen {
            return self
                .fail_import(
                    principal,
                    job,
                    "the file is empty: a header row is required",
                )
                .await;
        }
        job.status = if job.failed_rows == 0 && !cut_short {
            ImportStatus::Completed
        } else {
            ImportStatus::CompletedWithErrors
        };
        job.finished_at = Some(Utc::now());
        let tx = self.store.write().await?;
        tx.repo().update_import_job(&job).await?;
        tx.commit().await?;
        if !options.dry_run && job.imported_rows >= SETTLE_AFTER_ROWS {
            // The import is done either way: an unsettled table is only slower.
            if let Err(err) = self.store.read().settle_users_after_bulk_insert().await {
                tracing::warn!(%err, job_id = %job.id, "users table not settled after import");
            }
        }
        Ok(job)
    }

    /// Checks the batch's users against existing ones and the seat limit,
    /// inserts the valid ones (unless a dry run) and stores the batch's
    /// report lines and the job's counts, all in one transaction.
    async fn commit_batch(
        &self,
        run: &mut Run<'_>,
        lines: &[ReportLine],
        candidates: Vec<(u64, User)>,
    ) -> Result<()> {
        let Run {
            org,
            principal,
            origin,
            options,
            ref mut job,
            ref mut written,
            ref mut accepted_in_dry_run,
        } = *run;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        if !candidates.is_empty() {
            // Serialises seat counting with every other change that takes seats.
            repo.lock_org(org.org_id).await?;
        }
        let emails: Vec<String> = candidates
            .iter()
            .map(|(_, u)| u.email.as_str().to_owned())
            .collect();
        let logins: Vec<String> = candidates
            .iter()
            .filter_map(|(_, u)| u.login_id.as_ref().map(|l| l.as_str().to_owned()))
            .collect();
        let taken_emails = repo.taken_emails(&emails).await?;
        let taken_logins = repo.taken_login_ids(org.org_id, &logins).await?;
        let mut free = match org.seat_limit {
            Some(limit) if !candidates.is_empty() => {
                let used = repo.count_seats(org.org_id).await? + *accepted_in_dry_run;
                Some(u64::from(limit).saturating_sub(used))
            }
            _ => None,
        };
        let mut lines = lines.to_vec();
        let mut accepted = Vec::new();
        for (line_no, user) in candidates {
            let problem = if taken_emails.contains(user.email.as_str()) {
                Some(format!(
                    "email: {}: {} is taken",
                    Reason::EmailTaken,
                    user.email.as_str()
                ))
            } else if user
                .login_id
                .as_ref()
                .is_some_and(|l| taken_logins.contains(l.as_str()))
            {
                Some(format!(
                    "login_id: {}: taken in the org",
                    Reason::LoginIdTaken
                ))
            } else if free == Some(0) {
                Some(format!(
                    "{}: the org's seat limit is reached",
                    Reason::SeatLimitReached
                ))
            } else {
                None
            };
            match problem {
                Some(text) => {
                    job.failed_rows += 1;
                    lines.push(ReportLine::new(line_no, text));
                }
                None => {
                    free = free.map(|f| f - 1);
                    accepted.push(user);
                }
            }
        }
        lines.sort_by_key(|l| l.line_no);
        let mut invitations = Vec::new();
        if options.dry_run {
            *accepted_in_dry_run += accepted.len() as u64;
        } else {
            repo.insert_users(org.org_id, &accepted)
                .await
                .map_err(identity_conflict)?;
            // Without emails there is no link to send yet: ResendInvite
            // issues one when the admin is ready.
            if options.send_invites {
                for user in &accepted {
                    invitations.push(invites::issue(&tx, org, user.id).await?);
                }
            }
            repo.append_audits(
                accepted
                    .iter()
                    .map(|user| {
                        audit::entry(
                            org.org_id,
                            AuditActor::from(principal),
                            Action::UserInvite,
                            Some(user.id),
                            origin,
                            json!({ "after": profile_json(user), "import_job_id": job.id.to_string() }),
                        )
                    })
                    .collect(),
            )
            .await?;
            // INVITED users are not watched: their presence rows come when
            // they accept (a user without one reads as OFFLINE).
        }
        job.imported_rows += accepted.len() as u64;
        repo.append_report_lines(job.id, *written, &lines).await?;
        repo.update_import_job(job).await?;
        tx.commit().await?;
        *written += lines.len() as u64;
        if options.send_invites {
            for (user, (token, expires_at)) in accepted.iter().zip(invitations) {
                self.send_invitation(org, user, &token, expires_at).await;
            }
        }
        Ok(())
    }

    /// Marks jobs a stopped server left UPLOADING as FAILED; what their
    /// committed batches imported stays, and the report says so.
    pub async fn recover_imports(&self) -> Result<usize> {
        let jobs = self.store.read().unfinished_import_jobs().await?;
        for mut job in jobs.iter().cloned() {
            job.status = ImportStatus::Failed;
            job.finished_at = Some(Utc::now());
            let tx = self.store.write().await?;
            let written = tx.repo().report_line_count(job.id).await?;
            let why = format!(
                "the server stopped during the import; {} rows were imported and are listed nowhere else, the rest were not processed",
                job.imported_rows
            );
            tx.repo()
                .append_report_lines(job.id, written, &[ReportLine::new(0, why)])
                .await?;
            tx.repo().update_import_job(&job).await?;
            tx.commit().await?;
        }
        Ok(jobs.len())
    }

    pub async fn import_job(&self, principal: &Principal, id: ImportJobId) -> Result<ImportJob> {
        authorize(principal, Permission::ManageUsers)?;
        self.store
            .read()
            .import_job(principal.org_id, id)
            .await?
            .ok_or_else(job_not_found)
    }

    pub async fn list_import_jobs(
        &self,
        principal: &Principal,
        criteria: &ImportCriteria,
        after: Option<ImportJobId>,
        limit: u64,
    ) -> Result<(Vec<ImportJob>, bool)> {
        authorize(principal, Permission::ManageUsers)?;
        let read = self.store.read();
        let after = match after {
            Some(id) => Some(
                read.import_job(principal.org_id, id)
                    .await?
                    .ok_or_else(job_not_found)?,
            ),
            None => None,
        };
        let mut jobs = read
            .list_import_jobs(principal.org_id, criteria, after.as_ref(), limit + 1)
            .await?;
        let more = jobs.len() as u64 > limit;
        jobs.truncate(limit as usize);
        Ok((jobs, more))
    }

    /// The report as text: one line per problem, `line N: …` (or `file: …`).
    pub async fn import_report(&self, principal: &Principal, id: ImportJobId) -> Result<String> {
        let job = self.import_job(principal, id).await?;
        let lines = self.store.read().import_report(job.id).await?;
        Ok(lines
            .iter()
            .map(|l| match l.line_no {
                0 => format!("file: {}\n", l.text),
                n => format!("line {n}: {}\n", l.text),
            })
            .collect())
    }
}

/// An import under way: who runs it, how, and how far it got.
struct Run<'a> {
    org: &'a OrgSettings,
    principal: &'a Principal,
    origin: &'a Origin,
    options: &'a ImportOptions,
    job: ImportJob,
    /// Report lines stored so far.
    written: u64,
    /// Seats a dry run would have taken so far.
    accepted_in_dry_run: u64,
}

fn actor_id(principal: &Principal) -> String {
    match AuditActor::from(principal) {
        AuditActor::User(id) => id.to_string(),
        AuditActor::ApiKey(id) => id.to_string(),
        AuditActor::Anonymous | AuditActor::System => String::new(),
    }
}

fn job_not_found() -> Error {
    Error::NotFound {
        reason: Reason::ImportJobNotFound,
        message: "import job not found".into(),
    }
}
