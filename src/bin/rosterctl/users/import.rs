//! `users import FILE`: uploads a CSV file of users (docs/csv.md) as an
//! import job and prints what became of it.
//!
//! The file is read and sent in chunks of 64 KiB by a thread of its own
//! through a small bounded channel, so memory stays flat whatever the file's
//! size. The upload asks the server to answer as soon as the file has
//! arrived (`return_when_uploaded`); the rows are then followed with
//! `GetImportJob` until the job ends. Progress is drawn on stderr when it is
//! a terminal: a bar of the bytes sent, then the rows processed so far.
//!
//! Exit status: 0 when the job ran, even if rows were rejected (they are in
//! the report); 1 when the call failed or the job FAILED as a whole (e.g.
//! the file has no header row), in which case nothing was imported.

use std::{
    fs::File,
    io::{self, IsTerminal, Read},
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roster::api::pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    error::CliError,
    imports::{ImportJobView, fetch_report, get_job, job_rows, job_view},
    output::{Output, emit, key_value_table, note, render},
    session::SignedIn,
};

/// Bytes per message of the upload.
const CHUNK: usize = 64 * 1024;
/// Report lines shown after the summary; `imports report` prints them all.
const REPORT_HEAD: usize = 10;
/// How often a running job is read back; its counts grow a batch at a time.
const POLL: Duration = Duration::from_millis(250);

#[derive(Args)]
pub struct ImportUsersArgs {
    /// The CSV file: a header row naming first_name, last_name, login_id,
    /// email and optionally roles, teams (see docs/csv.md).
    file: PathBuf,
    /// Check every row and write the report, but create no user.
    #[arg(long)]
    dry_run: bool,
    /// Email each imported user their invitation now (otherwise they wait
    /// for `users resend-invite`).
    #[arg(long)]
    send_invites: bool,
    /// Role of rows whose roles cell is empty; repeat for several
    /// [default: agent].
    #[arg(long = "default-role", value_name = "ROLE")]
    default_roles: Vec<String>,
    /// Team of rows whose teams cell is empty; repeat for several.
    #[arg(long = "default-team", value_name = "TEAM")]
    pub(super) default_team_ids: Vec<String>,
    /// Idempotency key: a retried upload with the same id returns the first
    /// upload's job and imports nothing more.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
}

pub async fn import_users(
    signed_in: &SignedIn,
    args: ImportUsersArgs,
    out: Output,
) -> Result<(), CliError> {
    let file = File::open(&args.file)
        .map_err(|e| CliError::msg(format!("cannot open {}: {e}", args.file.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let first = pb::ImportUsersRequest {
        file_name: file_name(&args.file),
        chunk: Vec::new(),
        request_id: args.request_id.unwrap_or_default(),
        dry_run: args.dry_run,
        send_invites: args.send_invites,
        default_roles: args.default_roles,
        default_team_ids: args.default_team_ids,
        size_bytes: (size > 0).then_some(size),
        return_when_uploaded: true,
    };
    let mut client = signed_in.users_without_deadline().await?;
    let progress = Progress::new(size);
    let (sender, receiver) = mpsc::channel(4);
    let mut reader = tokio::task::spawn_blocking({
        let bar = progress.bar.clone();
        move || send_file(first, file, &sender, &bar)
    });
    let call = client.import_users(ReceiverStream::new(receiver));
    tokio::pin!(call);
    let answer = tokio::select! {
        // The server may answer before the whole file is sent: a refusal
        // (e.g. FILE_TOO_LARGE), or the job a request id made before.
        answer = &mut call => answer,
        read = &mut reader => {
            let read = read.map_err(|e| CliError::msg(format!("the file reader failed: {e}")))?;
            if let Err(e) = read {
                progress.clear();
                // Returning drops the call, which cancels the upload.
                return Err(CliError::msg(format!(
                    "cannot read {}: {e}; the upload was cancelled",
                    args.file.display()
                )));
            }
            call.await
        }
    };
    let answer = answer.inspect_err(|_| progress.clear())?;
    let mut job = job_view(answer.into_inner().import_job)?;
    progress.processing();
    while job.status == pb::ImportJobStatus::Uploading.as_str_name() {
        progress.rows(&job);
        tokio::time::sleep(POLL).await;
        job = get_job(signed_in, job.import_job_id.clone()).await?;
    }
    progress.clear();
    print_summary(signed_in, &job, out).await?;
    if job.status == pb::ImportJobStatus::Failed.as_str_name() {
        return Err(CliError::msg(format!(
            "import job {} failed: nothing was imported",
            job.import_job_id
        )));
    }
    Ok(())
}

/// The name the job records: the file's own name, without its directory.
fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Sends the first message, then the file in chunks. Stops quietly when the
/// call has ended (the server answered early); a read error ends it with
/// the error, and the caller cancels the upload.
fn send_file(
    first: pb::ImportUsersRequest,
    mut file: File,
    sender: &mpsc::Sender<pb::ImportUsersRequest>,
    bar: &ProgressBar,
) -> io::Result<()> {
    if sender.blocking_send(first).is_err() {
        return Ok(());
    }
    loop {
        let mut chunk = vec![0; CHUNK];
        let mut filled = 0;
        // Fill the chunk: a short read is not the end of the file.
        while filled < CHUNK {
            match file.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        chunk.truncate(filled);
        let message = pb::ImportUsersRequest {
            chunk,
            ..Default::default()
        };
        if sender.blocking_send(message).is_err() {
            return Ok(());
        }
        bar.inc(filled as u64);
        if filled < CHUNK {
            return Ok(());
        }
    }
}

/// Prints the job, then the head of its report when it has one: rejected
/// rows, why a FAILED job failed, or the columns the file had in excess.
async fn print_summary(
    signed_in: &SignedIn,
    job: &ImportJobView,
    out: Output,
) -> Result<(), CliError> {
    if out.json {
        return out.json(job);
    }
    emit(render(&key_value_table(job_rows(job))))?;
    if job.dry_run {
        note("dry run: no user was created");
    }
    let report = fetch_report(signed_in, job.import_job_id.clone()).await?;
    let lines: Vec<&str> = report.lines().collect();
    if lines.is_empty() {
        return Ok(());
    }
    let shown = lines.len().min(REPORT_HEAD);
    let mut text = format!("\nREPORT ({shown} of {} lines)", lines.len());
    for line in &lines[..shown] {
        text.push('\n');
        text.push_str(line);
    }
    emit(text)?;
    note(format!(
        "the whole report: rosterctl imports report {}",
        job.import_job_id
    ));
    Ok(())
}

/// The progress shown on stderr: a bar of the bytes sent, then the rows
/// processed so far. Hidden when stderr is not a terminal, so scripts and
/// logs get no control characters.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(size: u64) -> Self {
        if !io::stderr().is_terminal() {
            return Self {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::new(size);
        if let Ok(style) = ProgressStyle::with_template(
            "uploading {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        Self { bar }
    }

    /// The file is sent: the server now checks and imports the rows.
    fn processing(&self) {
        if self.bar.is_hidden() {
            return;
        }
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            self.bar.set_style(style);
        }
        self.bar.set_message("processing rows");
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// The rows of a running job processed so far.
    fn rows(&self, job: &ImportJobView) {
        self.bar.set_message(format!(
            "processing rows: {} done, {} imported, {} rejected",
            job.total_rows, job.imported_rows, job.failed_rows
        ));
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}
