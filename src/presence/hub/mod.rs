//! The hub: each replica's in-memory view of the presence log, and the
//! fan-out of its events to watchers.
//!
//! Contract:
//! - Per org, the hub holds the current presence of every watched user, the
//!   sequence it reflects (`applied`) and a bounded tail of recent events.
//!   It learns of new events from [`PresenceSignal`] (local commits and,
//!   on PostgreSQL, other replicas' notifications) and from a slow poll.
//!   Events this replica committed are applied from memory when they
//!   continue the feed; anything else is read from the database in
//!   sequence order. Either way an event is applied only as the feed's
//!   next, so every replica sees every event exactly once, in order,
//!   whichever replica wrote it.
//! - Each event is wrapped once in an [`Arc<HubEvent>`] and shared by every
//!   watcher through a bounded broadcast channel; its wire encodings are
//!   cached on it, so it is encoded once, not once per watcher.
//! - A watcher that falls more than the channel's capacity behind is not
//!   allowed to lose events: it is resynchronised with a RESET and a fresh
//!   snapshot. Memory per watcher stays bounded by the channel, not by how
//!   far behind it is.
//! - A feed that finds a gap in the log (events pruned while this replica
//!   was behind) is retired: its channel closes, and every watcher of it,
//!   or resynchronising on it, moves to the org's reloaded feed with a
//!   RESET. Nothing can subscribe to a retired feed.
//! - Locks: an org's first load is serialised per org (one load however
//!   many watches open at once, and one slow org delays no other); reads
//!   of an org's new events are serialised by its feed's `loading` lock.
//!   No lock is held across another org's reads.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{OnceCell, broadcast, watch};

use super::feed::FeedState;
use crate::{
    domain::{OrgId, Presence, PresenceEvent},
    error::{Error, Result},
    store::{Pending, Store},
};

mod watcher;

pub use watcher::Watcher;

/// Events read from the database per query while catching up.
const CATCH_UP_BATCH: u64 = 1000;
/// The most events a resume replays from the database; further behind, the
/// watcher gets a fresh snapshot, which is then smaller.
const MAX_DB_REPLAY: u64 = 10_000;

/// One committed event, shared by every watcher, with its encodings cached.
pub struct HubEvent {
    pub event: PresenceEvent,
    /// Encoded as a change and as a removal, by whoever first needs each.
    pub encoded_change: OnceLock<Bytes>,
    pub encoded_removal: OnceLock<Bytes>,
}

impl HubEvent {
    pub(super) fn new(event: PresenceEvent) -> Arc<Self> {
        Arc::new(Self {
            event,
            encoded_change: OnceLock::new(),
            encoded_removal: OnceLock::new(),
        })
    }
}

/// What a watcher receives, in order.
pub enum WatchItem {
    /// Discard everything known; a snapshot follows.
    Reset {
        sequence: u64,
    },
    /// One user of a snapshot taken at `sequence`.
    Snapshot {
        sequence: u64,
        presence: Presence,
        taken_at: DateTime<Utc>,
    },
    SnapshotEnd {
        sequence: u64,
    },
    /// A change of a user who matches the filter after it (`removed` false)
    /// or only before it (`removed` true).
    Change {
        event: Arc<HubEvent>,
        removed: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    pub tail: usize,
    pub watch_buffer: usize,
    /// How often every loaded org is read even without a signal, in case a
    /// notification was lost.
    pub poll: Duration,
}

/// Cheap to clone; every clone is the same hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: HubConfig,
    /// Each org's feed, set by its first load; a burst of watches opening
    /// on a fresh replica shares that one load, and orgs load side by side.
    feeds: Mutex<HashMap<OrgId, Arc<OnceCell<Arc<Feed>>>>>,
    stopping: watch::Sender<bool>,
}

/// One org's view. `loading` serialises database reads for the org, so
/// events are applied once and in order.
struct Feed {
    state: Mutex<FeedState>,
    loading: tokio::sync::Mutex<()>,
    /// Database reads begun under `loading`, and the number of the last one
    /// that succeeded; see [`Hub::catch_up`].
    reads_begun: AtomicU64,
    last_good_read: AtomicU64,
}

impl Hub {
    pub fn new(store: Store, config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config: HubConfig {
                    tail: config.tail.max(1),
                    watch_buffer: config.watch_buffer.max(1),
                    poll: config.poll.max(Duration::from_millis(10)),
                },
                feeds: Mutex::default(),
                stopping: watch::Sender::new(false),
            }),
        }
    }

    /// Ends every watch with UNAVAILABLE (reconnect elsewhere and resume)
    /// and stops the hub's tasks.
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Turns true when the hub stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// The feeds loaded so far.
    fn loaded_feeds(&self) -> Vec<(OrgId, Arc<Feed>)> {
        self.inner
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(org_id, cell)| Some((*org_id, cell.get()?.clone())))
            .collect()
    }

    fn loaded_orgs(&self) -> Vec<OrgId> {
        self.loaded_feeds()
            .into_iter()
            .map(|(org_id, _)| org_id)
            .collect()
    }

    /// Visits every watched user's current presence in each org this
    /// replica has loaded (orgs are loaded when first watched here), one
    /// org's lock at a time; for the presence gauges.
    pub fn visit_loaded(&self, mut visit: impl FnMut(OrgId, &Presence)) {
        for (org_id, feed) in self.loaded_feeds() {
            for presence in feed.lock().users.values() {
                visit(org_id, presence);
            }
        }
    }

    /// Reads new events of signalled orgs until stopped. Runs once per
    /// replica, beside [`Hub::listen`].
    pub async fn run(self) {
        let signal = self.inner.store.presence_signal();
        let mut stopping = self.inner.stopping.subscribe();
        // An interval, not a sleep per turn: signals for busy orgs must not
        // keep postponing the poll of quiet ones.
        let mut poll = tokio::time::interval(self.inner.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut org_changes = self.inner.store.org_changes();
        let mut deleted_check = Vec::new();
        loop {
            let orgs: Vec<(OrgId, Pending)> = tokio::select! {
                raised = signal.wait() => raised.into_iter().collect(),
                _ = poll.tick() => self
                    .loaded_orgs()
                    .into_iter()
                    .map(|org_id| (org_id, Pending { committed: Vec::new(), read_log: true }))
                    .collect(),
                changed = org_changes.recv() => {
                    let changed = match changed {
                        Ok(Some(org_id)) => vec![org_id],
                        // Perhaps any org: check every loaded one.
                        Ok(None) | Err(broadcast::error::RecvError::Lagged(_)) => self.loaded_orgs(),
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    // Checked after the select, holding nothing of it.
                    deleted_check = changed;
                    Vec::new()
                }
                _ = stopping.wait_for(|s| *s) => return,
            };
            if !deleted_check.is_empty() {
                self.forget_deleted(std::mem::take(&mut deleted_check))
                    .await;
            }
            for (org_id, pending) in orgs {
                if let Some(feed) = self.loaded(org_id)
                    && let Err(err) = self.take_in(org_id, &feed, pending).await
                {
                    tracing::warn!(%err, org_id = %org_id, "cannot read presence events");
                }
            }
        }
    }

    /// Drops the feeds of those of `orgs` that no longer exist (a deleted
    /// org: PlatformService.DeleteOrg), closing their channels; their
    /// watchers ended when the org was suspended.
    async fn forget_deleted(&self, orgs: Vec<OrgId>) {
        for org_id in orgs {
            let Some(feed) = self.loaded(org_id) else {
                continue;
            };
            match self.inner.store.read().find_org(org_id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    feed.lock().sender = None;
                    self.inner
                        .feeds
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&org_id);
                }
                // Checked again at the org's next change or at a restart.
                Err(err) => tracing::debug!(%err, org_id = %org_id, "cannot check the org"),
            }
        }
    }

    /// Relays other replicas' notifications (PostgreSQL only) until stopped.
    pub async fn listen(self) {
        let hub = self.clone();
        let store = self.inner.store.clone();
        let mut stopping = self.inner.stopping.subscribe();
        tokio::select! {
            result = store.listen(move || hub.loaded_orgs()) => {
                if let Err(err) = result {
                    tracing::error!(%err, "presence listener stopped");
                }
            }
            _ = stopping.wait_for(|s| *s) => {}
        }
    }

    fn loaded(&self, org_id: OrgId) -> Option<Arc<Feed>> {
        self.inner
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&org_id)?
            .get()
            .cloned()
    }

    /// The org's feed as it is now, caught up with every event committed
    /// before this call; never a retired one.
    async fn live_feed(&self, org_id: OrgId) -> Result<Arc<Feed>> {
        // A feed just loaded starts at the log's end, where nothing is
        // pruned: it cannot find a gap, so the second turn ends this.
        for _ in 0..3 {
            let cell = self
                .inner
                .feeds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(org_id)
                .or_default()
                .clone();
            let feed = cell.get_or_try_init(|| self.load(org_id)).await?.clone();
            self.catch_up(org_id, &feed).await?;
            if !feed.lock().is_retired() {
                return Ok(feed);
            }
        }
        Err(Error::internal(std::io::Error::other(
            "the presence log kept moving under a freshly loaded feed",
        )))
    }

    /// Reads the org's presence from the database into a new feed.
    async fn load(&self, org_id: OrgId) -> Result<Arc<Feed>> {
        let read = self.inner.store.read();
        // The sequence first, then the rows: rows newer than the sequence
        // are fine, since replaying events after it sets each user's state
        // to what the events say, ending exactly at the latest.
        let applied = read.presence_log_bounds(org_id).await?.last;
        let users = read
            .presence_rows(org_id, None)
            .await?
            .into_iter()
            .map(|r| r.presence)
            .filter(|p| p.watched)
            .map(|p| (p.user_id, p))
            .collect();
        Ok(Arc::new(Feed {
            state: Mutex::new(FeedState {
                applied,
                users,
                shared_snapshot: None,
                tail: VecDeque::new(),
                sender: Some(broadcast::channel(self.inner.config.watch_buffer).0),
            }),
            loading: tokio::sync::Mutex::new(()),
            reads_begun: AtomicU64::new(0),
            last_good_read: AtomicU64::new(0),
        }))
    }

    /// Applies what the org's log gained: from memory, the events this
    /// replica committed, when they continue the feed; otherwise (another
    /// replica's events, or a commit announced out of order) from the log.
    async fn take_in(&self, org_id: OrgId, feed: &Feed, pending: Pending) -> Result<()> {
        if !pending.read_log {
            // Under `loading`, as a read of the log: both move `applied`.
            let _reading = feed.loading.lock().await;
            let mut state = feed.lock();
            if state.is_retired() {
                return Ok(());
            }
            if let Some(events) = state.continuation(pending.committed) {
                for event in events {
                    state.apply(HubEvent::new(event), self.inner.config.tail);
                }
                return Ok(());
            }
        }
        self.catch_up(org_id, feed).await
    }

    /// Applies the org's events committed before this call, and maybe more.
    ///
    /// Callers that arrive together share one read: a read that began after
    /// a caller arrived, and succeeded, has seen every commit that caller
    /// needs. A burst of watches opening, or of signals, costs one or two
    /// database reads, not one each.
    async fn catch_up(&self, org_id: OrgId, feed: &Feed) -> Result<()> {
        let arrived = feed.reads_begun.load(Ordering::Acquire);
        let _reading = feed.loading.lock().await;
        if feed.last_good_read.load(Ordering::Acquire) > arrived || feed.lock().is_retired() {
            return Ok(());
        }
        let read = feed.reads_begun.fetch_add(1, Ordering::AcqRel) + 1;
        self.read_new_events(org_id, feed).await?;
        feed.last_good_read.store(read, Ordering::Release);
        Ok(())
    }

    /// Reads and applies events after the feed's, until none are left; call
    /// only under the feed's `loading` lock.
    async fn read_new_events(&self, org_id: OrgId, feed: &Feed) -> Result<()> {
        loop {
            let applied = feed.lock().applied;
            let events = self
                .inner
                .store
                .read()
                .presence_events_after(org_id, applied, CATCH_UP_BATCH)
                .await?;
            let done = (events.len() as u64) < CATCH_UP_BATCH;
            let mut state = feed.lock();
            for event in events {
                if !state.follows(event.sequence) {
                    // Pruned while this replica was behind: retire the feed
                    // (its watchers move to a reloaded one) and forget it,
                    // unless a newer feed has replaced it already.
                    tracing::warn!(org_id = %org_id, "presence log gap; reloading the org");
                    state.sender = None;
                    drop(state);
                    let mut feeds = self
                        .inner
                        .feeds
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if feeds
                        .get(&org_id)
                        .and_then(|cell| cell.get())
                        .is_some_and(|current| std::ptr::eq(Arc::as_ptr(current), feed))
                    {
                        feeds.remove(&org_id);
                    }
                    return Ok(());
                }
                state.apply(HubEvent::new(event), self.inner.config.tail);
            }
            if done {
                return Ok(());
            }
        }
    }

    /// The org's latest sequence, as far as the database knows.
    pub async fn latest(&self, org_id: OrgId) -> Result<u64> {
        Ok(self
            .inner
            .store
            .read()
            .presence_log_bounds(org_id)
            .await?
            .last)
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrgSettings, OrgSlug};

    #[tokio::test]
    async fn a_deleted_org_loses_its_feed() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display());
        let store = Store::connect(&url, 0, Duration::from_secs(1))
            .await
            .expect("store");
        store.migrate().await.expect("migrated");
        let org = OrgSettings::new(OrgSlug::parse("gone").expect("slug"), "Gone".into());
        let tx = store.write().await.expect("tx");
        tx.repo().insert_org(&org, None).await.expect("org");
        tx.commit().await.expect("commit");
        let hub = Hub::new(
            store.clone(),
            HubConfig {
                tail: 16,
                watch_buffer: 16,
                poll: Duration::from_secs(60),
            },
        );
        tokio::spawn(hub.clone().run());
        hub.live_feed(org.org_id).await.expect("loaded");
        assert_eq!(hub.loaded_orgs(), [org.org_id]);

        let tx = store.write().await.expect("tx");
        tx.repo().delete_org(org.org_id).await.expect("deleted");
        tx.commit().await.expect("commit");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !hub.loaded_orgs().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the feed stays");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
