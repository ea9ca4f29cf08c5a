//! ReportChatLoad in batches. Routers report loads all the time, and each
//! report on its own would be a write transaction (on SQLite, one at a
//! time). Reports that arrive while a transaction is being written wait and
//! go together in the next one of their org, in arrival order:
//! - each is checked on its own against the presence its predecessors in
//!   the batch left, so one refusal leaves the others untouched;
//! - a database failure fails every report of the batch, and nothing of it
//!   is written;
//! - the answer comes after the commit, as it would for a single report.

use std::collections::HashMap;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::not_active;
use crate::{
    domain::{ChangeReason, OrgId, Presence, PresenceStatus, UserId, presence_time},
    error::{Error, Reason, Result},
    store::Store,
};

/// Most reports written in one transaction.
const MAX_BATCH: usize = 512;
/// Reports waiting beyond this make callers wait to queue theirs.
const QUEUE: usize = 4096;

/// The queue in front of the writer; the writer stops when every clone is
/// dropped.
#[derive(Clone)]
pub struct ChatLoadWriter {
    queue: mpsc::Sender<Report>,
}

struct Report {
    org_id: OrgId,
    user_id: UserId,
    active_chats: u32,
    reply: oneshot::Sender<Result<Presence>>,
}

#[derive(Debug, thiserror::Error)]
#[error("chat-load reports could not be written: {0}")]
struct BatchFailed(String);

impl ChatLoadWriter {
    /// Starts the writer task.
    pub fn start(store: Store) -> Self {
        let (queue, reports) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, reports));
        Self { queue }
    }

    /// Records that the user has `active_chats` open now; answers once
    /// written.
    pub async fn report(
        &self,
        org_id: OrgId,
        user_id: UserId,
        active_chats: u32,
    ) -> Result<Presence> {
        let stopped = || Error::internal(BatchFailed("the writer has stopped".into()));
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Report {
                org_id,
                user_id,
                active_chats,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Store, mut reports: mpsc::Receiver<Report>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while reports.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut by_org: Vec<(OrgId, Vec<Report>)> = Vec::new();
        for report in batch.drain(..) {
            match by_org
                .iter_mut()
                .find(|(org_id, _)| *org_id == report.org_id)
            {
                Some((_, reports)) => reports.push(report),
                None => by_org.push((report.org_id, vec![report])),
            }
        }
        for (org_id, reports) in by_org {
            match write(&store, org_id, &reports).await {
                Ok(outcomes) => {
                    for (report, outcome) in reports.into_iter().zip(outcomes) {
                        // A caller that gave up no longer wants the answer.
                        let _ = report.reply.send(outcome);
                    }
                }
                Err(err) => {
                    for report in reports {
                        let _ = report.reply.send(Err(err.share()));
                    }
                }
            }
        }
    }
}

/// Writes the org's reports in one transaction; returns each one's outcome.
async fn write(store: &Store, org_id: OrgId, reports: &[Report]) -> Result<Vec<Result<Presence>>> {
    let org = store.read().org(org_id).await?;
    let now = presence_time(Utc::now());
    let mut user_ids: Vec<UserId> = reports.iter().map(|r| r.user_id).collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let tx = store.write().await?;
    let mut guard = tx.repo().lock_presence(org_id).await?;
    let mut current: HashMap<UserId, Presence> = tx
        .repo()
        .presence_for_update(&org, &user_ids, now)
        .await?
        .into_iter()
        .map(|record| (record.presence.user_id, record.presence))
        .collect();
    let mut changes = Vec::with_capacity(reports.len());
    let outcomes = reports
        .iter()
        .map(|report| {
            let before = current
                .get(&report.user_id)
                .ok_or_else(Error::user_not_found)?;
            if !before.watched {
                return Err(not_active());
            }
            if before.status == PresenceStatus::Offline && report.active_chats > 0 {
                return Err(Error::failed_precondition(
                    Reason::UserOffline,
                    "the user is OFFLINE and cannot have open chats",
                ));
            }
            let mut after = before.clone();
            after.active_chats = report.active_chats;
            changes.push((before.clone(), after.clone()));
            current.insert(report.user_id, after.clone());
            Ok(after)
        })
        .collect();
    tx.repo()
        .record_presence(&mut guard, ChangeReason::ChatLoadReported, now, &changes)
        .await?;
    tx.commit().await?;
    Ok(outcomes)
}
