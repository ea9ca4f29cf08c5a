//! `presence …`: who can take a chat right now. `set` changes availability,
//! `get` and `list` read presence, `watch` follows the WatchPresence stream.
//!
//! `watch` keeps the stream's resume contract (WatchPresenceResponse in
//! presence.proto): it remembers the sequence of the last SNAPSHOT_END,
//! CHANGE or REMOVED event it processed and, when the stream ends with
//! UNAVAILABLE or RESOURCE_EXHAUSTED or the connection breaks, reconnects
//! after a backoff with `resume_after` set to it, so no change is lost or
//! shown twice. A RESET discards everything known; the snapshot that
//! follows rebuilds it. A snapshot cut off before its SNAPSHOT_END is never
//! resumed from: the next stream starts over.

mod view;
mod watch;

use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};
use roster::api::pb::{self};

use crate::{
    error::CliError,
    output::{Output, emit, note, render},
    paging::{PageArgs, note_next_page},
    session::SignedIn,
    teams::team_ids_of,
    users::{user_id_of, user_ids_of},
};

use view::{PresenceView, presence_table};

#[derive(Subcommand)]
pub enum PresenceCommand {
    /// Set yourself, or a user you manage, available or unavailable for chats.
    ///
    /// The user must be signed in (not OFFLINE). Becoming available needs
    /// the chats.handle permission; setting someone else needs
    /// presence.manage, or presence.manage_team for members of your teams.
    /// Prints the resulting presence.
    ///
    /// Your own presence lasts while your client sends heartbeats: without
    /// them it turns OFFLINE when the org's presence lease (60 s by default)
    /// runs out. --hold keeps sending them until Ctrl-C.
    Set {
        /// The new status.
        #[arg(value_enum)]
        status: Availability,
        /// The user: id, email or login id [default: yourself].
        #[arg(long = "user", value_name = "USER")]
        user_id: Option<String>,
        /// Keep your presence until Ctrl-C by sending heartbeats.
        #[arg(long, conflicts_with = "user_id")]
        hold: bool,
    },
    /// Renew your presence lease once; OFFLINE because the lease ran out,
    /// you come back UNAVAILABLE. Prints your presence.
    Heartbeat,
    /// Show the presence of one or more users, in the order given.
    Get {
        /// The users: ids, emails or login ids.
        #[arg(required = true, value_name = "USER")]
        user_ids: Vec<String>,
    },
    /// List the presence of the active users you may see, by user id.
    List {
        #[command(flatten)]
        filter: PresenceFilter,
        #[command(flatten)]
        pages: PageArgs,
    },
    /// Follow presence live until Ctrl-C: a table redrawn on every change.
    ///
    /// Shows the active users you may see (and match the filters), redrawn
    /// whenever one changes; when stdout is a terminal the screen is cleared
    /// first and the SINCE column is kept current.
    ///
    /// With --json, prints NDJSON instead of the table: one JSON object per
    /// line for every stream event as it arrives, with "sequence", "kind"
    /// (PRESENCE_EVENT_KIND_SNAPSHOT, _SNAPSHOT_END, _CHANGE, _REMOVED or
    /// _RESET), "presence", "reason" and "time". A RESET means everything
    /// before it is stale; a fresh snapshot follows.
    ///
    /// If the stream ends with UNAVAILABLE or RESOURCE_EXHAUSTED, or the
    /// connection breaks, it reconnects after a short wait and resumes after
    /// the last event it processed, so no change is lost or repeated.
    Watch {
        #[command(flatten)]
        filter: PresenceFilter,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Availability {
    /// Taking chats.
    Available,
    /// Signed in, not taking chats.
    Unavailable,
}

impl From<Availability> for pb::PresenceStatus {
    fn from(availability: Availability) -> Self {
        match availability {
            Availability::Available => Self::Available,
            Availability::Unavailable => Self::Unavailable,
        }
    }
}

#[derive(Args)]
pub struct PresenceFilter {
    /// Only members of this team (id or name); repeat for members of any of
    /// several.
    #[arg(long = "team", value_name = "TEAM")]
    team_ids: Vec<String>,
    /// Only users with this status; repeat for several.
    #[arg(long = "status", value_enum, value_name = "STATUS")]
    statuses: Vec<StatusFilter>,
}

impl PresenceFilter {
    fn statuses(&self) -> Vec<i32> {
        self.statuses
            .iter()
            .map(|&status| pb::PresenceStatus::from(status) as i32)
            .collect()
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusFilter {
    Offline,
    Unavailable,
    Available,
}

impl From<StatusFilter> for pb::PresenceStatus {
    fn from(status: StatusFilter) -> Self {
        match status {
            StatusFilter::Offline => Self::Offline,
            StatusFilter::Unavailable => Self::Unavailable,
            StatusFilter::Available => Self::Available,
        }
    }
}

/// Runs one `presence` subcommand.
pub async fn run(
    signed_in: &SignedIn,
    command: PresenceCommand,
    out: Output,
) -> Result<(), CliError> {
    match command {
        PresenceCommand::Set {
            status,
            user_id,
            hold,
        } => {
            let own = user_id.is_none();
            let user_id = match user_id {
                Some(name) => user_id_of(signed_in, name).await?,
                None => String::new(),
            };
            let presence = signed_in
                .presence()
                .set_availability(pb::SetAvailabilityRequest {
                    user_id,
                    status: pb::PresenceStatus::from(status) as i32,
                })
                .await
                .inspect_err(|status| {
                    if own && offline(status) {
                        note(
                            "hint: you are OFFLINE: your presence lease ran out (no heartbeat) \
                             or you signed out; run rosterctl presence heartbeat, then set it \
                             again with --hold to keep it",
                        );
                    }
                })?
                .into_inner()
                .presence
                .ok_or_else(no_presence)?;
            print_presence(presence, out)?;
            if hold {
                hold_presence(signed_in).await?;
            }
            Ok(())
        }
        PresenceCommand::Heartbeat => {
            let beat = signed_in
                .presence()
                .heartbeat(pb::HeartbeatRequest {})
                .await?
                .into_inner();
            print_presence(beat.presence.ok_or_else(no_presence)?, out)
        }
        PresenceCommand::Get { user_ids: names } => {
            let user_ids = user_ids_of(signed_in, names).await?;
            let presences = signed_in
                .presence()
                .get_presence(pb::GetPresenceRequest { user_ids })
                .await?
                .into_inner()
                .presences;
            print_presences(presences, out)
        }
        PresenceCommand::List { mut filter, pages } => {
            filter.team_ids = team_ids_of(signed_in, filter.team_ids).await?;
            list_presence(signed_in, filter, pages, out).await
        }
        PresenceCommand::Watch { mut filter } => {
            filter.team_ids = team_ids_of(signed_in, filter.team_ids).await?;
            watch::watch(signed_in, filter, out).await
        }
    }
}

fn no_presence() -> CliError {
    CliError::msg("the server's response carries no presence")
}

fn print_presence(presence: pb::Presence, out: Output) -> Result<(), CliError> {
    if out.json {
        return out.json(&PresenceView::from(presence));
    }
    emit(render(&presence_table(&[&presence], None, Utc::now())))
}

/// Whether the call was refused because the user is OFFLINE.
fn offline(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .is_some_and(|info| info.reason == "USER_OFFLINE")
}

/// Sends heartbeats at the interval the server asks for until Ctrl-C; a
/// failed heartbeat ends it with its error.
async fn hold_presence(signed_in: &SignedIn) -> Result<(), CliError> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    note("holding your presence: heartbeats until Ctrl-C");
    loop {
        let beat = signed_in
            .presence()
            .heartbeat(pb::HeartbeatRequest {})
            .await?
            .into_inner();
        let interval = beat
            .heartbeat_interval
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .unwrap_or(std::time::Duration::from_secs(10));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            signal = &mut ctrl_c => return watch::interrupted(signal),
        }
    }
}

async fn list_presence(
    signed_in: &SignedIn,
    filter: PresenceFilter,
    pages: PageArgs,
    out: Output,
) -> Result<(), CliError> {
    let request = pb::ListPresenceRequest {
        page_size: pages.size(),
        page_token: String::new(),
        statuses: filter.statuses(),
        team_ids: filter.team_ids,
    };
    let mut client = signed_in.presence();
    let (presences, next_page_token) = pages
        .list(request, async |r| client.list_presence(r).await)
        .await?;
    print_presences(presences, out)?;
    note_next_page(&next_page_token);
    Ok(())
}

fn print_presences(presences: Vec<pb::Presence>, out: Output) -> Result<(), CliError> {
    if out.json {
        let views: Vec<PresenceView> = presences.into_iter().map(PresenceView::from).collect();
        return out.json(&views);
    }
    if presences.is_empty() {
        note("no users match");
        return Ok(());
    }
    let rows: Vec<&pb::Presence> = presences.iter().collect();
    emit(render(&presence_table(&rows, None, Utc::now())))
}
