//! `presence watch`: the WatchPresence stream, resumed across breaks,
//! drawn as a live table or printed as JSON lines (see the parent module).

use std::{collections::BTreeMap, io::IsTerminal, mem, time::Duration};

use chrono::{DateTime, Utc};
use roster::api::{
    Bearer,
    pb::{self, PresenceEventKind as Kind, presence_service_client::PresenceServiceClient},
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use super::{
    PresenceFilter,
    view::{EventView, Names, presence_table},
};
use crate::{
    error::{CliError, code_name},
    output::{Output, note, render, write_out},
    paging::PageArgs,
    session::SignedIn,
};

/// First wait before reconnecting; doubled after each failed attempt.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait before reconnecting.
const LAST_RETRY: Duration = Duration::from_secs(30);
/// How often a live table on a terminal is redrawn to keep SINCE current.
const REDRAW_EVERY: Duration = Duration::from_secs(1);
/// Clears a terminal and moves the cursor home.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

pub(super) async fn watch(
    signed_in: &SignedIn,
    filter: PresenceFilter,
    out: Output,
) -> Result<(), CliError> {
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

/// Ctrl-C is how a watch or a hold ends: successfully.
pub(super) fn interrupted(signal: std::io::Result<()>) -> Result<(), CliError> {
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
    let mut client = signed_in.users();
    let mut names = Names::new();
    let listed = PageArgs::every()
        .visit(
            pb::ListUsersRequest::default(),
            async |r| client.list_users(r).await,
            |users| names.extend(users.into_iter().map(|u| (u.user_id, u.display_name))),
        )
        .await;
    match listed {
        Ok(_) => Ok(Some(names)),
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
}
