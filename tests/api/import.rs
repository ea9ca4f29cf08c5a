//! ImportUsers and its jobs and reports, through the real server.

use std::time::Duration;

use roster::api::pb::{self, ImportJobStatus as Status_};
use tonic::{Code, transport::Channel};

use crate::helpers::{
    Rosterd, TestApp, TestDatabase, reason, spawn_app, spawn_app_on, spawn_app_with,
};

const HEADER: &str = "first_name,last_name,login_id,email,roles,teams\n";

fn first(file_name: &str) -> pb::ImportUsersRequest {
    pb::ImportUsersRequest {
        file_name: file_name.into(),
        ..Default::default()
    }
}

/// Uploads `csv` in chunks of `chunk` bytes after `first`.
async fn upload(
    app: &TestApp,
    first: pb::ImportUsersRequest,
    csv: &[u8],
    chunk: usize,
) -> Result<pb::ImportJob, tonic::Status> {
    let mut messages = vec![first];
    messages.extend(csv.chunks(chunk.max(1)).map(|c| pb::ImportUsersRequest {
        chunk: c.to_vec(),
        ..Default::default()
    }));
    app.admin_users()
        .import_users(tokio_stream::iter(messages))
        .await
        .map(|r| r.into_inner().import_job.expect("job"))
}

async fn import(app: &TestApp, csv: &str) -> pb::ImportJob {
    upload(app, first("people.csv"), csv.as_bytes(), 7)
        .await
        .expect("import")
}

async fn report(app: &TestApp, job: &pb::ImportJob) -> String {
    app.admin_users()
        .get_import_report(pb::GetImportReportRequest {
            import_job_id: job.import_job_id.clone(),
        })
        .await
        .expect("report")
        .into_inner()
        .report
}

/// The job as GetImportJob returns it now.
async fn job_of(app: &TestApp, job: &pb::ImportJob) -> pb::ImportJob {
    app.admin_users()
        .get_import_job(pb::GetImportJobRequest {
            import_job_id: job.import_job_id.clone(),
        })
        .await
        .expect("job")
        .into_inner()
        .import_job
        .expect("job")
}

async fn emails(app: &TestApp) -> Vec<String> {
    app.sql_strings("SELECT email FROM users ORDER BY email")
        .await
}

#[tokio::test]
async fn valid_rows_are_invited_and_the_rest_reported_by_line() {
    let app = spawn_app().await;
    let csv = format!(
        "{HEADER}Ana,Lima,ana.lima,ana@example.com,agent;supervisor,\n\
         Bob,Stone,,not-an-email,,\n\
         Cat,Ray,,CAT@example.com,,\n\
         Dup,Licate,,cat@example.com,,\n\
         Eve,Admin,,admin@localhost,,\n\
         Fay,Role,,fay@example.com,wizard,\n\
         Gus,Team,,gus@example.com,,Nowhere\n"
    );
    let job = import(&app, &csv).await;
    assert_eq!(job.status(), Status_::CompletedWithErrors);
    assert_eq!(
        (job.total_rows, job.imported_rows, job.failed_rows),
        (7, 2, 5)
    );
    assert!(job.finished_at.is_some());
    let text = report(&app, &job).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("line 3: email: INVALID_EMAIL"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("line 5: email: EMAIL_TAKEN") && lines[1].contains("line 4"),
        "{text}"
    );
    assert!(lines[2].starts_with("line 6: email: EMAIL_TAKEN"), "{text}");
    assert!(
        lines[3].starts_with("line 7: roles: UNKNOWN_ROLE"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("line 8: teams: UNKNOWN_TEAM"),
        "{text}"
    );

    let ana = app
        .admin_users()
        .list_users(pb::ListUsersRequest {
            query: "ana@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .users
        .remove(0);
    assert_eq!(ana.state(), pb::UserState::Invited);
    assert_eq!(ana.display_name, "Ana Lima");
    assert_eq!(ana.login_id, "ana.lima");
    assert_eq!(ana.roles, vec!["agent", "supervisor"]);
    // One audit entry for the job, one per user naming the job.
    let per_user = app
        .sql_strings(&format!(
            "SELECT target_user_id FROM audit_events WHERE action = 'user.invite' AND details LIKE '%{}%'",
            job.import_job_id
        ))
        .await;
    assert_eq!(per_user.len(), 2);
    let started = app
        .sql_strings("SELECT action FROM audit_events WHERE action = 'import.start'")
        .await;
    assert_eq!(started.len(), 1);
}

#[tokio::test]
async fn a_bom_crlf_quotes_and_extra_columns_are_understood() {
    let app = spawn_app().await;
    let csv = "\u{feff}first_name,last_name,login_id,email,shoe_size\r\n\
               \"Smith, Jr.\",\"O\"\"Neil\",,jr@example.com,42\r\n\
               \"Multi\nLine\",Name,,multi@example.com,1\r\n\
               Zoe,Ng,,zoe@example.com,7\r\n\
               Last,\"Tab\tHere\",,last@example.com,8\r\n";
    let job = import(&app, csv).await;
    assert_eq!(
        (job.total_rows, job.imported_rows),
        (4, 2),
        "{}",
        report(&app, &job).await
    );
    let text = report(&app, &job).await;
    assert!(
        text.contains("line 1: columns ignored (not part of the format): shoe_size"),
        "{text}"
    );
    // A line break inside a name is a control character: refused, at the
    // line the row starts on.
    assert!(text.contains("line 3: first_name: INVALID_NAME"), "{text}");
    // The report names the column at fault.
    assert!(text.contains("line 6: last_name: INVALID_NAME"), "{text}");
    assert!(emails(&app).await.contains(&"jr@example.com".to_owned()));
    let names = app
        .sql_strings("SELECT display_name FROM users WHERE email = 'jr@example.com'")
        .await;
    assert_eq!(names, vec!["Smith, Jr. O\"Neil"]);
}

#[tokio::test]
async fn files_that_cannot_be_read_fail_and_import_nothing() {
    let app = spawn_app().await;
    let before = emails(&app).await;
    for (csv, expected) in [
        ("", "the file is empty"),
        (
            "name,email\nAna,ana@example.com\n",
            "lacks the columns first_name, last_name, login_id; it names name, email; \
             expected first_name, last_name, login_id, email (and optionally roles, teams)",
        ),
        ("first_name,last_name,login_id\n", "lacks the columns email"),
        // PostgreSQL text cannot hold NUL: refused in the header, on both stores.
        (
            "first_name,last_name,login_id,email,shoe\u{0}size\nAna,Lima,,ana@example.com,1\n",
            "the header row (line 1) holds NUL",
        ),
    ] {
        let job = import(&app, csv).await;
        assert_eq!(job.status(), Status_::Failed, "{csv:?}");
        let text = report(&app, &job).await;
        assert!(
            text.starts_with("file: ") && text.contains(expected),
            "{text}"
        );
    }
    // A row that is not UTF-8 is one bad row, not a bad file.
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"Ana,\xff\xfe,,ana@example.com,,\nBea,Ok,,bea@example.com,,\n");
    let job = upload(&app, first("latin1.csv"), &bytes, 5)
        .await
        .expect("import");
    assert_eq!((job.imported_rows, job.failed_rows), (1, 1));
    assert!(report(&app, &job).await.starts_with("line 2: INVALID_TEXT"));
    // And so is a row holding NUL.
    let csv = format!("{HEADER}Cy,Ok,,cy@example.com,,\nDi,N\u{0}ul,,di@example.com,,\n");
    let job = import(&app, &csv).await;
    assert_eq!((job.imported_rows, job.failed_rows), (1, 1));
    let text = report(&app, &job).await;
    assert!(
        text.starts_with("line 3: INVALID_TEXT: the line holds NUL"),
        "{text}"
    );
    let after = emails(&app).await;
    assert_eq!(after.len(), before.len() + 2);
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_imports_nothing() {
    let app = spawn_app_with(|c| c.import_max_bytes = 1000).await;
    let mut csv = HEADER.to_owned();
    for i in 0..100 {
        csv.push_str(&format!("User,{i},,user{i}@example.com,,\n"));
    }
    let err = upload(&app, first("big.csv"), csv.as_bytes(), 100)
        .await
        .expect_err("too large");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::ResourceExhausted, "FILE_TOO_LARGE")
    );
    assert_eq!(emails(&app).await.len(), 1);
    let jobs = list(&app, pb::ListImportJobsRequest::default()).await;
    assert_eq!(jobs[0].status(), Status_::Failed);
}

#[tokio::test]
async fn an_upload_can_be_answered_on_arrival_and_followed_to_the_end() {
    let app = spawn_app_with(|c| c.import_max_bytes = 200_000).await;
    let mut csv = HEADER.to_owned();
    for i in 0..5000 {
        csv.push_str(&format!("User,{i},,user{i}@example.com,,\n"));
    }
    csv.push_str("Bad,Row,,not-an-email,,\n");
    let early = || pb::ImportUsersRequest {
        return_when_uploaded: true,
        ..first("early.csv")
    };
    let job = upload(&app, early(), csv.as_bytes(), 4096)
        .await
        .expect("answered on arrival");
    assert_eq!(job.status(), Status_::Uploading);
    let mut seen = vec![job.total_rows];
    let job = loop {
        let job = job_of(&app, &job).await;
        seen.push(job.total_rows);
        if job.status() != Status_::Uploading {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job.status(), Status_::CompletedWithErrors);
    assert_eq!(
        (job.total_rows, job.imported_rows, job.failed_rows),
        (5001, 5000, 1)
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "counts only grow: {seen:?}"
    );
    assert_eq!(emails(&app).await.len(), 5001);

    // A file refused on arrival is still answered with the refusal.
    csv.push_str(&"x".repeat(200_000));
    let err = upload(&app, early(), csv.as_bytes(), 4096)
        .await
        .expect_err("too large");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::ResourceExhausted, "FILE_TOO_LARGE")
    );
}

#[tokio::test]
async fn the_seat_limit_stops_rows_past_it() {
    let app = spawn_app().await;
    app.update_org(
        pb::OrgSettings {
            seat_limit: 3,
            ..Default::default()
        },
        &["seat_limit"],
    )
    .await;
    let mut csv = HEADER.to_owned();
    for i in 0..5 {
        csv.push_str(&format!("User,{i},,user{i}@example.com,,\n"));
    }
    let job = import(&app, &csv).await;
    assert_eq!((job.imported_rows, job.failed_rows), (2, 3));
    let text = report(&app, &job).await;
    assert_eq!(text.matches("SEAT_LIMIT_REACHED").count(), 3, "{text}");
}

#[tokio::test]
async fn a_dry_run_reports_and_creates_nothing() {
    let app = spawn_app().await;
    let csv = format!("{HEADER}Ana,Lima,,ana@example.com,,\nBob,X,,bad,,\n");
    let job = upload(
        &app,
        pb::ImportUsersRequest {
            dry_run: true,
            ..first("dry.csv")
        },
        csv.as_bytes(),
        64,
    )
    .await
    .expect("dry run");
    assert!(job.dry_run);
    assert_eq!((job.imported_rows, job.failed_rows), (1, 1));
    assert_eq!(emails(&app).await.len(), 1);
}

#[tokio::test]
async fn a_retried_upload_returns_the_first_job() {
    let app = spawn_app().await;
    let csv = format!("{HEADER}Ana,Lima,,ana@example.com,,\n");
    let with_id = || pb::ImportUsersRequest {
        request_id: "upload-1".into(),
        ..first("once.csv")
    };
    let a = upload(&app, with_id(), csv.as_bytes(), 64)
        .await
        .expect("first");
    let b = upload(&app, with_id(), csv.as_bytes(), 64)
        .await
        .expect("retry");
    assert_eq!(a.import_job_id, b.import_job_id);
    assert_eq!(
        list(&app, pb::ListImportJobsRequest::default()).await.len(),
        1
    );
}

async fn list(app: &TestApp, request: pb::ListImportJobsRequest) -> Vec<pb::ImportJob> {
    app.admin_users()
        .list_import_jobs(request)
        .await
        .expect("list jobs")
        .into_inner()
        .import_jobs
}

#[tokio::test]
async fn jobs_are_listed_sorted_and_paged_and_bad_ids_refused() {
    let app = spawn_app().await;
    for name in ["b.csv", "c.csv", "a.csv"] {
        upload(&app, first(name), HEADER.as_bytes(), 64)
            .await
            .expect("import");
    }
    let by_name = list(
        &app,
        pb::ListImportJobsRequest {
            order_by: pb::ImportJobOrder::FileName.into(),
            ..Default::default()
        },
    )
    .await;
    let names: Vec<_> = by_name.iter().map(|j| j.file_name.as_str()).collect();
    assert_eq!(names, vec!["a.csv", "b.csv", "c.csv"]);
    let first_page = app
        .admin_users()
        .list_import_jobs(pb::ListImportJobsRequest {
            page_size: 2,
            order_by: pb::ImportJobOrder::FileName.into(),
            descending: true,
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(first_page.import_jobs.len(), 2);
    assert_eq!(first_page.import_jobs[0].file_name, "c.csv");
    let second = list(
        &app,
        pb::ListImportJobsRequest {
            page_size: 2,
            page_token: first_page.next_page_token,
            order_by: pb::ImportJobOrder::FileName.into(),
            descending: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        second
            .iter()
            .map(|j| j.file_name.as_str())
            .collect::<Vec<_>>(),
        vec!["a.csv"]
    );

    let missing = app
        .admin_users()
        .get_import_job(pb::GetImportJobRequest {
            import_job_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "IMPORT_JOB_NOT_FOUND")
    );
    let bad = app
        .admin_users()
        .get_import_job(pb::GetImportJobRequest {
            import_job_id: "x".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let no_name = upload(&app, first(""), HEADER.as_bytes(), 64)
        .await
        .expect_err("no name");
    assert_eq!(crate::helpers::bad_fields(&no_name), vec!["file_name"]);
}

#[tokio::test]
async fn a_job_cut_off_by_a_stop_is_failed_at_the_next_start() {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let app = spawn_app_on(database).await;
    let job = import(&app, &format!("{HEADER}Ana,Lima,,ana@example.com,,\n")).await;
    // As a killed server leaves it: still UPLOADING.
    app.sql(&format!(
        "UPDATE import_jobs SET status = 'uploading', finished_at = NULL WHERE id = '{}'",
        job.import_job_id
    ))
    .await;
    let mut config = roster::config::Config::for_tests(url);
    config.bootstrap_org = crate::helpers::ORG.into();
    let (_addr, _server) = crate::helpers::start(config).await;
    let after = job_of(&app, &job).await;
    assert_eq!(after.status(), Status_::Failed);
    assert_eq!(after.imported_rows, 1);
    assert!(
        report(&app, &job)
            .await
            .contains("the server stopped during the import")
    );
}

#[tokio::test]
async fn an_export_imports_back_unchanged() {
    let source = spawn_app().await;
    let mut request =
        crate::helpers::create_request("eq@example.com", "=1+2 Formula", &["supervisor"]);
    request.user.as_mut().expect("user").login_id = "-dash".into();
    source
        .admin_users()
        .create_user(request)
        .await
        .expect("create");
    let mut stream = source
        .admin_users()
        .export_users(pb::ExportUsersRequest::default())
        .await
        .expect("export")
        .into_inner();
    let mut csv = Vec::new();
    while let Some(message) = stream.message().await.expect("chunk") {
        csv.extend(message.chunk);
    }

    let target = spawn_app().await;
    let job = upload(&target, first("export.csv"), &csv, 1000)
        .await
        .expect("import");
    // The admin's own row is taken in the target; the other comes back.
    assert_eq!(
        (job.imported_rows, job.failed_rows),
        (1, 1),
        "{}",
        report(&target, &job).await
    );
    let copy = target
        .admin_users()
        .list_users(pb::ListUsersRequest {
            query: "eq@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .users
        .remove(0);
    assert_eq!(copy.display_name, "=1+2 Formula");
    assert_eq!(copy.login_id, "-dash");
    assert_eq!(copy.roles, vec!["supervisor"]);
}

#[tokio::test]
async fn a_slow_upload_is_not_cut_by_the_request_timeout() {
    use tokio_stream::StreamExt;
    let app = spawn_app_with(|c| c.request_timeout_secs = 1).await;
    let messages = vec![
        first("slow.csv"),
        pb::ImportUsersRequest {
            chunk: format!("{HEADER}Ana,Lima,,ana@example.com,,\n").into_bytes(),
            ..Default::default()
        },
    ];
    // The file arrives after more than the server's request timeout.
    let slow = tokio_stream::iter(messages).throttle(std::time::Duration::from_millis(1500));
    let job = app
        .admin_users()
        .import_users(slow)
        .await
        .expect("import")
        .into_inner()
        .import_job
        .expect("job");
    assert_eq!(job.imported_rows, 1);
}

#[tokio::test]
async fn a_million_rows_stream_through_without_trouble() {
    let app = spawn_app().await;
    // A million short rows, each missing its email: every one is read,
    // checked and reported, none is kept in memory longer than its batch.
    let mut csv = HEADER.as_bytes().to_vec();
    for _ in 0..1_000_000 {
        csv.extend_from_slice(b"a,b,,\n");
    }
    let job = upload(&app, first("million.csv"), &csv, 1 << 20)
        .await
        .expect("import");
    assert_eq!(job.status(), Status_::CompletedWithErrors);
    assert_eq!((job.total_rows, job.failed_rows), (1_000_000, 1_000_000));
    let lines = app
        .sql_strings(&format!(
            "SELECT text FROM import_report_lines WHERE job_id = '{}' AND line_no = 1000001",
            job.import_job_id
        ))
        .await;
    assert_eq!(lines.len(), 1, "the last row is reported at its line");
}

/// A client of `addr`'s UserService signed in as the bootstrap admin.
async fn admin_at(addr: std::net::SocketAddr) -> crate::helpers::Users {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let token = pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            org: crate::helpers::ORG.into(),
            login: crate::helpers::ADMIN_EMAIL.into(),
            password: crate::helpers::ADMIN_PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .session_token;
    pb::user_service_client::UserServiceClient::with_interceptor(
        channel,
        roster::api::Bearer::new(&token).expect("token is header text"),
    )
}

/// The first column of every row of `query` on the database at `url`.
async fn strings_at(url: &str, query: &str) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.expect("db");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            query,
        ))
        .await
        .expect("query");
    db.close().await.ok();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text column"))
        .collect()
}

#[tokio::test]
async fn a_killed_server_leaves_a_failed_job_whose_report_matches_the_users() {
    // Enough rows that the import is still running when the first batches
    // are seen committed, even in a release build. Every tenth row is bad,
    // so the report has row lines too.
    const ROWS: usize = 100_000;
    let bad = |i: usize| i % 10 == 9;
    let mut csv = HEADER.to_owned();
    for i in 0..ROWS {
        if bad(i) {
            csv.push_str(&format!("Crash,{i},,not-an-email-{i},,\n"));
        } else {
            csv.push_str(&format!("Crash,{i},,crash{i}@example.com,,\n"));
        }
    }
    let database = TestDatabase::create().await;
    let mut rosterd = Rosterd::start(&database.url).await;
    let client = admin_at(rosterd.addr).await;

    let mut uploader = client.clone();
    let upload = tokio::spawn(async move {
        let mut messages = vec![first("crash.csv")];
        messages.extend(
            csv.as_bytes()
                .chunks(64 * 1024)
                .map(|c| pb::ImportUsersRequest {
                    chunk: c.to_vec(),
                    ..Default::default()
                }),
        );
        uploader.import_users(tokio_stream::iter(messages)).await
    });
    // Kill it once a few batches are committed, while rows remain.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no batch committed within 10 minutes"
        );
        if upload.is_finished() {
            panic!(
                "the upload ended before the server was killed: {:?}",
                upload.await
            );
        }
        let jobs = client
            .clone()
            .list_import_jobs(pb::ListImportJobsRequest::default())
            .await
            .expect("list jobs")
            .into_inner()
            .import_jobs;
        if jobs.iter().any(|j| j.imported_rows >= 1_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rosterd.kill();
    let cut = tokio::time::timeout(Duration::from_secs(60), upload)
        .await
        .expect("the upload notices the server is gone")
        .expect("upload task");
    assert!(cut.is_err(), "the import finished before the kill: {cut:?}");

    let mut config = roster::config::Config::for_tests(database.url.clone());
    config.bootstrap_org = crate::helpers::ORG.into();
    let (addr, _server) = crate::helpers::start(config).await;
    let mut client = admin_at(addr).await;
    let job = client
        .list_import_jobs(pb::ListImportJobsRequest::default())
        .await
        .expect("list jobs")
        .into_inner()
        .import_jobs
        .remove(0);
    assert_eq!(job.status(), Status_::Failed);
    assert!(job.finished_at.is_some());
    let read = job.total_rows as usize;
    assert!(0 < job.imported_rows && read < ROWS, "{job:?}");
    assert_eq!(
        job.total_rows,
        job.imported_rows + job.failed_rows,
        "{job:?}"
    );

    // Batches commit in file order, so the rows read are the first `read`:
    // each good one is a user, each bad one a report line, and nothing else.
    let report = client
        .get_import_report(pb::GetImportReportRequest {
            import_job_id: job.import_job_id.clone(),
        })
        .await
        .expect("report")
        .into_inner()
        .report;
    let mut lines: Vec<&str> = report.lines().collect();
    let last = lines.pop().expect("a last line");
    assert!(
        last.starts_with("file: the server stopped during the import;")
            && last.contains(&format!("; {} rows were imported", job.imported_rows)),
        "{last}"
    );
    let reported: Vec<String> = lines
        .iter()
        .map(|l| l.split(':').next().expect("line N").to_owned())
        .collect();
    let expected: Vec<String> = (0..read)
        .filter(|i| bad(*i))
        .map(|i| format!("line {}", i + 2))
        .collect();
    assert_eq!(reported, expected);
    assert_eq!(lines.len(), job.failed_rows as usize);

    let mut emails = strings_at(
        &database.url,
        "SELECT email FROM users WHERE email LIKE 'crash%'",
    )
    .await;
    emails.sort();
    let mut wanted: Vec<String> = (0..read)
        .filter(|i| !bad(*i))
        .map(|i| format!("crash{i}@example.com"))
        .collect();
    wanted.sort();
    assert_eq!(emails.len(), job.imported_rows as usize);
    assert_eq!(emails, wanted);

    // One audit entry per user the job created, and no other.
    let mut user_ids = strings_at(
        &database.url,
        "SELECT id FROM users WHERE email LIKE 'crash%'",
    )
    .await;
    let mut invited = strings_at(
        &database.url,
        &format!(
            "SELECT target_user_id FROM audit_events WHERE action = 'user.invite' AND details LIKE '%{}%'",
            job.import_job_id
        ),
    )
    .await;
    user_ids.sort();
    invited.sort();
    assert_eq!(invited, user_ids);
}

#[tokio::test]
async fn an_upload_the_client_abandons_ends_failed() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    // The first message, then a file that never finishes.
    let declared = pb::ImportUsersRequest {
        size_bytes: Some(1000),
        ..first("abandoned.csv")
    };
    let stream = tokio_stream::StreamExt::chain(
        tokio_stream::iter(vec![declared]),
        tokio_stream::pending::<pb::ImportUsersRequest>(),
    );
    let call = tokio::spawn(async move { users.import_users(stream).await });
    let job = loop {
        let jobs = list(&app, pb::ListImportJobsRequest::default()).await;
        if let Some(job) = jobs.into_iter().next() {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.status(), Status_::Uploading);
    call.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let jobs = list(&app, pb::ListImportJobsRequest::default()).await;
        if jobs[0].status() == Status_::Failed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job stayed {:?}",
            jobs[0].status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = report(&app, &job).await;
    assert!(text.contains("the upload broke off"), "{text}");
}
