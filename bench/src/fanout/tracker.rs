//! Delivery bookkeeping shared by the change driver and every watcher: when
//! each change was issued, how many watchers have received it, and where
//! each watcher is in the sequence.
//!
//! Change `k` sets agent `k % A` to `1 + (k / A) % 10,000` open chats, so
//! the pair (agent, chats) names the change among the last `A × 10,000`
//! without reading anything but the event itself; successive changes of an
//! agent always differ, so each one is an event.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use roster::api::pb::PresenceEventKind;
use tokio::sync::watch;

use crate::{BenchError, load};

/// Distinct chat counts per agent (Roster accepts 0 to 10,000; 0 is left
/// out so an agent's first change is never a no-op).
const VALUES: u64 = 10_000;

/// The parts of a `WatchPresenceResponse` the watchers read; prost skips
/// the rest without allocating.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventHead {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(int32, tag = "2")]
    pub kind: i32,
    #[prost(message, optional, tag = "3")]
    pub presence: Option<PresenceHead>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PresenceHead {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(uint32, tag = "4")]
    pub active_chats: u32,
}

/// One change to make: which agent, to how many chats.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    /// The change's number in this tracker, from 0.
    pub n: u64,
    pub agent: usize,
    pub active_chats: u32,
}

/// What waiters wait for.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Watchers that have their snapshot (or subscription) and follow live.
    pub ready: usize,
    /// Changes every watcher has received.
    pub complete: u64,
    /// The first failure of a watcher or of a change, which ends the run.
    pub failure: Option<String>,
}

/// A watcher's place in the stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct Place {
    /// The last sequence seen, once the watcher follows live.
    last: Option<u64>,
}

impl Place {
    /// A watcher that follows live from `sequence` without a snapshot (a
    /// Redis subscriber).
    pub fn live_after(sequence: u64) -> Self {
        Self {
            last: Some(sequence),
        }
    }
}

pub struct Tracker {
    epoch: Instant,
    /// The number of the first change (`k`), following the changes an
    /// earlier tracker made to the same agents.
    first: u64,
    agents: Arc<Vec<String>>,
    agent_of: HashMap<String, usize>,
    watchers: usize,
    /// When each change was issued (µs after `epoch`), by slot.
    issued_at: Box<[AtomicU64]>,
    /// How many watchers have each change, by slot.
    received: Box<[AtomicU32]>,
    issued: AtomicU64,
    progress: watch::Sender<Progress>,
    /// One per group of watchers; a group records into its own.
    latencies: Mutex<Vec<Arc<Mutex<Histogram<u64>>>>>,
}

impl Tracker {
    pub fn new(agents: Arc<Vec<String>>, watchers: usize, first: u64) -> Arc<Self> {
        let slots = agents.len() * VALUES as usize;
        let agent_of = agents
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        Arc::new(Self {
            epoch: Instant::now(),
            first,
            agents,
            agent_of,
            watchers,
            issued_at: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            received: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            issued: AtomicU64::new(0),
            progress: watch::Sender::new(Progress::default()),
            latencies: Mutex::default(),
        })
    }

    pub fn watchers(&self) -> usize {
        self.watchers
    }

    pub fn agent_id(&self, agent: usize) -> &str {
        &self.agents[agent]
    }

    fn slots(&self) -> u64 {
        self.issued_at.len() as u64
    }

    /// The next change, stamped as issued now.
    pub fn issue(&self) -> Change {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let k = self.first + n;
        let agents = self.agents.len() as u64;
        let slot = (k % self.slots()) as usize;
        self.received[slot].store(0, Ordering::Relaxed);
        self.issued_at[slot].store(self.micros(), Ordering::Release);
        Change {
            n,
            agent: (k % agents) as usize,
            active_chats: (1 + (k / agents) % VALUES) as u32,
        }
    }

    /// Changes issued by this tracker.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The `first` of a tracker that follows this one on the same agents.
    pub fn next_first(&self) -> u64 {
        self.first + self.issued()
    }

    /// How far deliveries may trail before a slot would be reused while
    /// some watcher still awaits its change.
    pub fn max_behind(&self) -> u64 {
        self.slots() / 2
    }

    fn micros(&self) -> u64 {
        load::micros(self.epoch.elapsed())
    }

    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Ends the run with `message`, unless something failed first.
    pub fn fail(&self, message: impl std::fmt::Display) {
        self.progress.send_modify(|p| {
            p.failure.get_or_insert_with(|| message.to_string());
        });
    }

    /// A histogram for a new group of watchers.
    pub fn group_latency(&self) -> Result<Arc<Mutex<Histogram<u64>>>, BenchError> {
        let histogram = Arc::new(Mutex::new(load::histogram()?));
        self.latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(histogram.clone());
        Ok(histogram)
    }

    /// Every delivery latency recorded since the last call, emptied.
    pub fn take_latencies(&self) -> Result<Histogram<u64>, BenchError> {
        let mut all = load::histogram()?;
        for group in self
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let mut group = group.lock().unwrap_or_else(PoisonError::into_inner);
            all.add(&*group)?;
            group.reset();
        }
        Ok(all)
    }

    /// Takes one event of one watcher: checks it follows the last one and
    /// records its delivery. Any RESET, gap or unexpected event fails.
    pub fn deliver(
        &self,
        place: &mut Place,
        event: &EventHead,
        latency: &mut Histogram<u64>,
    ) -> Result<(), BenchError> {
        let kind = PresenceEventKind::try_from(event.kind).unwrap_or_default();
        match (kind, place.last) {
            (PresenceEventKind::Snapshot, None) => Ok(()),
            (PresenceEventKind::SnapshotEnd, None) => {
                place.last = Some(event.sequence);
                self.progress.send_modify(|p| p.ready += 1);
                Ok(())
            }
            (PresenceEventKind::Change, Some(last)) if event.sequence == last + 1 => {
                place.last = Some(event.sequence);
                self.change_delivered(event, latency)
            }
            (PresenceEventKind::Change, Some(last)) => Err(BenchError::msg(format!(
                "a watcher got sequence {} after {last}",
                event.sequence
            ))),
            (kind, _) => Err(BenchError::msg(format!(
                "a watcher got an unexpected {} event at sequence {}",
                kind.as_str_name(),
                event.sequence
            ))),
        }
    }

    fn change_delivered(
        &self,
        event: &EventHead,
        latency: &mut Histogram<u64>,
    ) -> Result<(), BenchError> {
        let (agent, chats) = event
            .presence
            .as_ref()
            .and_then(|p| Some((*self.agent_of.get(&p.user_id)?, p.active_chats)))
            .filter(|(_, chats)| (1..=VALUES as u32).contains(chats))
            .ok_or_else(|| {
                BenchError::msg(format!(
                    "sequence {} is not a change the benchmark made",
                    event.sequence
                ))
            })?;
        let slot = agent + self.agents.len() * (chats as usize - 1);
        let issued_at = self.issued_at[slot].load(Ordering::Acquire);
        latency.record(self.micros().saturating_sub(issued_at).max(1))?;
        let received = self.received[slot].fetch_add(1, Ordering::AcqRel) + 1;
        if received as usize == self.watchers {
            self.progress.send_modify(|p| p.complete += 1);
        }
        Ok(())
    }

    /// Waits until `ready` watchers follow live.
    pub async fn until_ready(&self, timeout: Duration) -> Result<(), BenchError> {
        let watchers = self.watchers;
        self.wait(
            timeout,
            |p| p.ready >= watchers,
            || format!("watchers not ready within {} s", timeout.as_secs()),
        )
        .await
    }

    /// Waits until every issued change has reached every watcher.
    pub async fn until_delivered(&self, timeout: Duration) -> Result<(), BenchError> {
        let issued = self.issued();
        let progress = self.progress();
        self.wait(
            timeout,
            |p| p.complete >= issued,
            || {
                format!(
                    "{} of {issued} changes reached every watcher within {} s",
                    progress.borrow().complete,
                    timeout.as_secs()
                )
            },
        )
        .await
    }

    /// Waits for `done`, a failure, or the timeout (an error from
    /// `late`).
    pub async fn wait(
        &self,
        timeout: Duration,
        done: impl Fn(&Progress) -> bool,
        late: impl FnOnce() -> String,
    ) -> Result<(), BenchError> {
        let mut progress = self.progress();
        let waited = tokio::time::timeout(
            timeout,
            progress.wait_for(|p| p.failure.is_some() || done(p)),
        )
        .await;
        match waited {
            Err(_) => Err(BenchError::msg(late())),
            Ok(Err(_)) => Err(BenchError::msg("the tracker went away")),
            Ok(Ok(p)) => match &p.failure {
                Some(failure) => Err(BenchError::msg(failure)),
                None => Ok(()),
            },
        }
    }

    /// Counts a watcher that follows live without a snapshot (a Redis
    /// subscriber, once subscribed).
    pub fn follows_live(&self) {
        self.progress.send_modify(|p| p.ready += 1);
    }
}
