//! The presence writer: availability, heartbeats that must write, and
//! chat-load reports, in batches. Each request on its own would be a write
//! transaction (on SQLite, one at a time; on PostgreSQL, a chain of round
//! trips under the org's sequence lock). Requests that arrive while a batch
//! is being written wait and go together in the next transaction of their
//! org, in arrival order:
//! - each is checked on its own against the presence its predecessors in
//!   the batch left, so one refusal leaves the others untouched;
//! - the batch's changes are written set-based (one statement for the
//!   presence rows, one for the events, one for the leases, one for the
//!   audit entries) and numbered in arrival order;
//! - a database failure fails every request of the batch, and nothing of it
//!   is written;
//! - the answer comes after the commit, as it would for a single request.
//!
//! Sign-in and sign-out at login, logout and lifecycle changes are not
//! here: their presence change commits with the session, the audit entry
//! or the user change it belongs to (see [`super::sign_in`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{authorize_manage, lease_end, not_active, signed_in};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize},
    batch::{Batcher, failed_all},
    domain::{
        ChangeReason, OrgId, OrgSettings, Permission, Presence, PresenceStatus, UserId,
        presence_time,
    },
    error::{Error, Reason, Result},
    store::{AuditRecord, Store},
};

/// Most requests written in one transaction.
const MAX_BATCH: usize = 512;

/// The queue in front of the writer (see [`crate::batch`]).
#[derive(Clone)]
pub struct PresenceWriter {
    batcher: Batcher<(UserId, Change), Written>,
}

/// A change to one user's presence.
pub enum Change {
    /// AVAILABLE or UNAVAILABLE, set by the user (`by` is `None`, and the
    /// lease is renewed) or by someone in whose scope they are (audited).
    Availability {
        status: PresenceStatus,
        principal: Principal,
        by: Option<Origin>,
    },
    /// A heartbeat that renews the lease: an OFFLINE user is signed in
    /// again as UNAVAILABLE.
    Heartbeat,
    /// The number of chats the user has open now.
    ChatLoad { active_chats: u32 },
}

/// What was written: the presence after the change, and whether the lease
/// was renewed to the batch's lease end.
pub struct Written {
    pub presence: Presence,
    pub lease_renewed: bool,
    pub lease_expires_at: DateTime<Utc>,
}

impl PresenceWriter {
    /// Starts the writer task.
    pub fn start(store: Store) -> Self {
        let batcher = Batcher::start(MAX_BATCH, move |org_id, requests: Vec<(UserId, Change)>| {
            let store = store.clone();
            async move {
                match write(&store, org_id, &requests).await {
                    Ok(outcomes) => outcomes,
                    Err(err) => failed_all(requests.len(), &err),
                }
            }
        });
        Self { batcher }
    }

    /// Writes `change` to the user's presence; answers once committed.
    pub async fn write(&self, org_id: OrgId, user_id: UserId, change: Change) -> Result<Written> {
        self.batcher.submit(org_id, (user_id, change)).await
    }
}

/// What one request does to the batch, once checked.
struct Applied {
    reason: ChangeReason,
    after: Presence,
    renews_lease: bool,
    audit: Option<AuditRecord>,
}

/// Writes the org's requests in one transaction; returns each one's outcome.
async fn write(
    store: &Store,
    org_id: OrgId,
    requests: &[(UserId, Change)],
) -> Result<Vec<Result<Written>>> {
    let org = store.read().org(org_id).await?;
    let now = presence_time(Utc::now());
    let until = lease_end(&org, now)?;
    let mut user_ids: Vec<UserId> = requests.iter().map(|(user_id, _)| *user_id).collect();
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
    let mut changes = Vec::with_capacity(requests.len());
    let mut leased = Vec::new();
    let mut audits = Vec::new();
    let outcomes: Vec<Result<Written>> = requests
        .iter()
        .map(|(user_id, change)| {
            let before = current.get(user_id).ok_or_else(Error::user_not_found)?;
            let applied = apply(&org, before, change, now)?;
            if applied.renews_lease {
                leased.push(*user_id);
            }
            audits.extend(applied.audit);
            changes.push((applied.reason, before.clone(), applied.after.clone()));
            current.insert(*user_id, applied.after.clone());
            Ok(Written {
                presence: applied.after,
                lease_renewed: applied.renews_lease,
                lease_expires_at: until,
            })
        })
        .collect();
    tx.repo()
        .record_presence_changes(
            &mut guard,
            now,
            changes
                .iter()
                .map(|(reason, before, after)| (*reason, before, after)),
        )
        .await?;
    leased.sort_unstable();
    leased.dedup();
    tx.repo().set_presence_leases(&leased, Some(until)).await?;
    tx.repo().append_audits(audits).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Checks `change` against the presence `before` it; the presence after.
fn apply(
    org: &OrgSettings,
    before: &Presence,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Applied> {
    let mut after = before.clone();
    match change {
        Change::Availability {
            status,
            principal,
            by,
        } => {
            match by {
                None if *status == PresenceStatus::Available => {
                    authorize(principal, Permission::HandleChats)?;
                }
                None => {}
                Some(_) => authorize_manage(principal, before)?,
            }
            if !before.watched {
                return Err(not_active());
            }
            if before.status == PresenceStatus::Offline {
                return Err(Error::failed_precondition(
                    Reason::UserOffline,
                    if by.is_none() {
                        "you are OFFLINE: your presence lease ran out (no heartbeat within the \
                         org's presence lease) or you signed out; a heartbeat signs you back in"
                    } else {
                        "the user is OFFLINE: they must sign in first"
                    },
                ));
            }
            if *status == PresenceStatus::Available && !before.can_handle_chats {
                return Err(Error::failed_precondition(
                    Reason::CannotHandleChats,
                    "the user's roles do not handle chats",
                ));
            }
            if before.status != *status {
                after.status = *status;
                after.status_changed_at = now;
            }
            let audit = by.as_ref().filter(|_| *before != after).map(|origin| {
                audit::entry(
                    org.org_id,
                    AuditActor::from(principal),
                    Action::PresenceSet,
                    Some(before.user_id),
                    origin,
                    json!({
                        "before": { "status": before.status.as_str() },
                        "after": { "status": after.status.as_str() },
                    }),
                )
            });
            Ok(Applied {
                reason: ChangeReason::AvailabilitySet,
                after,
                renews_lease: by.is_none(),
                audit,
            })
        }
        Change::Heartbeat => Ok(Applied {
            reason: ChangeReason::SignedIn,
            after: signed_in(before, now),
            renews_lease: true,
            audit: None,
        }),
        Change::ChatLoad { active_chats } => {
            if !before.watched {
                return Err(not_active());
            }
            if before.status == PresenceStatus::Offline && *active_chats > 0 {
                return Err(Error::failed_precondition(
                    Reason::UserOffline,
                    "the user is OFFLINE and cannot have open chats",
                ));
            }
            after.active_chats = *active_chats;
            Ok(Applied {
                reason: ChangeReason::ChatLoadReported,
                after,
                renews_lease: false,
                audit: None,
            })
        }
    }
}
