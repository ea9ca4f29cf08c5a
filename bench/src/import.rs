//! Import of a CSV file of N users through `ImportUsers`, against the
//! storage ceiling: the same rows (users, their roles, one audit entry
//! each) written with raw multi-row INSERTs through the same driver and
//! connection settings, in transactions of the same size.

use std::{
    io::{BufWriter, Read, Write},
    time::Instant,
};

use chrono::Utc;
use roster::{api::pb, store::Store};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    BenchError, Options,
    child::{Server, ServerKind},
    client::{self, Users},
    database::Database,
    report::{Measure, Outcome, Target},
};

/// Rows per transaction, as the import commits them.
const TRANSACTION_ROWS: usize = 2000;
/// Bytes per upload message, as rosterctl sends them.
const CHUNK: usize = 64 * 1024;
/// What the import issue asks for on SQLite.
const SQLITE_TARGET: f64 = 20_000.0;

pub async fn run(options: &Options) -> Result<Vec<Outcome>, BenchError> {
    let rows = options.import_rows();
    let file = write_csv(rows)?;
    let roster = import(options, &file, rows).await?;
    let ceiling = raw_insert(options, rows).await?;
    Ok(vec![Outcome {
        scenario: format!(
            "ImportUsers, {} rows, no invites",
            crate::report::thousands(rows as f64)
        ),
        store: options.store,
        unit: "rows/s",
        roster,
        ceiling: Some(("raw batched INSERT", ceiling)),
        peer: None,
        targets: (options.store == crate::database::StoreKind::Sqlite)
            .then_some(Target::Rate(SQLITE_TARGET))
            .into_iter()
            .collect(),
    }])
}

/// A file of `rows` valid, distinct users with a role each.
fn write_csv(rows: usize) -> Result<tempfile::NamedTempFile, BenchError> {
    let mut file = tempfile::NamedTempFile::new()?;
    let mut out = BufWriter::new(file.as_file_mut());
    writeln!(out, "first_name,last_name,login_id,email,roles,teams")?;
    for i in 0..rows {
        writeln!(
            out,
            "Agent{i},Number {i},agent{i},agent{i}@bench.example.com,agent,"
        )?;
    }
    out.flush()?;
    drop(out);
    Ok(file)
}

/// Imports `rows` generated users, for scenarios that need them.
pub async fn seed(users: &mut Users, rows: usize) -> Result<(), BenchError> {
    let file = write_csv(rows)?;
    let job = upload(users, &file).await?;
    imported_all(&job, rows)
}

/// Imports the file into a fresh Roster; the rate counts from the first
/// byte sent to the answer, which comes when every row is processed.
async fn import(
    options: &Options,
    file: &tempfile::NamedTempFile,
    rows: usize,
) -> Result<Measure, BenchError> {
    let database = Database::fresh(options.store, &options.postgres_url).await?;
    let server = Server::start(ServerKind::Roster, &client::roster_env(&database.url)).await?;
    let channel = client::connect(&server).await?;
    let token = client::login(&channel, client::ADMIN_EMAIL, client::ADMIN_PASSWORD).await?;
    let mut users = client::users(&channel, &token)?;
    let usage = server.measure()?;
    let started = Instant::now();
    let job = upload(&mut users, file).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let server_use = usage.finish()?;
    imported_all(&job, rows)?;
    drop(server);
    database.drop().await?;
    Ok(Measure {
        rate: rows as f64 / elapsed,
        server: Some(server_use),
        ..Measure::default()
    })
}

/// Sends the file in chunks, as rosterctl does, and waits for the job.
async fn upload(
    users: &mut Users,
    file: &tempfile::NamedTempFile,
) -> Result<pb::ImportJob, BenchError> {
    let size = file.as_file().metadata()?.len();
    let mut reader = file.reopen()?;
    let (sender, receiver) = mpsc::channel(4);
    let feeder = tokio::task::spawn_blocking(move || -> Result<(), BenchError> {
        let first = pb::ImportUsersRequest {
            file_name: "bench.csv".into(),
            size_bytes: Some(size),
            ..Default::default()
        };
        if sender.blocking_send(first).is_err() {
            return Ok(());
        }
        loop {
            let mut chunk = vec![0; CHUNK];
            let n = reader.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            chunk.truncate(n);
            let message = pb::ImportUsersRequest {
                chunk,
                ..Default::default()
            };
            if sender.blocking_send(message).is_err() {
                return Ok(());
            }
        }
    });
    let job = users
        .import_users(ReceiverStream::new(receiver))
        .await?
        .into_inner()
        .import_job
        .ok_or_else(|| BenchError::msg("ImportUsers answered without a job"))?;
    feeder.await??;
    Ok(job)
}

fn imported_all(job: &pb::ImportJob, rows: usize) -> Result<(), BenchError> {
    if job.status() != pb::ImportJobStatus::Completed || job.imported_rows as usize != rows {
        return Err(BenchError::msg(format!(
            "the import ended {:?} with {} of {rows} rows imported",
            job.status(),
            job.imported_rows
        )));
    }
    Ok(())
}

/// Writes the rows an import of `rows` users writes, with plain SQL, into a
/// database Roster has migrated and bootstrapped.
async fn raw_insert(options: &Options, rows: usize) -> Result<Measure, BenchError> {
    let database = Database::fresh(options.store, &options.postgres_url).await?;
    // Let Roster create the schema and the org, then leave.
    drop(Server::start(ServerKind::Roster, &client::roster_env(&database.url)).await?);
    let store = Store::connect(&database.url, 0, std::time::Duration::from_secs(10)).await?;
    let db = store.connection();
    let backend = db.get_database_backend();
    let org_id = db
        .query_one_raw(Statement::from_string(backend, "SELECT id FROM orgs"))
        .await?
        .ok_or_else(|| BenchError::msg("no org"))?
        .try_get::<String>("", "id")?;
    let started = Instant::now();
    for first in (0..rows).step_by(TRANSACTION_ROWS) {
        let batch: Vec<usize> = (first..rows.min(first + TRANSACTION_ROWS)).collect();
        let tx = db.begin().await?;
        let ids: Vec<String> = batch
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        for chunk in batch.chunks(500).zip(ids.chunks(500)) {
            let (numbers, ids) = chunk;
            let values = numbers
                .iter()
                .zip(ids)
                .flat_map(|(i, id)| user_values(&org_id, *i, id));
            tx.execute_raw(insert(backend, USERS, numbers.len(), values.collect()))
                .await?;
        }
        let roles = ids
            .iter()
            .flat_map(|id| [Value::from(id.clone()), Value::from("agent")]);
        tx.execute_raw(insert(backend, USER_ROLES, ids.len(), roles.collect()))
            .await?;
        for ids in ids.chunks(1000) {
            let values = ids.iter().flat_map(|id| audit_values(&org_id, id));
            tx.execute_raw(insert(backend, AUDIT, ids.len(), values.collect()))
                .await?;
        }
        tx.commit().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    store.close().await?;
    database.drop().await?;
    Ok(Measure {
        rate: rows as f64 / elapsed,
        ..Measure::default()
    })
}

const USERS: (&str, &[&str]) = (
    "users",
    &[
        "id",
        "org_id",
        "email",
        "login_id",
        "display_name",
        "sort_key",
        "search_text",
        "public_name",
        "state",
        "locked_at",
        "max_chats",
        "login_with",
        "language",
        "landline_phone",
        "mobile_phone",
        "job_title",
        "location",
        "can_view_colleagues_chats",
        "version",
        "created_at",
        "updated_at",
        "last_login_at",
        "last_logout_at",
        "suspend_reason",
        "has_avatar",
    ],
);
const USER_ROLES: (&str, &[&str]) = ("user_roles", &["user_id", "role_name"]);
const AUDIT: (&str, &[&str]) = (
    "audit_events",
    &[
        "id",
        "org_id",
        "occurred_at",
        "actor_kind",
        "actor_id",
        "action",
        "target_user_id",
        "request_id",
        "peer",
        "details",
    ],
);

fn user_values(org_id: &str, i: usize, id: &str) -> Vec<Value> {
    let name = format!("Agent{i} Number {i}");
    let email = format!("agent{i}@bench.example.com");
    let login = format!("agent{i}");
    let now = Utc::now();
    vec![
        id.into(),
        org_id.into(),
        email.clone().into(),
        login.clone().into(),
        name.clone().into(),
        name.to_lowercase().into(),
        format!("{} {email} {login} {id}", name.to_lowercase()).into(),
        "".into(),
        "invited".into(),
        Value::ChronoDateTimeUtc(None),
        Value::Int(None),
        Value::String(None),
        "en".into(),
        "".into(),
        "".into(),
        "".into(),
        "".into(),
        false.into(),
        1i64.into(),
        now.into(),
        now.into(),
        Value::ChronoDateTimeUtc(None),
        Value::ChronoDateTimeUtc(None),
        Value::String(None),
        false.into(),
    ]
}

fn audit_values(org_id: &str, user_id: &str) -> Vec<Value> {
    vec![
        uuid::Uuid::now_v7().to_string().into(),
        org_id.into(),
        Utc::now().into(),
        "user".into(),
        Value::String(None),
        "user.invite".into(),
        user_id.into(),
        Value::String(None),
        Value::String(None),
        format!(
            r#"{{"after":{{"user_id":"{user_id}","state":"invited"}},"import_job_id":"bench"}}"#
        )
        .into(),
    ]
}

/// `INSERT INTO table (columns) VALUES (…), (…)` for `rows` rows.
fn insert(
    backend: DbBackend,
    (table, columns): (&str, &[&str]),
    rows: usize,
    values: Vec<Value>,
) -> Statement {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns.len() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                DbBackend::Postgres => sql.push_str(&format!("${n}")),
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    Statement::from_sql_and_values(backend, sql, values)
}
