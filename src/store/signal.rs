//! How this process's presence readers learn that an org's log grew: after
//! a local commit, with the events it committed (so the hub applies them
//! from memory), and on PostgreSQL from other replicas' notifications,
//! which only say "read the log". What waits for the reader is bounded per
//! org by [`MAX_PENDING_EVENTS`]; past it, the reader reads the log instead.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use crate::{
    domain::{OrgId, PresenceEvent},
    error::ParseError,
};

/// Which orgs have committed presence events that this process has not
/// taken in yet, and the events themselves where this process committed
/// them: set after a local commit and, on PostgreSQL, by other replicas'
/// notifications (see [`Store::listen`]).
#[derive(Default)]
pub struct PresenceSignal {
    pending: Mutex<HashMap<OrgId, Pending>>,
    notify: tokio::sync::Notify,
}

/// What an org's log gained since the signal was last taken.
#[derive(Debug, Default)]
pub struct Pending {
    /// Events this process committed, in the order the commits were
    /// announced (not always sequence order).
    pub committed: Vec<PresenceEvent>,
    /// The log itself must be read: other events were committed (by another
    /// replica, or more than [`MAX_PENDING_EVENTS`] here).
    pub read_log: bool,
}

/// Committed events held per org for a reader that has not come yet; past
/// this, the reader reads the log instead.
const MAX_PENDING_EVENTS: usize = 10_000;

impl PresenceSignal {
    /// The org's log grew where only the database can tell how.
    pub fn raise(&self, org_id: OrgId) {
        self.update(org_id, |pending| {
            pending.read_log = true;
            pending.committed = Vec::new();
        });
    }

    /// This process committed `events` of the org.
    pub(super) fn committed(&self, org_id: OrgId, events: Vec<PresenceEvent>) {
        self.update(org_id, |pending| {
            if pending.read_log {
                return;
            }
            if pending.committed.len() + events.len() > MAX_PENDING_EVENTS {
                pending.read_log = true;
                pending.committed = Vec::new();
            } else {
                pending.committed.extend(events);
            }
        });
    }

    fn update(&self, org_id: OrgId, change: impl FnOnce(&mut Pending)) {
        change(
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(org_id)
                .or_default(),
        );
        self.notify.notify_one();
    }

    /// Waits until an org is raised, then takes what every raised org has.
    pub async fn wait(&self) -> HashMap<OrgId, Pending> {
        loop {
            let raised =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
            if !raised.is_empty() {
                return raised;
            }
            self.notify.notified().await;
        }
    }
}

/// The org a presence notification names (`<org id> <replica>`, or a bare
/// org id), unless `replica` sent it.
pub(super) fn presence_announcement(
    payload: &str,
    replica: &str,
) -> Result<Option<OrgId>, ParseError> {
    let (org, sender) = payload.split_once(' ').unwrap_or((payload, ""));
    let org_id = OrgId::parse(org)?;
    Ok((sender != replica).then_some(org_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_skips_its_own_presence_notifications_and_takes_every_other() {
        let org_id = OrgId::generate();
        let own = |payload: &str| presence_announcement(payload, "replica-a");
        assert_eq!(own(&format!("{org_id} replica-a")).ok(), Some(None));
        assert_eq!(own(&format!("{org_id} replica-b")).ok(), Some(Some(org_id)));
        assert_eq!(
            own(&org_id.to_string()).ok(),
            Some(Some(org_id)),
            "a replica that names no sender"
        );
        assert!(own("not-an-org replica-b").is_err());
    }

    #[tokio::test]
    async fn committed_events_wait_for_their_reader_until_there_are_too_many() {
        let signal = PresenceSignal::default();
        let (quiet, busy, remote) = (OrgId::generate(), OrgId::generate(), OrgId::generate());
        let presence = crate::domain::Presence {
            user_id: crate::domain::UserId::generate(),
            status: crate::domain::PresenceStatus::Available,
            status_changed_at: chrono::Utc::now(),
            active_chats: 0,
            effective_max_chats: 6,
            max_chats_overridden: false,
            team_ids: Vec::new(),
            can_handle_chats: true,
            watched: true,
        };
        let event = |sequence| PresenceEvent {
            sequence,
            reason: crate::domain::ChangeReason::AvailabilitySet,
            occurred_at: presence.status_changed_at,
            before: presence.scope_facts(),
            presence: presence.clone(),
            active_chats_before: 0,
        };
        signal.committed(quiet, vec![event(1), event(2)]);
        signal.committed(busy, (1..=MAX_PENDING_EVENTS as u64).map(event).collect());
        signal.committed(busy, vec![event(MAX_PENDING_EVENTS as u64 + 1)]);
        signal.committed(remote, vec![event(7)]);
        signal.raise(remote);
        signal.committed(remote, vec![event(8)]);
        let taken = signal.wait().await;
        let quiet = &taken[&quiet];
        assert!(!quiet.read_log);
        assert_eq!(
            quiet
                .committed
                .iter()
                .map(|e| e.sequence)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        for org_id in [busy, remote] {
            assert!(taken[&org_id].read_log, "the log is read instead");
            assert!(taken[&org_id].committed.is_empty(), "and nothing is held");
        }
    }
}
