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

use std::{
    collections::{BTreeMap, HashMap},
    io::IsTerminal,
    mem,
    time::Duration,
};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{Attribute, Cell, Color, Table};
use roster::api::{
    Bearer,
    pb::{self, PresenceEventKind as Kind, presence_service_client::PresenceServiceClient},
};
use serde::Serialize;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::{
    error::{CliError, code_name},
    output::{
        Output, datetime, emit, enum_name, note, plain_table, render, rfc3339, write_out, yes_no,
    },
    paging::{PageArgs, note_next_page},
    session::SignedIn,
};

#[derive(Subcommand)]
pub enum PresenceCommand {
    /// Set yourself, or a user you manage, available or unavailable for chats.
    ///
    /// The user must be signed in (not OFFLINE). Becoming available needs
    /// the chats.handle permission; setting someone else needs
    /// presence.manage, or presence.manage_team for members of your teams.
    /// Prints the resulting presence.
    Set {
        /// The new status.
        #[arg(value_enum)]
        status: Availability,
        /// Id of the user [default: yourself].
        #[arg(long = "user", value_name = "USER_ID")]
        user_id: Option<String>,
    },
    /// Show the presence of one or more users, in the order given.
    Get {
        /// Ids of the users.
        #[arg(required = true, value_name = "USER_ID")]
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
    /// Only members of this team; repeat for members of any of several.
    #[arg(long = "team", value_name = "TEAM_ID")]
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
        PresenceCommand::Set { status, user_id } => {
            let presence = signed_in
                .presence()
                .set_availability(pb::SetAvailabilityRequest {
                    user_id: user_id.unwrap_or_default(),
                    status: pb::PresenceStatus::from(status) as i32,
                })
                .await?
                .into_inner()
                .presence
                .ok_or_else(|| CliError::msg("the server's response carries no presence"))?;
            if out.json {
                return out.json(&PresenceView::from(presence));
            }
            emit(render(&presence_table(&[&presence], None, Utc::now())))
        }
        PresenceCommand::Get { user_ids } => {
            let presences = signed_in
                .presence()
                .get_presence(pb::GetPresenceRequest { user_ids })
                .await?
                .into_inner()
                .presences;
            print_presences(presences, out)
        }
        PresenceCommand::List { filter, pages } => {
            list_presence(signed_in, filter, pages, out).await
        }
        PresenceCommand::Watch { filter } => watch(signed_in, filter, out).await,
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
    let client = signed_in.presence();
    let (presences, next_page_token) = pages
        .collect(|page_token| {
            let mut client = client.clone();
            let request = pb::ListPresenceRequest {
                page_token,
                ..request.clone()
            };
            async move {
                let page = client.list_presence(request).await?.into_inner();
                Ok((page.presences, page.next_page_token))
            }
        })
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

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// Display names by user id.
type Names = HashMap<String, String>;

/// One row per presence; with `names`, a NAME column after the id.
fn presence_table(presences: &[&pb::Presence], names: Option<&Names>, now: DateTime<Utc>) -> Table {
    let mut table = plain_table();
    // https://no-color.org: colours are on only for a terminal, and not even
    // then if the user said so.
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        table.force_no_tty();
    }
    let mut header = vec!["USER"];
    if names.is_some() {
        header.push("NAME");
    }
    header.extend(["STATUS", "CHATS", "CAPACITY", "SINCE", "TEAMS"]);
    table.set_header(header);
    for presence in presences {
        let mut row = vec![Cell::new(&presence.user_id)];
        if let Some(names) = names {
            row.push(Cell::new(
                names.get(&presence.user_id).map_or("-", String::as_str),
            ));
        }
        row.extend([
            status_cell(presence.status),
            Cell::new(format!(
                "{}/{}",
                presence.active_chats, presence.effective_max_chats
            )),
            Cell::new(yes_no(presence.has_capacity)),
            Cell::new(since(datetime(presence.status_changed_at.as_ref()), now)),
            Cell::new(presence.team_ids.len()),
        ]);
        table.add_row(row);
    }
    table
}

/// The status without its prefix, coloured like the admin screens Roster
/// replaces: grey for offline, red for unavailable, green for available.
/// comfy-table styles cells only when stdout is a terminal.
fn status_cell(status: i32) -> Cell {
    let cell = Cell::new(short_status(status));
    match pb::PresenceStatus::try_from(status) {
        Ok(pb::PresenceStatus::Available) => cell.fg(Color::Green),
        Ok(pb::PresenceStatus::Unavailable) => cell.fg(Color::Red),
        Ok(pb::PresenceStatus::Offline) => cell.add_attribute(Attribute::Dim),
        _ => cell,
    }
}

/// `PRESENCE_STATUS_AVAILABLE` → `AVAILABLE`.
fn short_status(status: i32) -> String {
    let name = enum_name(status, pb::PresenceStatus::as_str_name);
    match name.strip_prefix("PRESENCE_STATUS_") {
        Some(short) => short.to_owned(),
        None => name,
    }
}

/// How long ago `changed_at` was, e.g. `3m12s`; `-` when unknown.
fn since(changed_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    // A server clock ahead of ours is not a negative age.
    changed_at.map_or_else(|| "-".into(), |t| age((now - t).num_seconds().max(0)))
}

/// Seconds as the two largest units: `45s`, `3m12s`, `2h05m`, `3d4h`.
fn age(seconds: i64) -> String {
    let (days, hours) = (seconds / 86_400, seconds / 3_600 % 24);
    let (minutes, seconds) = (seconds / 60 % 60, seconds % 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

// ---------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------

/// First wait before reconnecting; doubled after each failed attempt.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait before reconnecting.
const LAST_RETRY: Duration = Duration::from_secs(30);
/// How often a live table on a terminal is redrawn to keep SINCE current.
const REDRAW_EVERY: Duration = Duration::from_secs(1);
/// Clears a terminal and moves the cursor home.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

async fn watch(signed_in: &SignedIn, filter: PresenceFilter, out: Output) -> Result<(), CliError> {
    let request = pb::WatchPresenceRequest {
        statuses: filter.statuses(),
        team_ids: filter.team_ids,
        resume_after: None,
    };
    let screen = if out.json {
        None
    } else {
        Some(Screen {
            names: display_names(signed_in).await?,
            terminal: std::io::stdout().is_terminal(),
            frames: 0,
        })
    };
    let mut watcher = Watcher {
        client: signed_in.presence(),
        state: WatchState::default(),
        screen,
        retry: FIRST_RETRY,
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let request = pb::WatchPresenceRequest {
            resume_after: watcher.state.resume_after,
            ..request.clone()
        };
        let end = tokio::select! {
            signal = &mut ctrl_c => return interrupted(signal),
            end = watcher.follow(request) => end?,
        };
        let status = match end {
            StreamEnd::Failed(status) if resumable(&status) => status,
            StreamEnd::Failed(status) => return Err(status.into()),
            StreamEnd::Closed => {
                note("the server ended the watch");
                return Ok(());
            }
            StreamEnd::ReaderGone => return Ok(()),
        };
        let wait = watcher.retry;
        watcher.retry = (wait * 2).min(LAST_RETRY);
        let resume = watcher
            .state
            .resume_after
            .map_or_else(|| "starting over".into(), |n| format!("resuming after {n}"));
        note(format!(
            "watch interrupted: {}: {}; reconnecting in {:.1}s, {resume}",
            code_name(status.code()),
            status.message(),
            wait.as_secs_f64(),
        ));
        tokio::select! {
            signal = &mut ctrl_c => return interrupted(signal),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Ctrl-C is how a watch ends: successfully.
fn interrupted(signal: std::io::Result<()>) -> Result<(), CliError> {
    signal.map_err(|e| CliError::msg(format!("cannot listen for Ctrl-C: {e}")))
}

/// Whether a watch that ended with `status` should reconnect and resume:
/// the server said so (UNAVAILABLE when it shuts down, RESOURCE_EXHAUSTED
/// for a client that fell behind), or the connection broke. A status with a
/// source error was made here from a transport failure; the server never
/// sent it.
fn resumable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted)
        || std::error::Error::source(status).is_some()
}

/// Display names of the users the caller may read, listed once; `None` if
/// the caller may not list users (the table then shows ids only). Names are
/// a nicety: only a refused session stops the watch here.
async fn display_names(signed_in: &SignedIn) -> Result<Option<Names>, CliError> {
    let client = signed_in.users();
    let listed = PageArgs::every()
        .collect(|page_token| {
            let mut client = client.clone();
            async move {
                let page = client
                    .list_users(pb::ListUsersRequest {
                        page_token,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                let names = page
                    .users
                    .into_iter()
                    .map(|user| (user.user_id, user.display_name))
                    .collect();
                Ok((names, page.next_page_token))
            }
        })
        .await;
    match listed {
        Ok((names, _)) => Ok(Some(names.into_iter().collect())),
        Err(CliError::Status(status)) if status.code() == Code::PermissionDenied => Ok(None),
        Err(CliError::Status(status)) if status.code() != Code::Unauthenticated => {
            note(format!(
                "showing user ids only: cannot list users: {}: {}",
                code_name(status.code()),
                status.message()
            ));
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// How one stream ended.
enum StreamEnd {
    /// With OK: not part of the contract, but nothing to resume either.
    Closed,
    /// With an error status, or the stream could not be opened.
    Failed(Status),
    /// Nobody reads stdout any more.
    ReaderGone,
}

struct Watcher {
    client: PresenceServiceClient<InterceptedService<Channel, Bearer>>,
    state: WatchState,
    /// The live table; `None` with `--json`.
    screen: Option<Screen>,
    /// How long to wait before the next reconnection.
    retry: Duration,
}

impl Watcher {
    /// Opens one stream and processes its events until it ends.
    async fn follow(&mut self, request: pb::WatchPresenceRequest) -> Result<StreamEnd, CliError> {
        self.state.stream_starts();
        let mut stream = match self.client.watch_presence(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Ok(StreamEnd::Failed(status)),
        };
        let live = self.screen.as_ref().is_some_and(|screen| screen.terminal);
        let mut redraw = tokio::time::interval(REDRAW_EVERY);
        redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let event = tokio::select! {
                _ = redraw.tick(), if live && self.state.synced => {
                    if !self.draw()? {
                        return Ok(StreamEnd::ReaderGone);
                    }
                    continue;
                }
                message = stream.message() => match message {
                    Ok(Some(event)) => event,
                    Ok(None) => return Ok(StreamEnd::Closed),
                    Err(status) => return Ok(StreamEnd::Failed(status)),
                },
            };
            // The server is answering again.
            self.retry = FIRST_RETRY;
            if self.screen.is_none() {
                let line = serde_json::to_string(&EventView::from(event.clone()))
                    .map_err(|e| CliError::msg(format!("cannot encode the output: {e}")))?;
                if !write_out(line)? {
                    return Ok(StreamEnd::ReaderGone);
                }
            }
            if self.state.apply(event)? && !self.draw()? {
                return Ok(StreamEnd::ReaderGone);
            }
        }
    }

    /// Draws the table if there is one; `Ok(false)` when the reader has gone.
    fn draw(&mut self) -> Result<bool, CliError> {
        match &mut self.screen {
            Some(screen) => screen.draw(&self.state, Utc::now()),
            None => Ok(true),
        }
    }
}

/// The live table of `watch` without `--json`.
struct Screen {
    names: Option<Names>,
    /// Whether stdout is a terminal: then each frame replaces the last.
    terminal: bool,
    frames: u64,
}

impl Screen {
    fn draw(&mut self, state: &WatchState, now: DateTime<Utc>) -> Result<bool, CliError> {
        let mut frame = String::new();
        if self.terminal {
            frame.push_str(CLEAR_SCREEN);
        } else if self.frames > 0 {
            // Frames follow each other in a file or pipe: keep them apart.
            frame.push('\n');
        }
        self.frames += 1;
        frame.push_str(&state.summary());
        if !state.users.is_empty() {
            let mut rows: Vec<&pb::Presence> = state.users.values().collect();
            // By name, so rows stay put while their status changes.
            if let Some(names) = &self.names {
                rows.sort_by_cached_key(|p| {
                    let name = names.get(&p.user_id).map(|n| n.to_lowercase());
                    (name.is_none(), name, p.user_id.clone())
                });
            }
            frame.push_str("\n\n");
            frame.push_str(&render(&presence_table(&rows, self.names.as_ref(), now)));
        }
        write_out(frame)
    }
}

/// What the stream has told so far, and where to resume it.
#[derive(Default)]
struct WatchState {
    /// The users in scope, by id, as of `resume_after`.
    users: BTreeMap<String, pb::Presence>,
    /// The snapshot being received (SNAPSHOT events before SNAPSHOT_END).
    snapshot: BTreeMap<String, pb::Presence>,
    /// Whether `users` holds a complete snapshot and the changes after it.
    synced: bool,
    /// The sequence of the last SNAPSHOT_END, CHANGE or REMOVED processed
    /// since the last complete snapshot; `None` means start over.
    resume_after: Option<u64>,
}

impl WatchState {
    /// A new stream: the part of a snapshot an earlier one cut off is worthless.
    fn stream_starts(&mut self) {
        self.snapshot.clear();
    }

    /// Applies one event; returns whether the users shown changed.
    fn apply(&mut self, event: pb::WatchPresenceResponse) -> Result<bool, CliError> {
        let pb::WatchPresenceResponse {
            sequence,
            kind,
            presence,
            reason: _,
            time: _,
        } = event;
        let presence = |what: &str| {
            presence.ok_or_else(|| {
                CliError::msg(format!("the server sent a {what} event without a presence"))
            })
        };
        match Kind::try_from(kind) {
            Ok(Kind::Snapshot) => {
                let presence = presence("SNAPSHOT")?;
                self.snapshot.insert(presence.user_id.clone(), presence);
                Ok(false)
            }
            Ok(Kind::SnapshotEnd) => {
                // Users known before that the snapshot lacks are out of scope.
                self.users = mem::take(&mut self.snapshot);
                self.synced = true;
                self.resume_after = Some(sequence);
                Ok(true)
            }
            Ok(Kind::Change) => {
                let presence = presence("CHANGE")?;
                self.users.insert(presence.user_id.clone(), presence);
                Ok(self.processed(sequence))
            }
            Ok(Kind::Removed) => {
                let presence = presence("REMOVED")?;
                self.users.remove(&presence.user_id);
                Ok(self.processed(sequence))
            }
            Ok(Kind::Reset) => {
                self.users.clear();
                self.snapshot.clear();
                self.synced = false;
                self.resume_after = None;
                Ok(false)
            }
            Ok(Kind::Unspecified) | Err(_) => {
                note(format!("ignoring a stream event of unknown kind {kind}"));
                Ok(false)
            }
        }
    }

    /// Records a change as processed; returns whether it is one to show.
    fn processed(&mut self, sequence: u64) -> bool {
        // Before the snapshot is complete there is nothing to resume from.
        if self.synced {
            self.resume_after = Some(sequence);
        }
        self.synced
    }

    /// E.g. `3 users: 1 available, 1 unavailable, 1 offline (sequence 42)`.
    fn summary(&self) -> String {
        let count = |status: pb::PresenceStatus| {
            self.users
                .values()
                .filter(|p| p.status == status as i32)
                .count()
        };
        let total = self.users.len();
        let sequence = self
            .resume_after
            .map_or_else(String::new, |n| format!(" (sequence {n})"));
        format!(
            "{total} {}: {} available, {} unavailable, {} offline{sequence}",
            if total == 1 { "user" } else { "users" },
            count(pb::PresenceStatus::Available),
            count(pb::PresenceStatus::Unavailable),
            count(pb::PresenceStatus::Offline),
        )
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct PresenceView {
    user_id: String,
    status: String,
    status_changed_at: Option<String>,
    active_chats: u32,
    effective_max_chats: u32,
    max_chats_source: String,
    team_ids: Vec<String>,
    can_handle_chats: bool,
    has_capacity: bool,
}

impl From<pb::Presence> for PresenceView {
    fn from(presence: pb::Presence) -> Self {
        // Exhaustive on purpose: a new field in the proto must be decided on here.
        let pb::Presence {
            user_id,
            status,
            status_changed_at,
            active_chats,
            effective_max_chats,
            team_ids,
            can_handle_chats,
            max_chats_source,
            has_capacity,
        } = presence;
        Self {
            user_id,
            status: enum_name(status, pb::PresenceStatus::as_str_name),
            status_changed_at: rfc3339(status_changed_at.as_ref()),
            active_chats,
            effective_max_chats,
            max_chats_source: enum_name(max_chats_source, pb::MaxChatsSource::as_str_name),
            team_ids,
            can_handle_chats,
            has_capacity,
        }
    }
}

/// One line of `watch --json`.
#[derive(Serialize)]
struct EventView {
    sequence: u64,
    kind: String,
    presence: Option<PresenceView>,
    reason: String,
    time: Option<String>,
}

impl From<pb::WatchPresenceResponse> for EventView {
    fn from(event: pb::WatchPresenceResponse) -> Self {
        let pb::WatchPresenceResponse {
            sequence,
            kind,
            presence,
            reason,
            time,
        } = event;
        Self {
            sequence,
            kind: enum_name(kind, Kind::as_str_name),
            presence: presence.map(PresenceView::from),
            reason: enum_name(reason, pb::PresenceChangeReason::as_str_name),
            time: rfc3339(time.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(user_id: &str, status: pb::PresenceStatus) -> pb::Presence {
        pb::Presence {
            user_id: user_id.into(),
            status: status as i32,
            ..Default::default()
        }
    }

    fn event(
        sequence: u64,
        kind: Kind,
        presence: Option<pb::Presence>,
    ) -> pb::WatchPresenceResponse {
        pb::WatchPresenceResponse {
            sequence,
            kind: kind as i32,
            presence,
            ..Default::default()
        }
    }

    fn ids(state: &WatchState) -> Vec<&str> {
        state.users.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_snapshot_counts_only_once_complete_and_changes_move_the_resume_point() {
        use pb::PresenceStatus::{Available, Offline, Unavailable};
        let mut state = WatchState::default();
        state.stream_starts();
        let shown = state
            .apply(event(7, Kind::Snapshot, Some(presence("a", Offline))))
            .expect("snapshot");
        assert!(!shown);
        assert!(ids(&state).is_empty());
        assert_eq!(state.resume_after, None);

        // The stream breaks mid-snapshot: the next one starts over.
        state.stream_starts();
        assert_eq!(state.resume_after, None);
        for id in ["b", "c"] {
            state
                .apply(event(9, Kind::Snapshot, Some(presence(id, Offline))))
                .expect("snapshot");
        }
        assert!(state.apply(event(9, Kind::SnapshotEnd, None)).expect("end"));
        assert_eq!(ids(&state), ["b", "c"]);
        assert_eq!(state.resume_after, Some(9));

        assert!(
            state
                .apply(event(12, Kind::Change, Some(presence("b", Available))))
                .expect("change")
        );
        assert_eq!(state.users["b"].status, Available as i32);
        assert!(
            state
                .apply(event(15, Kind::Removed, Some(presence("c", Offline))))
                .expect("removed")
        );
        assert_eq!(ids(&state), ["b"]);
        assert_eq!(state.resume_after, Some(15));
        assert_eq!(
            state.summary(),
            "1 user: 1 available, 0 unavailable, 0 offline (sequence 15)"
        );

        // A resumed stream keeps what is known and goes on from there.
        state.stream_starts();
        assert_eq!(ids(&state), ["b"]);
        assert_eq!(state.resume_after, Some(15));

        // RESET: forget everything, rebuild from the snapshot that follows.
        assert!(!state.apply(event(40, Kind::Reset, None)).expect("reset"));
        assert!(ids(&state).is_empty());
        assert_eq!(state.resume_after, None);
        state
            .apply(event(40, Kind::Snapshot, Some(presence("d", Unavailable))))
            .expect("snapshot");
        assert!(
            state
                .apply(event(40, Kind::SnapshotEnd, None))
                .expect("end")
        );
        assert_eq!(ids(&state), ["d"]);
        assert_eq!(state.resume_after, Some(40));
    }

    #[test]
    fn a_change_event_without_a_presence_is_an_error() {
        let mut state = WatchState::default();
        assert!(state.apply(event(3, Kind::Change, None)).is_err());
    }

    #[test]
    fn ages_show_the_two_largest_units() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(192), "3m12s");
        assert_eq!(age(3_605), "1h00m");
        assert_eq!(age(7_500), "2h05m");
        assert_eq!(age(273_600), "3d4h");
        let now = Utc::now();
        assert_eq!(since(Some(now + chrono::Duration::seconds(5)), now), "0s");
        assert_eq!(since(None, now), "-");
    }

    #[test]
    fn statuses_lose_their_prefix_and_unknown_ones_stay_numbers() {
        assert_eq!(
            short_status(pb::PresenceStatus::Available as i32),
            "AVAILABLE"
        );
        assert_eq!(short_status(99), "99");
    }
}
