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

use std::{
    collections::HashMap,
    io::{BufReader, Read},
};

use chrono::Utc;
use serde_json::json;
use tokio::sync::mpsc;

use super::{
    Catalogue, NewUser, Users, build_user, export, identity_conflict, invites, profile_json,
};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize, authorize_grant},
    domain::{
        DisplayName, Email, ImportJob, ImportJobId, ImportStatus, LoginId, OrgSettings, Permission,
        ReportLine, RoleName, TeamId, User, UserState, permissions_of,
    },
    error::{Error, Reason, Result},
    store::{ImportCriteria, StoreError},
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
/// The columns a file must have, then those it may have: the export's first.
const REQUIRED: &[&str] = export::COLUMNS.split_at(4).0;
const OPTIONAL: &[&str] = export::COLUMNS.split_at(6).0.split_at(4).1;

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

/// Checks one row into the user to invite, or the report text of why not.
struct RowChecker<'a> {
    org: &'a OrgSettings,
    principal: &'a Principal,
    options: &'a ImportOptions,
    catalogue: &'a Catalogue,
    team_ids_by_name: &'a HashMap<String, TeamId>,
    columns: HashMap<&'static str, usize>,
    /// First line of each email and login id seen in the file.
    emails: HashMap<String, u64>,
    login_ids: HashMap<String, u64>,
}

impl RowChecker<'_> {
    fn check(&mut self, row: &ImportRow) -> Result<User, String> {
        let cells = row.cells.as_ref().map_err(Clone::clone)?;
        let cell = |name: &str| {
            self.columns
                .get(name)
                .and_then(|i| cells.get(*i))
                .map(|c| export::undefuse(c.trim()))
                .unwrap_or("")
        };
        let problem = |column: &str, e: crate::error::ParseError| {
            format!("{column}: {}: {}", e.reason, e.message)
        };
        let login_id = match cell("login_id") {
            "" => None,
            raw => Some(LoginId::parse(raw).map_err(|e| problem("login_id", e))?),
        };
        let email = match (cell("email"), &login_id) {
            ("", Some(login)) => Email::parse(login.as_str()).map_err(|_| {
                format!(
                    "email: {}: required unless the login id is an email",
                    Reason::InvalidEmail
                )
            })?,
            (raw, _) => Email::parse(raw).map_err(|e| problem("email", e))?,
        };
        let name = format!("{} {}", cell("first_name"), cell("last_name"));
        let display_name = DisplayName::parse(name.trim()).map_err(|e| problem("first_name", e))?;
        let roles = match split(cell("roles")) {
            names if names.is_empty() => self.options.default_roles.clone(),
            names => names
                .iter()
                .map(|n| RoleName::parse(n))
                .collect::<Result<_, _>>()
                .map_err(|e| problem("roles", e))?,
        };
        let team_ids = match split(cell("teams")) {
            names if names.is_empty() => self.options.default_team_ids.clone(),
            names => names
                .iter()
                .map(|n| {
                    self.team_ids_by_name
                        .get(&n.to_lowercase())
                        .copied()
                        .ok_or_else(|| {
                            format!("teams: {}: no team named {n:?}", Reason::UnknownTeam)
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let mut input = NewUser::new(email, display_name, roles);
        input.login_id = login_id;
        input.team_ids = team_ids;
        let user = build_user(self.org, self.catalogue, input, UserState::Invited).map_err(
            |e| match e {
                Error::InvalidArgument(violations) => violations
                    .iter()
                    .map(|v| {
                        format!(
                            "{}: {}: {}",
                            v.field.trim_start_matches("user."),
                            v.reason,
                            v.description
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            },
        )?;
        authorize_grant(
            self.principal,
            permissions_of(&user.roles, &self.catalogue.custom_roles),
        )
        .map_err(|e| format!("roles: {}: {e}", Reason::PermissionDenied))?;
        if let Some(first) = self.emails.get(user.email.as_str()) {
            return Err(format!(
                "email: {}: also on line {first}",
                Reason::EmailTaken
            ));
        }
        if let Some(login) = &user.login_id
            && let Some(first) = self.login_ids.get(login.as_str())
        {
            return Err(format!(
                "login_id: {}: also on line {first}",
                Reason::LoginIdTaken
            ));
        }
        self.emails
            .insert(user.email.as_str().to_owned(), row.line_no);
        if let Some(login) = &user.login_id {
            self.login_ids
                .insert(login.as_str().to_owned(), row.line_no);
        }
        Ok(user)
    }
}

/// The `;`-separated names of a cell.
fn split(cell: &str) -> Vec<&str> {
    cell.split(export::LIST_SEPARATOR)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

/// Reads the CSV on a blocking thread and sends its header and rows in
/// batches; stops early when the receiver is gone.
fn read_csv(file: impl Read, sender: &mpsc::Sender<Parsed>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(CrlfToLf::new(BufReader::new(file)));
    let mut record = csv::ByteRecord::new();
    let mut header = true;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                let _ = sender.blocking_send(Parsed::Fatal(format!("not a CSV file: {err}")));
                return;
            }
        }
        let line_no = record.position().map_or(0, |p| p.line());
        if header {
            header = false;
            let parsed = parse_header(&record);
            let fatal = matches!(parsed, Parsed::Fatal(_));
            if sender.blocking_send(parsed).is_err() || fatal {
                return;
            }
            continue;
        }
        if record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let cells = record
            .iter()
            .map(|c| std::str::from_utf8(c).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("{}: the line is not UTF-8", Reason::InvalidText))
            .and_then(|cells| match cells.iter().any(|c| c.contains('\0')) {
                true => Err(format!(
                    "{}: the line holds NUL (U+0000)",
                    Reason::InvalidText
                )),
                false => Ok(cells),
            });
        batch.push(ImportRow { line_no, cells });
        if batch.len() == BATCH
            && sender
                .blocking_send(Parsed::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(Parsed::Rows(batch));
    }
}

/// Turns CRLF line ends into LF: the CSV reader numbers lines of CRLF
/// files one short, and report lines must name the line people see.
struct CrlfToLf<R> {
    inner: R,
    /// A CR that ended the previous read, not yet known to precede an LF.
    held_cr: bool,
}

impl<R: Read> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            held_cr: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.len() < 2 {
            return self.inner.read(out);
        }
        // Leave room for a held CR that turns out not to precede an LF.
        let n = self.inner.read(&mut out[1..])?;
        let mut written = 0;
        let mut i = 1;
        if self.held_cr {
            self.held_cr = false;
            if n == 0 || out[1] != b'\n' {
                out[0] = b'\r';
                written = 1;
            }
        }
        while i <= n {
            let byte = out[i];
            i += 1;
            if byte == b'\r' {
                if i > n {
                    self.held_cr = true;
                    continue;
                }
                if out[i] == b'\n' {
                    continue;
                }
            }
            out[written] = byte;
            written += 1;
        }
        if written == 0 && self.held_cr && n > 0 {
            // Only a CR was read: read on, so 0 still means the end.
            return self.read(out);
        }
        Ok(written)
    }
}

fn parse_header(record: &csv::ByteRecord) -> Parsed {
    let mut columns = HashMap::new();
    let mut ignored = Vec::new();
    for (i, raw) in record.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            return Parsed::Fatal("the header row is not UTF-8".into());
        };
        if name.contains('\0') {
            return Parsed::Fatal("the header row (line 1) holds NUL (U+0000)".into());
        }
        let name = name.trim_start_matches('\u{feff}').trim().to_lowercase();
        match REQUIRED.iter().chain(OPTIONAL.iter()).find(|c| **c == name) {
            Some(known) => {
                columns.insert(*known, i);
            }
            None if name.is_empty() => {}
            None => ignored.push(name),
        }
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|c| !columns.contains_key(*c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Parsed::Fatal(format!(
            "the header row lacks the columns {}: the first line must name first_name, last_name, login_id, email (and optionally roles, teams)",
            missing.join(", ")
        ));
    }
    Parsed::Header { columns, ignored }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(csv: &str) -> Vec<u64> {
        let (sender, mut receiver) = mpsc::channel(16);
        read_csv(csv.as_bytes(), &sender);
        drop(sender);
        let mut lines = Vec::new();
        while let Ok(parsed) = receiver.try_recv() {
            if let Parsed::Rows(rows) = parsed {
                lines.extend(rows.iter().map(|r| r.line_no));
            }
        }
        lines
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on() {
        let header = "first_name,last_name,login_id,email";
        assert_eq!(lines_of(&format!("{header}\na,b,,c\nd,e,,f\n")), vec![2, 3]);
        assert_eq!(
            lines_of(&format!("{header}\r\na,b,,c\r\nd,e,,f\r\n")),
            vec![2, 3]
        );
        assert_eq!(
            lines_of(&format!("{header}\n\"a\nb\",b,,c\nd,e,,f\n")),
            vec![2, 4]
        );
        assert_eq!(
            lines_of(&format!(
                "{header}\r\n\"x, y\",\"q\"\"q\",,c\r\n\"a\nb\",b,,c\r\nd,e,,f\r\n"
            )),
            vec![2, 3, 5]
        );
    }

    #[test]
    fn crlf_becomes_lf_across_reads_and_a_lone_cr_stays() {
        for chunk in 1..6 {
            let input = b"a\r\nb\rc\r\n\r";
            let mut reader = CrlfToLf::new(std::io::Read::chain(
                &input[..chunk.min(input.len())],
                &input[chunk.min(input.len())..],
            ));
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"a\nb\rc\n\r", "chunk {chunk}");
        }
    }
}
