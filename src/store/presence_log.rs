//! The presence event log: what watchers replay and reports read.
//!
//! Events are appended only by [`Repo::record_presence`] under the org's
//! sequence lock (see `store/presence.rs`), so "events after N" in sequence
//! order is complete once read: nothing can commit later with a smaller
//! sequence. Pruning removes the oldest events by age; [`LogBounds`] tells a
//! resuming watcher whether what it missed is still here.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    Repo, StoreError, corrupt,
    entities::presence_events,
    non_negative,
    presence::{join_teams, presence_in, split_teams},
};
use crate::domain::{OrgId, Presence, PresenceEvent, ScopeFacts, UserId};

/// An org's presence log: what it still holds and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBounds {
    /// Events after this sequence are all retained (older ones were pruned).
    pub retained_after: u64,
    pub last: u64,
}

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Up to `limit` events of the org after `after`, in sequence order.
    pub async fn presence_events_after(
        &self,
        org_id: OrgId,
        after: u64,
        limit: u64,
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        presence_events::Entity::find()
            .filter(presence_events::Column::OrgId.eq(org_id.to_string()))
            .filter(presence_events::Column::Sequence.gt(after as i64))
            .order_by_asc(presence_events::Column::Sequence)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(event_of_row)
            .collect()
    }

    pub async fn presence_log_bounds(&self, org_id: OrgId) -> Result<LogBounds, StoreError> {
        let last = self.last_presence_sequence(org_id).await?;
        let first: Option<i64> = presence_events::Entity::find()
            .select_only()
            .column_as(presence_events::Column::Sequence.min(), "first")
            .filter(presence_events::Column::OrgId.eq(org_id.to_string()))
            .into_tuple::<Option<i64>>()
            .one(self.conn())
            .await?
            .flatten();
        let retained_after = first.map_or(last, |f| (f.max(1) - 1) as u64);
        Ok(LogBounds {
            retained_after,
            last,
        })
    }

    /// Deletes events that occurred before `before`; returns how many.
    pub async fn prune_presence_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = presence_events::Entity::delete_many()
            .filter(presence_events::Column::OccurredAt.lt(before))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected)
    }

    /// Appends `events` with one statement per [`EVENT_CHUNK`] events.
    pub(super) async fn append_presence_events(
        &self,
        org_id: OrgId,
        events: &[PresenceEvent],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(EVENT_CHUNK) {
            presence_events::Entity::insert_many(chunk.iter().map(|e| event_row(org_id, e)))
                .exec_without_returning(self.conn())
                .await?;
        }
        Ok(())
    }
}

/// Events per insert statement: SQLite allows 32,766 bound values, and an
/// event has 17 columns.
const EVENT_CHUNK: usize = 1000;

fn event_row(org_id: OrgId, event: &PresenceEvent) -> presence_events::ActiveModel {
    let p = &event.presence;
    presence_events::ActiveModel {
        org_id: Set(org_id.to_string()),
        sequence: Set(event.sequence as i64),
        user_id: Set(p.user_id.to_string()),
        reason: Set(event.reason.as_str().to_owned()),
        occurred_at: Set(event.occurred_at),
        status: Set(p.status.as_str().to_owned()),
        status_changed_at: Set(p.status_changed_at),
        active_chats: Set(p.active_chats as i32),
        effective_max_chats: Set(p.effective_max_chats as i32),
        max_chats_overridden: Set(p.max_chats_overridden),
        team_ids: Set(join_teams(&p.team_ids)),
        can_handle_chats: Set(p.can_handle_chats),
        watched: Set(p.watched),
        prev_status: Set(event.before.status.as_str().to_owned()),
        prev_team_ids: Set(join_teams(&event.before.team_ids)),
        prev_watched: Set(event.before.watched),
        prev_active_chats: Set(event.active_chats_before as i32),
    }
}

pub(super) fn event_of_row(row: presence_events::Model) -> Result<PresenceEvent, StoreError> {
    let presence = presence_in!(row);
    Ok(PresenceEvent {
        sequence: row.sequence.max(0) as u64,
        reason: row.reason.parse().map_err(corrupt)?,
        occurred_at: row.occurred_at,
        presence,
        before: ScopeFacts {
            status: row.prev_status.parse().map_err(corrupt)?,
            team_ids: split_teams(&row.prev_team_ids)?,
            watched: row.prev_watched,
        },
        active_chats_before: non_negative(row.prev_active_chats),
    })
}
