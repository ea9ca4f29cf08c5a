//! The hub's pure core, with no database and no task: an org's feed state
//! (current presence, the sequence it reflects, the recent tail) and one
//! watch's position in it (what it has passed, what it is about to send).
//! `hub/` feeds these from the database and the broadcast channel; their
//! lag, gap and reset rules are tested here without either.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::hub::{HubEvent, WatchItem};
use crate::domain::{Presence, PresenceEvent, PresenceFilter, UserId};

pub(super) struct FeedState {
    pub(super) applied: u64,
    pub(super) users: BTreeMap<UserId, Presence>,
    /// `users` as of `applied`, built on demand and shared by every watch
    /// that starts from it, so a burst of (re)connecting watchers costs one
    /// copy of the org, not one each.
    pub(super) shared_snapshot: Option<Arc<[Presence]>>,
    pub(super) tail: VecDeque<Arc<HubEvent>>,
    /// `None` once the feed is retired (see the module docs): dropping the
    /// sender closes every receiver.
    pub(super) sender: Option<broadcast::Sender<Arc<HubEvent>>>,
}

impl FeedState {
    /// Whether `sequence` is the next event: anything else is a gap (events
    /// pruned while this replica was behind), and the feed must be reloaded.
    pub(super) fn follows(&self, sequence: u64) -> bool {
        sequence == self.applied + 1
    }

    /// The events of `committed` that continue the feed, in sequence order:
    /// those it has applied already are dropped. `None` if they leave a gap
    /// (an event is not among them: another replica's, or a commit of this
    /// one not announced yet), so the log must be read instead.
    pub(super) fn continuation(
        &self,
        mut committed: Vec<PresenceEvent>,
    ) -> Option<Vec<PresenceEvent>> {
        committed.sort_unstable_by_key(|e| e.sequence);
        committed.dedup_by_key(|e| e.sequence);
        committed.retain(|e| e.sequence > self.applied);
        let contiguous = committed
            .iter()
            .zip(self.applied + 1..)
            .all(|(e, expected)| e.sequence == expected);
        contiguous.then_some(committed)
    }

    pub(super) fn is_retired(&self) -> bool {
        self.sender.is_none()
    }

    pub(super) fn snapshot(&mut self) -> Arc<[Presence]> {
        self.shared_snapshot
            .get_or_insert_with(|| self.users.values().cloned().collect())
            .clone()
    }

    pub(super) fn apply(&mut self, event: Arc<HubEvent>, tail: usize) {
        self.shared_snapshot = None;
        let presence = &event.event.presence;
        if presence.watched {
            self.users.insert(presence.user_id, presence.clone());
        } else {
            self.users.remove(&presence.user_id);
        }
        self.applied = event.event.sequence;
        if self.tail.len() == tail {
            self.tail.pop_front();
        }
        self.tail.push_back(event.clone());
        // No receivers is fine: nobody watches this org right now.
        if let Some(sender) = &self.sender {
            let _ = sender.send(event);
        }
    }
}

/// One watch's place in its org's events: what is decided but not sent yet
/// (a RESET, a replay, a snapshot) and the last sequence it has passed.
pub(super) struct Position {
    filter: PresenceFilter,
    /// Items decided but not yet taken: a RESET, or a replay.
    pending: VecDeque<WatchItem>,
    /// A snapshot being sent, after `pending`.
    snapshot: Option<SnapshotCursor>,
    /// The sequence of the last event this watch has passed (sent or
    /// filtered out).
    last: u64,
}

impl Position {
    pub(super) fn new(filter: PresenceFilter) -> Self {
        Self {
            filter,
            pending: VecDeque::new(),
            snapshot: None,
            last: 0,
        }
    }

    /// The next item already decided: pending ones, then the snapshot's
    /// users and its end marker.
    pub(super) fn ready(&mut self) -> Option<WatchItem> {
        if let Some(item) = self.pending.pop_front() {
            return Some(item);
        }
        let cursor = self.snapshot.as_mut()?;
        Some(match cursor.next(&self.filter) {
            Some(item) => item,
            None => {
                let sequence = cursor.sequence;
                self.snapshot = None;
                WatchItem::SnapshotEnd { sequence }
            }
        })
    }

    /// Queues the event if it is the next one and concerns the filter.
    pub(super) fn offer(&mut self, event: Arc<HubEvent>) {
        let e = &event.event;
        if e.sequence <= self.last {
            return;
        }
        self.last = e.sequence;
        let user_id = e.presence.user_id;
        let after = self.filter.matches(user_id, e.presence.scope());
        let before = self.filter.matches(user_id, e.before.scope());
        if after || before {
            self.pending.push_back(WatchItem::Change {
                event,
                removed: !after,
            });
        }
    }

    /// Everything up to `sequence` is passed (resuming after it).
    pub(super) fn passed(&mut self, sequence: u64) {
        self.last = sequence;
    }

    /// Forgets whatever was decided (the feed went away).
    pub(super) fn clear(&mut self) {
        self.pending.clear();
        self.snapshot = None;
    }

    /// Starts over from `state` as it is now: a RESET first when `reset`,
    /// then a snapshot at `state.applied`; later events only.
    pub(super) fn restart(&mut self, state: &mut FeedState, reset: bool) {
        self.clear();
        let sequence = state.applied;
        self.last = sequence;
        if reset {
            self.pending.push_back(WatchItem::Reset { sequence });
        }
        self.snapshot = Some(SnapshotCursor {
            users: state.snapshot(),
            next: 0,
            sequence,
            taken_at: Utc::now(),
        });
    }
}

/// A watch's place in a shared snapshot.
struct SnapshotCursor {
    users: Arc<[Presence]>,
    next: usize,
    sequence: u64,
    taken_at: DateTime<Utc>,
}

impl SnapshotCursor {
    /// The next user of the snapshot that the filter lets through.
    fn next(&mut self, filter: &PresenceFilter) -> Option<WatchItem> {
        while let Some(presence) = self.users.get(self.next) {
            self.next += 1;
            if filter.matches(presence.user_id, presence.scope()) {
                return Some(WatchItem::Snapshot {
                    sequence: self.sequence,
                    presence: presence.clone(),
                    taken_at: self.taken_at,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::domain::{ChangeReason, PresenceStatus, TeamId};

    fn presence(user_id: UserId, team: TeamId, status: PresenceStatus) -> Presence {
        Presence {
            user_id,
            status,
            status_changed_at: Utc::now(),
            active_chats: 0,
            effective_max_chats: 6,
            max_chats_overridden: false,
            team_ids: vec![team],
            can_handle_chats: true,
            watched: true,
        }
    }

    /// An event numbered `sequence` taking the user from `before` to `after`.
    fn event(sequence: u64, before: &Presence, after: Presence) -> Arc<HubEvent> {
        HubEvent::new(PresenceEvent {
            sequence,
            reason: ChangeReason::AvailabilitySet,
            occurred_at: Utc::now(),
            presence: after,
            before: before.scope_facts(),
            active_chats_before: 0,
        })
    }

    fn state(users: &[Presence], applied: u64) -> FeedState {
        FeedState {
            applied,
            users: users.iter().map(|p| (p.user_id, p.clone())).collect(),
            shared_snapshot: None,
            tail: VecDeque::new(),
            sender: Some(broadcast::channel(8).0),
        }
    }

    fn whole_org() -> PresenceFilter {
        PresenceFilter {
            scope_teams: None,
            me: None,
            teams: None,
            statuses: None,
        }
    }

    /// Every item ready now, as (kind, sequence).
    fn drain(position: &mut Position) -> Vec<(&'static str, u64)> {
        std::iter::from_fn(|| position.ready())
            .map(|item| match item {
                WatchItem::Reset { sequence } => ("reset", sequence),
                WatchItem::Snapshot { sequence, .. } => ("snapshot", sequence),
                WatchItem::SnapshotEnd { sequence } => ("end", sequence),
                WatchItem::Change { event, removed } => (
                    if removed { "removed" } else { "change" },
                    event.event.sequence,
                ),
            })
            .collect()
    }

    #[test]
    fn a_lagging_watch_restarts_with_a_reset_and_a_snapshot_then_only_newer_events() {
        let team = TeamId::generate();
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let offline = |u| presence(u, team, PresenceStatus::Offline);
        let mut feed = state(&[offline(ann), offline(bob)], 3);
        let mut position = Position::new(whole_org());
        position.restart(&mut feed, false);
        assert_eq!(
            drain(&mut position),
            [("snapshot", 3), ("snapshot", 3), ("end", 3)]
        );

        // Two events while the watch lagged: it starts over at the feed's end.
        let available = presence(ann, team, PresenceStatus::Available);
        feed.apply(event(4, &offline(ann), available.clone()), 8);
        feed.apply(event(5, &available, offline(ann)), 8);
        position.offer(event(4, &offline(ann), available.clone()));
        position.restart(&mut feed, true);
        assert_eq!(
            drain(&mut position),
            [("reset", 5), ("snapshot", 5), ("snapshot", 5), ("end", 5)],
            "what was pending is dropped"
        );
        position.offer(event(5, &available, offline(ann)));
        assert!(
            drain(&mut position).is_empty(),
            "no event at or before the snapshot"
        );
        position.offer(event(6, &offline(ann), available));
        assert_eq!(drain(&mut position), [("change", 6)]);
    }

    #[test]
    fn a_watch_passes_each_event_once_and_sees_a_user_leave_its_filter_as_removed() {
        let (alpha, beta) = (TeamId::generate(), TeamId::generate());
        let ann = UserId::generate();
        let mut filter = whole_org();
        filter.teams = Some(HashSet::from([alpha]));
        let mut position = Position::new(filter);
        position.passed(10);
        let in_alpha = presence(ann, alpha, PresenceStatus::Available);
        let in_beta = presence(ann, beta, PresenceStatus::Available);
        position.offer(event(10, &in_alpha, in_alpha.clone()));
        position.offer(event(11, &in_alpha, in_alpha.clone()));
        position.offer(event(11, &in_alpha, in_alpha.clone()));
        position.offer(event(12, &in_alpha, in_beta.clone()));
        position.offer(event(13, &in_beta, in_beta.clone()));
        position.offer(event(14, &in_beta, in_alpha));
        assert_eq!(
            drain(&mut position),
            [("change", 11), ("removed", 12), ("change", 14)],
            "10 was passed already, 11 came twice, 13 is outside the filter"
        );
    }

    #[test]
    fn a_feed_takes_only_its_next_event_and_keeps_a_bounded_tail() {
        let team = TeamId::generate();
        let ann = UserId::generate();
        let offline = presence(ann, team, PresenceStatus::Offline);
        let mut feed = state(std::slice::from_ref(&offline), 7);
        assert!(feed.follows(8));
        assert!(!feed.follows(9), "a gap: event 8 is missing");
        assert!(!feed.follows(7), "a repeat");
        for sequence in 8..12 {
            feed.apply(event(sequence, &offline, offline.clone()), 2);
        }
        let tail: Vec<u64> = feed.tail.iter().map(|e| e.event.sequence).collect();
        assert_eq!(tail, [10, 11]);
        assert_eq!(feed.applied, 11);

        // Events this replica committed continue the feed only without a gap.
        let committed = |seqs: &[u64]| -> Vec<PresenceEvent> {
            seqs.iter()
                .map(|&s| event(s, &offline, offline.clone()).event.clone())
                .collect()
        };
        let sequences = |events: Option<Vec<PresenceEvent>>| {
            events.map(|e| e.iter().map(|e| e.sequence).collect::<Vec<_>>())
        };
        assert_eq!(
            sequences(feed.continuation(committed(&[13, 12, 10, 12]))),
            Some(vec![12, 13]),
            "sorted, applied and repeated ones dropped"
        );
        assert_eq!(sequences(feed.continuation(committed(&[11]))), Some(vec![]));
        assert_eq!(
            sequences(feed.continuation(committed(&[13]))),
            None,
            "12 is missing: read the log"
        );

        // One snapshot per state, shared by every watch that starts from it.
        let first = feed.snapshot();
        assert!(Arc::ptr_eq(&first, &feed.snapshot()), "one copy per state");
        feed.sender = None;
        assert!(feed.is_retired());
    }
}
