//! The change driver: issues changes open-loop at a target rate, or as fast
//! as every watcher takes them (a window of undelivered changes), and
//! measures deliveries until every issued change has reached every watcher.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use roster::api::{
    Bearer,
    pb::{self, presence_service_client::PresenceServiceClient},
};
use tokio::sync::{Semaphore, mpsc};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use super::{EventTemplate, tracker::Tracker};
use crate::{BenchError, child::UsageWindow, load, report::Measure};

/// How long the last deliveries may take after the load stops.
const DRAIN: Duration = Duration::from_secs(60);
/// ReportChatLoad calls in flight at most: far above what the bare server
/// needs at any rate, and few enough that a Roster which cannot keep up
/// answers each within its 30 s request limit even at 5 changes/s.
const GRPC_IN_FLIGHT: u32 = 64;
/// The Redis channel every subscriber listens on.
pub const REDIS_CHANNEL: &str = "roster-bench-presence";

#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// This many changes per second, issued every millisecond whatever the
    /// deliveries do (up to the feed's in-flight limit).
    Rate(f64),
    /// As fast as it goes with at most this many changes not yet received
    /// by every watcher.
    Window(u64),
}

/// Where changes go.
pub enum Feed {
    /// `ReportChatLoad` calls to Roster or the bare server.
    Grpc(GrpcFeed),
    /// `PUBLISH`es on one Redis connection.
    Redis(RedisFeed),
}

impl Feed {
    async fn send(&self, tracker: &Arc<Tracker>) -> Result<(), BenchError> {
        match self {
            Feed::Grpc(feed) => feed.send(tracker).await,
            Feed::Redis(feed) => feed.send(tracker),
        }
    }

    /// Waits until every call sent has been answered (a published change
    /// is answered by its deliveries, which the driver waits for anyway).
    async fn settle(&self) -> Result<(), BenchError> {
        match self {
            Feed::Grpc(feed) => feed.settle().await,
            Feed::Redis(_) => Ok(()),
        }
    }
}

pub struct GrpcFeed {
    clients: Vec<PresenceServiceClient<InterceptedService<Channel, Bearer>>>,
    in_flight: Arc<Semaphore>,
}

impl GrpcFeed {
    /// A feed over `connections` new connections to `url`, calling with
    /// `token`.
    pub async fn connect(url: &str, token: &str, connections: usize) -> Result<Self, BenchError> {
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            let channel = Channel::from_shared(url.to_owned())?.connect().await?;
            clients.push(PresenceServiceClient::with_interceptor(
                channel,
                Bearer::new(token)?,
            ));
        }
        Ok(Self {
            clients,
            in_flight: Arc::new(Semaphore::new(GRPC_IN_FLIGHT as usize)),
        })
    }

    async fn send(&self, tracker: &Arc<Tracker>) -> Result<(), BenchError> {
        let permit = self.in_flight.clone().acquire_owned().await?;
        let change = tracker.issue();
        let mut client = self.clients[change.n as usize % self.clients.len()].clone();
        let request = pb::ReportChatLoadRequest {
            user_id: tracker.agent_id(change.agent).to_owned(),
            active_chats: change.active_chats,
        };
        let tracker = tracker.clone();
        tokio::spawn(async move {
            if let Err(status) = client.report_chat_load(request).await {
                tracker.fail(format!("ReportChatLoad failed: {}", status.message()));
            }
            drop(permit);
        });
        Ok(())
    }

    async fn settle(&self) -> Result<(), BenchError> {
        let _all = self.in_flight.acquire_many(GRPC_IN_FLIGHT).await?;
        Ok(())
    }
}

/// A Redis connection for commands. A pipeline to 10,000 subscribers, or
/// any command while the machine is loaded, can take longer than the
/// client's default timeouts (1 s to connect, 0.5 s to answer).
pub async fn redis_connection(
    client: &redis::Client,
) -> Result<redis::aio::MultiplexedConnection, BenchError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(DRAIN))
        .set_response_timeout(Some(DRAIN));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

/// One publisher: changes are published in the order issued, so a
/// subscriber can check its sequence numbers (change `n` is sequence
/// `n + 1`); whatever queued while a pipeline was out goes in the next.
pub struct RedisFeed {
    queue: mpsc::UnboundedSender<super::tracker::Change>,
    publisher: tokio::task::JoinHandle<()>,
}

impl RedisFeed {
    pub async fn connect(
        client: &redis::Client,
        template: Arc<EventTemplate>,
        tracker: &Arc<Tracker>,
    ) -> Result<Self, BenchError> {
        let mut connection = redis_connection(client).await?;
        let (queue, mut changes) = mpsc::unbounded_channel::<super::tracker::Change>();
        let tracker = tracker.clone();
        let publisher = tokio::spawn(async move {
            let mut batch = Vec::new();
            while changes.recv_many(&mut batch, 4096).await > 0 {
                let mut pipe = redis::pipe();
                for change in &batch {
                    let user_id = tracker.agent_id(change.agent);
                    let payload = template.encode(change.n + 1, user_id, change.active_chats);
                    pipe.cmd("PUBLISH").arg(REDIS_CHANNEL).arg(payload).ignore();
                }
                if let Err(err) = pipe.query_async::<()>(&mut connection).await {
                    tracker.fail(format!("PUBLISH failed: {err}"));
                    return;
                }
                batch.clear();
            }
        });
        Ok(Self { queue, publisher })
    }

    fn send(&self, tracker: &Arc<Tracker>) -> Result<(), BenchError> {
        self.queue
            .send(tracker.issue())
            .map_err(|_| BenchError::msg("the Redis publisher stopped"))
    }
}

impl Drop for RedisFeed {
    fn drop(&mut self) {
        self.publisher.abort();
    }
}

/// Issues changes for `duration` at `pace`, then waits until each has
/// reached every watcher. The measure counts deliveries (and changes) per
/// second from the first change to the last delivery; `server` is the
/// process whose CPU and memory are measured.
pub async fn drive(
    tracker: &Arc<Tracker>,
    feed: &Feed,
    pace: Pace,
    duration: Duration,
    server: Option<u32>,
) -> Result<Measure, BenchError> {
    tracker.take_latencies()?;
    let usage = server.map(UsageWindow::start).transpose()?;
    let client = UsageWindow::start(std::process::id())?;
    let mut progress = tracker.progress();
    let first = tracker.issued();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < deadline {
        let complete = {
            let p = progress.borrow_and_update();
            if let Some(failure) = &p.failure {
                return Err(BenchError::msg(failure));
            }
            p.complete
        };
        let behind = tracker.issued() - complete;
        if behind > tracker.max_behind() {
            return Err(BenchError::msg(format!(
                "deliveries fell {behind} changes behind"
            )));
        }
        let due = match pace {
            Pace::Rate(rate) => {
                let owed = (started.elapsed().as_secs_f64() * rate) as u64;
                owed.saturating_sub(tracker.issued() - first)
            }
            Pace::Window(window) => window.saturating_sub(behind),
        };
        for _ in 0..due {
            if Instant::now() >= deadline {
                break;
            }
            feed.send(tracker).await?;
        }
        match pace {
            Pace::Rate(_) => {
                tick.tick().await;
            }
            Pace::Window(_) => {
                tokio::select! {
                    _ = progress.changed() => {}
                    () = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
        }
    }
    feed.settle().await?;
    tracker.until_delivered(DRAIN).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let server = usage.map(|u| u.finish()).transpose()?;
    let latencies = tracker.take_latencies()?;
    let changes = tracker.issued() - first;
    if latencies.len() != changes * tracker.watchers() as u64 {
        return Err(BenchError::msg(format!(
            "{} deliveries of {changes} changes to {} watchers",
            latencies.len(),
            tracker.watchers()
        )));
    }
    Ok(Measure {
        rate: latencies.len() as f64 / elapsed,
        latency: Some(load::latency(&latencies)),
        server,
        changes: Some(changes as f64 / elapsed),
        client_cores: Some(client.finish()?.cores),
        failure: None,
    })
}
