//! `report activity`: time per presence status and peak open chats, per
//! user and day or hour, as a table, JSON or CSV.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{Output, emit, note, parse_time, plain_table, render, rfc3339, timestamp, write_raw},
    paging::{PageArgs, note_next_page},
    session::SignedIn,
    teams::team_ids_of,
    users::user_ids_of,
};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Time each user spent OFFLINE, UNAVAILABLE and AVAILABLE, and their
    /// peak open chats, per UTC day or hour.
    Activity(ActivityArgs),
}

#[derive(Args)]
pub struct ActivityArgs {
    /// Only this user, by id, email or login id (repeatable); with neither
    /// --user nor --team, everyone you may read.
    #[arg(long = "user", value_name = "USER")]
    users: Vec<String>,
    /// Only the members of this team (repeatable).
    #[arg(long = "team", value_name = "TEAM")]
    teams: Vec<String>,
    /// Start of the range (RFC 3339, e.g. 2026-01-31T00:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    since: DateTime<Utc>,
    /// End of the range (RFC 3339) [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Bucket size.
    #[arg(long, value_enum, default_value = "day")]
    by: Bucket,
    /// Write CSV (durations in seconds) instead of a table or JSON.
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    pages: PageArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Bucket {
    Day,
    Hour,
}

/// Runs one `report` subcommand.
pub async fn run(
    signed_in: &SignedIn,
    command: ReportCommand,
    out: Output,
) -> Result<(), CliError> {
    let ReportCommand::Activity(args) = command;
    let until = args.until.unwrap_or_else(Utc::now);
    if args.since >= until {
        return Err(CliError::msg("--since must be before --until"));
    }
    let request = pb::GetActivityRequest {
        user_ids: user_ids_of(signed_in, args.users).await?,
        team_ids: team_ids_of(signed_in, args.teams).await?,
        start_time: Some(timestamp(args.since)),
        end_time: Some(timestamp(until)),
        granularity: match args.by {
            Bucket::Day => pb::ActivityGranularity::Day,
            Bucket::Hour => pb::ActivityGranularity::Hour,
        }
        .into(),
        page_size: args.pages.size(),
        page_token: String::new(),
    };
    let mut client = signed_in.reports();
    let (rows, next_page_token) = args
        .pages
        .list(request, async |r| client.get_activity(r).await)
        .await?;
    let rows: Vec<ActivityView> = rows.into_iter().map(ActivityView::from).collect();
    if args.csv {
        write_raw(&csv_of(&rows)?)?;
    } else if out.json {
        out.json(&rows)?;
    } else if rows.is_empty() {
        note("no activity in the range");
    } else {
        emit(render(&activity_table(&rows)))?;
    }
    note_next_page(&next_page_token);
    Ok(())
}

/// One row as printed: durations in whole seconds.
#[derive(Serialize)]
struct ActivityView {
    user_id: String,
    bucket_start: Option<String>,
    offline_seconds: i64,
    unavailable_seconds: i64,
    available_seconds: i64,
    peak_active_chats: u32,
}

impl From<pb::ActivityRow> for ActivityView {
    fn from(row: pb::ActivityRow) -> Self {
        let pb::ActivityRow {
            user_id,
            bucket_start,
            offline_duration,
            unavailable_duration,
            available_duration,
            peak_active_chats,
        } = row;
        let seconds = |d: Option<prost_types::Duration>| d.map_or(0, |d| d.seconds);
        Self {
            user_id,
            bucket_start: rfc3339(bucket_start.as_ref()),
            offline_seconds: seconds(offline_duration),
            unavailable_seconds: seconds(unavailable_duration),
            available_seconds: seconds(available_duration),
            peak_active_chats,
        }
    }
}

fn csv_of(rows: &[ActivityView]) -> Result<Vec<u8>, CliError> {
    let failed = |e: csv::Error| CliError::msg(format!("cannot write CSV: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(failed)?;
    }
    if rows.is_empty() {
        writer
            .write_record([
                "user_id",
                "bucket_start",
                "offline_seconds",
                "unavailable_seconds",
                "available_seconds",
                "peak_active_chats",
            ])
            .map_err(failed)?;
    }
    writer
        .into_inner()
        .map_err(|e| CliError::msg(format!("cannot write CSV: {e}")))
}

/// `3h 05m 09s`, shortest form that says it all.
fn hms(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn activity_table(rows: &[ActivityView]) -> comfy_table::Table {
    let mut table = plain_table();
    table.set_header([
        "USER",
        "FROM",
        "OFFLINE",
        "UNAVAILABLE",
        "AVAILABLE",
        "PEAK CHATS",
    ]);
    for row in rows {
        table.add_row([
            row.user_id.clone(),
            row.bucket_start.clone().unwrap_or_else(|| "-".into()),
            hms(row.offline_seconds),
            hms(row.unavailable_seconds),
            hms(row.available_seconds),
            row.peak_active_chats.to_string(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(hms(0), "0s");
        assert_eq!(hms(59), "59s");
        assert_eq!(hms(61), "1m 01s");
        assert_eq!(hms(3 * 3600 + 5 * 60 + 9), "3h 05m 09s");
    }

    #[test]
    fn csv_has_a_header_even_without_rows() {
        let empty = String::from_utf8(csv_of(&[]).unwrap()).unwrap();
        assert_eq!(
            empty.trim(),
            "user_id,bucket_start,offline_seconds,unavailable_seconds,available_seconds,peak_active_chats"
        );
        let one = ActivityView {
            user_id: "u".into(),
            bucket_start: Some("2026-12-01T00:00:00Z".into()),
            offline_seconds: 1,
            unavailable_seconds: 2,
            available_seconds: 3,
            peak_active_chats: 4,
        };
        let text = String::from_utf8(csv_of(&[one]).unwrap()).unwrap();
        assert_eq!(text.lines().nth(1), Some("u,2026-12-01T00:00:00Z,1,2,3,4"));
    }
}
