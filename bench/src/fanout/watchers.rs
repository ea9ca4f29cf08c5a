//! The watchers: WatchPresence streams spread over HTTP/2 connections, or
//! Redis subscribers. Each connection's streams (or each group of
//! subscriber connections) are read by one task that records into one
//! histogram, so 10,000 watchers cost 100 tasks and 100 histograms here.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures_util::{Stream, StreamExt, stream::SelectAll};
use hdrhistogram::Histogram;
use prost::Message;
use roster::api::{Bearer, WATCH_PATH, pb};
use tokio::task::JoinHandle;
use tonic::{
    codegen::http::uri::PathAndQuery, service::interceptor::InterceptedService, transport::Channel,
};

use super::tracker::{EventHead, Place, Tracker};
use crate::BenchError;

/// How long one subscriber connection may take to open.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Running watchers; dropping them closes every stream.
pub struct Watchers {
    groups: Vec<JoinHandle<()>>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for group in &self.groups {
            group.abort();
        }
    }
}

/// `tracker.watchers()` WatchPresence streams (no filter) with `token`,
/// spread evenly over `connections` connections to `url`.
pub async fn watch(
    url: &str,
    token: &str,
    connections: usize,
    tracker: &Arc<Tracker>,
) -> Result<Watchers, BenchError> {
    let mut groups = Vec::new();
    for (c, count) in spread(tracker.watchers(), connections).enumerate() {
        let channel = Channel::from_shared(url.to_owned())?.connect().await?;
        let bearer = Bearer::new(token)?;
        let latency = tracker.group_latency()?;
        let tracker = tracker.clone();
        groups.push(tokio::spawn(async move {
            if let Err(err) = follow_streams(channel, bearer, count, &tracker, latency).await {
                tracker.fail(format!("watchers of connection {c}: {err}"));
            }
        }));
    }
    Ok(Watchers { groups })
}

async fn follow_streams(
    channel: Channel,
    bearer: Bearer,
    count: usize,
    tracker: &Tracker,
    latency: Arc<Mutex<Histogram<u64>>>,
) -> Result<(), BenchError> {
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(channel, bearer));
    let mut streams = SelectAll::new();
    for i in 0..count {
        grpc.ready().await.map_err(BenchError::msg)?;
        let stream = grpc
            .server_streaming(
                tonic::Request::new(pb::WatchPresenceRequest::default()),
                PathAndQuery::from_static(WATCH_PATH),
                tonic_prost::ProstCodec::<pb::WatchPresenceRequest, EventHead>::default(),
            )
            .await
            .map_err(status)?
            .into_inner();
        streams.push(numbered(i, stream.map(|item| item.map_err(status))));
    }
    let places = vec![Place::default(); count];
    follow(streams, places, tracker, &latency).await
}

/// `tracker.watchers()` Redis connections, each SUBSCRIBEd to the channel,
/// read in `groups` groups.
pub async fn subscribe(
    client: &redis::Client,
    groups: usize,
    tracker: &Arc<Tracker>,
) -> Result<Watchers, BenchError> {
    let mut tasks = Vec::new();
    for (g, count) in spread(tracker.watchers(), groups).enumerate() {
        let client = client.clone();
        let latency = tracker.group_latency()?;
        let tracker = tracker.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(err) = follow_subscribers(client, count, &tracker, latency).await {
                tracker.fail(format!("subscribers of group {g}: {err}"));
            }
        }));
    }
    Ok(Watchers { groups: tasks })
}

async fn follow_subscribers(
    client: redis::Client,
    count: usize,
    tracker: &Tracker,
    latency: Arc<Mutex<Histogram<u64>>>,
) -> Result<(), BenchError> {
    let mut streams = SelectAll::new();
    for i in 0..count {
        let mut pubsub =
            tokio::time::timeout(REDIS_CONNECT_TIMEOUT, client.get_async_pubsub()).await??;
        pubsub.subscribe(super::drive::REDIS_CHANNEL).await?;
        tracker.follows_live();
        let messages = pubsub
            .into_on_message()
            .map(|message| Ok(EventHead::decode(message.get_payload_bytes())?));
        streams.push(numbered(i, messages));
    }
    // Every subscriber starts before the first change is published.
    let places = vec![Place::live_after(0); count];
    follow(streams, places, tracker, &latency).await
}

/// Tags a watcher's items with its number, and its end with `None`.
fn numbered<S>(
    i: usize,
    stream: S,
) -> impl Stream<Item = (usize, Option<Result<EventHead, BenchError>>)> + Unpin
where
    S: Stream<Item = Result<EventHead, BenchError>> + Unpin,
{
    stream
        .map(move |item| (i, Some(item)))
        .chain(futures_util::stream::iter([(i, None)]))
}

/// Hands every event of a group's watchers to the tracker; a watcher's
/// error or end is a failure.
async fn follow<S>(
    mut streams: SelectAll<S>,
    mut places: Vec<Place>,
    tracker: &Tracker,
    latency: &Mutex<Histogram<u64>>,
) -> Result<(), BenchError>
where
    S: Stream<Item = (usize, Option<Result<EventHead, BenchError>>)> + Unpin,
{
    while let Some((i, item)) = streams.next().await {
        let event = item.ok_or_else(|| BenchError::msg(format!("stream {i} ended")))??;
        let mut latency = latency.lock().unwrap_or_else(PoisonError::into_inner);
        tracker.deliver(&mut places[i], &event, &mut latency)?;
    }
    Ok(())
}

fn status(status: tonic::Status) -> BenchError {
    BenchError::msg(format!("{:?}: {}", status.code(), status.message()))
}

/// `total` split into `parts` near-equal counts (none empty).
fn spread(total: usize, parts: usize) -> impl Iterator<Item = usize> {
    let parts = parts.clamp(1, total.max(1));
    (0..parts).map(move |p| total / parts + usize::from(p < total % parts))
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_even_and_complete() {
        assert_eq!(spread(10, 4).collect::<Vec<_>>(), [3, 3, 2, 2]);
        assert_eq!(spread(10_000, 100).sum::<usize>(), 10_000);
        assert_eq!(spread(3, 10).collect::<Vec<_>>(), [1, 1, 1]);
    }
}
