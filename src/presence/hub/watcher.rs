//! Starting a watch (a snapshot, or the events after a sequence) and
//! following it: a [`Watcher`] takes its org's events from the feed's
//! broadcast channel, and when it falls behind, or the feed is retired, it
//! starts over with a RESET and a fresh snapshot (the rules are in
//! `feed.rs`, [`Position`]).

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::{Feed, Hub, HubEvent, MAX_DB_REPLAY, WatchItem};
use crate::{
    domain::{OrgId, PresenceFilter},
    error::{Error, Reason, Result},
    presence::feed::Position,
};

impl Hub {
    /// Starts a watch: a snapshot, or with `resume_after` the events after
    /// it (or a RESET and a snapshot when they are no longer retained).
    pub async fn watch(
        &self,
        org_id: OrgId,
        filter: PresenceFilter,
        resume_after: Option<u64>,
    ) -> Result<Watcher> {
        // Caught up with what committed up to now, so a watch opened after a
        // change (by this client or through another replica) reflects it.
        let feed = self.live_feed(org_id).await?;
        let mut watcher = Watcher {
            hub: self.clone(),
            org_id,
            feed: feed.clone(),
            receiver: None,
            position: Position::new(filter),
            stopping: self.inner.stopping.subscribe(),
        };
        let Some(after) = resume_after else {
            watcher.resync(false);
            return Ok(watcher);
        };
        if after > feed.lock().applied {
            let latest = self.latest(org_id).await?;
            if after > latest {
                return Err(Error::OutOfRange {
                    reason: Reason::SequenceOutOfRange,
                    message: format!(
                        "resume_after {after} is beyond the org's latest sequence {latest}"
                    ),
                });
            }
            if after > feed.lock().applied {
                self.catch_up(org_id, &feed).await?;
            }
        }
        // Subscribe first, then take what came before from the tail.
        let (receiver, applied, from_tail) = {
            let state = feed.lock();
            // Retired since it was caught up: the watch starts over on the
            // reloaded feed at its first item.
            let receiver = state.sender.as_ref().map(broadcast::Sender::subscribe);
            let tail_start = state
                .tail
                .front()
                .map_or(state.applied + 1, |e| e.event.sequence);
            let from_tail = (after + 1 >= tail_start).then(|| {
                state
                    .tail
                    .iter()
                    .filter(|e| e.event.sequence > after)
                    .cloned()
                    .collect::<Vec<_>>()
            });
            (receiver, state.applied, from_tail)
        };
        let Some(receiver) = receiver else {
            return Ok(watcher);
        };
        watcher.receiver = Some(receiver);
        watcher.position.passed(after);
        let missed = match from_tail {
            Some(events) => Some(events),
            None => self.replay_from_store(org_id, after, applied).await?,
        };
        match missed {
            Some(events) => {
                for event in events {
                    watcher.position.offer(event);
                }
                watcher.position.passed(applied.max(after));
            }
            None => watcher.resync(true),
        }
        Ok(watcher)
    }

    /// The events in `(after, upto]` from the database, or `None` when some
    /// are no longer retained (or too many to replay).
    async fn replay_from_store(
        &self,
        org_id: OrgId,
        after: u64,
        upto: u64,
    ) -> Result<Option<Vec<Arc<HubEvent>>>> {
        let read = self.inner.store.read();
        if upto <= after {
            return Ok(Some(Vec::new()));
        }
        if read.presence_log_bounds(org_id).await?.retained_after > after
            || upto - after > MAX_DB_REPLAY
        {
            return Ok(None);
        }
        let events = read
            .presence_events_after(org_id, after, upto - after)
            .await?;
        if events.len() as u64 != upto - after {
            return Ok(None);
        }
        Ok(Some(events.into_iter().map(HubEvent::new).collect()))
    }
}

/// One watch's position in its org's feed. Dropping it unsubscribes.
pub struct Watcher {
    hub: Hub,
    org_id: OrgId,
    feed: Arc<Feed>,
    receiver: Option<broadcast::Receiver<Arc<HubEvent>>>,
    /// What the watch has passed and what it is about to send.
    position: Position,
    stopping: watch::Receiver<bool>,
}

impl Watcher {
    /// The next item; `Err` ends the watch (UNAVAILABLE when the server
    /// stops, so the client resumes elsewhere).
    pub async fn next(&mut self) -> Result<WatchItem> {
        loop {
            if let Some(item) = self.position.ready() {
                return Ok(item);
            }
            if *self.stopping.borrow() {
                return Err(shutting_down());
            }
            let Some(receiver) = self.receiver.as_mut() else {
                // The feed was retired: follow the org's live one.
                self.feed = self.hub.live_feed(self.org_id).await?;
                self.resync(true);
                continue;
            };
            let received = tokio::select! {
                received = receiver.recv() => received,
                _ = self.stopping.changed() => continue,
            };
            match received {
                Ok(event) => self.position.offer(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, org_id = %self.org_id, "watcher fell behind; resynchronising");
                    self.resync(true);
                }
                Err(broadcast::error::RecvError::Closed) => self.receiver = None,
            }
        }
    }

    /// Replaces whatever is pending with a snapshot of the feed as it is
    /// now, subscribed at the same instant so nothing falls between. On a
    /// retired feed it leaves no receiver, so [`Watcher::next`] moves to
    /// the live feed and resynchronises there.
    fn resync(&mut self, reset: bool) {
        let mut state = self.feed.lock();
        self.receiver = state.sender.as_ref().map(broadcast::Sender::subscribe);
        if self.receiver.is_some() {
            self.position.restart(&mut state, reset);
        } else {
            self.position.clear();
        }
    }
}

fn shutting_down() -> Error {
    Error::Unavailable {
        reason: Reason::ShuttingDown,
        message: "the server is shutting down: reconnect and resume".into(),
    }
}
