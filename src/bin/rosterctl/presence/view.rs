//! How presence is shown: tables for people, JSON for scripts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use comfy_table::{Attribute, Cell, Color, Table};
use roster::api::pb::{self, PresenceEventKind as Kind};
use serde::Serialize;

use crate::output::{datetime, enum_name, plain_table, rfc3339, yes_no};

/// Display names by user id.
pub(super) type Names = HashMap<String, String>;

/// One row per presence; with `names`, a NAME column after the id.
pub(super) fn presence_table(
    presences: &[&pb::Presence],
    names: Option<&Names>,
    now: DateTime<Utc>,
) -> Table {
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

#[derive(Serialize)]
pub(super) struct PresenceView {
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
pub(super) struct EventView {
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
