//! `audit list`: the org's audit log, newest first.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{Output, enum_name, parse_time, plain_table, rfc3339, shorten, timestamp},
    paging::{PageArgs, note_next_page},
    session::SignedIn,
};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List(ListAuditArgs),
}

#[derive(Args)]
pub struct ListAuditArgs {
    /// Only events made by this user id or API key id.
    #[arg(long, value_name = "ID")]
    actor: Option<String>,
    /// Only events made by this kind of caller.
    #[arg(long, value_enum)]
    actor_kind: Option<ActorKind>,
    /// Only events about this user.
    #[arg(long, value_name = "USER_ID")]
    target: Option<String>,
    /// Only this action, e.g. user.suspend; ending in "." for a prefix, e.g. user.
    #[arg(long)]
    action: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-01-31T09:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    #[command(flatten)]
    pages: PageArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ActorKind {
    /// A signed-in user.
    User,
    /// A service with an API key.
    ApiKey,
    /// Roster itself.
    System,
    /// An unauthenticated caller.
    Anonymous,
}

impl From<ActorKind> for pb::AuditActorKind {
    fn from(kind: ActorKind) -> Self {
        match kind {
            ActorKind::User => Self::User,
            ActorKind::ApiKey => Self::ApiKey,
            ActorKind::System => Self::System,
            ActorKind::Anonymous => Self::Anonymous,
        }
    }
}

/// Runs one `audit` subcommand.
pub async fn run(signed_in: &SignedIn, command: AuditCommand, out: Output) -> Result<(), CliError> {
    let AuditCommand::List(args) = command;
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since >= until
    {
        return Err(CliError::msg("--since must be before --until"));
    }
    let request = pb::ListAuditEventsRequest {
        page_size: args.pages.size(),
        page_token: String::new(),
        actor_id: args.actor.unwrap_or_default(),
        actor_kind: args
            .actor_kind
            .map_or(pb::AuditActorKind::Unspecified, Into::into) as i32,
        target_user_id: args.target.unwrap_or_default(),
        action: args.action.unwrap_or_default(),
        start_time: args.since.map(timestamp),
        end_time: args.until.map(timestamp),
    };
    let mut client = signed_in.audit();
    let (events, next_page_token) = args
        .pages
        .list(request, async |r| client.list_audit_events(r).await)
        .await?;
    let events: Vec<AuditEventView> = events.into_iter().map(AuditEventView::from).collect();
    out.list(&events, "no audit events match", events_table)?;
    note_next_page(&next_page_token);
    Ok(())
}

/// Longest details shown in a table cell; `--json` has them all.
const DETAILS_WIDTH: usize = 60;

fn events_table(events: &[AuditEventView]) -> comfy_table::Table {
    let mut table = plain_table();
    table.set_header(["TIME", "ACTION", "ACTOR", "TARGET", "DETAILS"]);
    for event in events {
        let actor = if event.actor_id.is_empty() {
            event
                .actor_kind
                .strip_prefix("AUDIT_ACTOR_KIND_")
                .unwrap_or(&event.actor_kind)
                .to_lowercase()
        } else {
            event.actor_id.clone()
        };
        let target = [event.target_user_id.as_str(), &event.target_resource]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let details = match &event.details {
            serde_json::Value::Null => String::new(),
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            serde_json::Value::String(text) => text.clone(),
            value => value.to_string(),
        };
        table.add_row([
            event.time.clone().unwrap_or_else(|| "-".into()),
            event.action.clone(),
            actor,
            if target.is_empty() {
                "-".into()
            } else {
                target
            },
            shorten(&details, DETAILS_WIDTH),
        ]);
    }
    table
}

#[derive(Serialize)]
struct AuditEventView {
    event_id: String,
    time: Option<String>,
    actor_kind: String,
    actor_id: String,
    action: String,
    target_user_id: String,
    target_resource: String,
    request_id: String,
    /// `details_json` as JSON, or as the bare text if it is not JSON.
    details: serde_json::Value,
    peer_address: String,
}

impl From<pb::AuditEvent> for AuditEventView {
    fn from(event: pb::AuditEvent) -> Self {
        let pb::AuditEvent {
            event_id,
            time,
            actor_kind,
            actor_id,
            action,
            target_user_id,
            target_resource,
            request_id,
            details_json,
            peer_address,
        } = event;
        let details = if details_json.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&details_json).unwrap_or(serde_json::Value::String(details_json))
        };
        Self {
            event_id,
            time: rfc3339(time.as_ref()),
            actor_kind: enum_name(actor_kind, pb::AuditActorKind::as_str_name),
            actor_id,
            action,
            target_user_id,
            target_resource,
            request_id,
            details,
            peer_address,
        }
    }
}
