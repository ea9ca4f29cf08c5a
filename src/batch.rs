//! Group commit: requests of one kind that arrive while a batch is being
//! written wait and go together in the next batch of their org, in arrival
//! order, written by one task. A write transaction per request would be one
//! at a time on SQLite and a chain of round trips under the org's locks on
//! PostgreSQL; a batch pays for one.
//!
//! Contract: the batch function answers every request of the batch, in
//! order (one outcome each); a request's caller gets its answer once the
//! batch has committed or failed. Callers that arrive while the queue is
//! full wait to queue theirs. The task stops when every clone is dropped.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::{
    domain::OrgId,
    error::{Error, Result},
};

/// Requests waiting beyond this make callers wait to queue theirs.
const QUEUE: usize = 4096;

/// The queue in front of one batching writer.
pub struct Batcher<T, R> {
    queue: mpsc::Sender<Request<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

struct Request<T, R> {
    org_id: OrgId,
    item: T,
    reply: oneshot::Sender<Result<R>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the batching writer has stopped")]
struct Stopped;

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the writer task: `write` gets each org's requests of a batch
    /// (at most `max_batch` in all) and returns one outcome per request.
    pub fn start<F, Fut>(max_batch: usize, write: F) -> Self
    where
        F: Fn(OrgId, Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<R>>> + Send + 'static,
    {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(run(requests, max_batch, write));
        Self { queue }
    }

    /// Queues `item` for the next batch of its org; its outcome once written.
    pub async fn submit(&self, org_id: OrgId, item: T) -> Result<R> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request {
                org_id,
                item,
                reply,
            })
            .await
            .map_err(|_| Error::internal(Stopped))?;
        answer.await.map_err(|_| Error::internal(Stopped))?
    }
}

async fn run<T, R, F, Fut>(mut requests: mpsc::Receiver<Request<T, R>>, max_batch: usize, write: F)
where
    F: Fn(OrgId, Vec<T>) -> Fut,
    Fut: Future<Output = Vec<Result<R>>>,
{
    let mut batch = Vec::with_capacity(max_batch);
    while requests.recv_many(&mut batch, max_batch).await > 0 {
        let mut by_org: Vec<(OrgId, Vec<Request<T, R>>)> = Vec::new();
        for request in batch.drain(..) {
            match by_org
                .iter_mut()
                .find(|(org_id, _)| *org_id == request.org_id)
            {
                Some((_, requests)) => requests.push(request),
                None => by_org.push((request.org_id, vec![request])),
            }
        }
        for (org_id, requests) in by_org {
            let (items, replies): (Vec<T>, Vec<_>) =
                requests.into_iter().map(|r| (r.item, r.reply)).unzip();
            let outcomes = write(org_id, items).await;
            debug_assert_eq!(outcomes.len(), replies.len());
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that gave up no longer wants the answer.
                let _ = reply.send(outcome);
            }
        }
    }
}

/// Every request of a batch gets `err`, the batch's failure.
pub fn failed_all<R>(count: usize, err: &Error) -> Vec<Result<R>> {
    (0..count).map(|_| Err(err.share())).collect()
}
