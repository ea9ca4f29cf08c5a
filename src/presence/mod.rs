//! Presence use cases: availability, heartbeats and leases, chat load,
//! reads, and watches through the [`hub`].
//!
//! Every change locks the org's presence sequence, changes the presence row
//! and appends its event in one transaction (see `store::presence`), so
//! the database holds both the current state and the ordered log.
//!
//! Leases: a heartbeat extends the lease in the database only when less
//! than half of it is left, so a client beating every third of the lease
//! writes on every other beat at most; the beats between are a read. Expiry
//! runs on every replica ([`Presences::run_sweeper`]); it re-reads expired
//! leases under the sequence lock, so two replicas never expire one lease
//! twice and a heartbeat that committed first wins.

mod activity;
mod feed;
pub mod hub;
mod writer;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};

pub use activity::{ActivityPageKey, ActivityQuery};
pub use hub::{Hub, HubConfig, HubEvent, WatchItem, Watcher};
use writer::{Change, PresenceWriter};

use crate::{
    audit::Origin,
    auth::{Principal, authorize},
    domain::{
        ChangeReason, OrgId, OrgSettings, Permission, Presence, PresenceFilter, PresenceStatus,
        TeamId, UserId, presence_time,
    },
    error::{Error, Reason, Result},
    store::{Store, WriteTx},
};

/// How often expired leases are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often the event log is pruned to its retention.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Presences {
    store: Store,
    hub: Hub,
    /// The lease end this replica last wrote per user: heartbeats well
    /// within it need no write.
    leases: Arc<Mutex<HashMap<UserId, DateTime<Utc>>>>,
    retention: Duration,
    writer: PresenceWriter,
}

/// A heartbeat's answer.
pub struct Beat {
    pub presence: Presence,
    pub lease_expires_at: DateTime<Utc>,
    pub interval: Duration,
}

/// Filters of ListPresence and WatchPresence, before scoping.
#[derive(Debug, Clone, Default)]
pub struct PresenceQuery {
    pub team_ids: Vec<TeamId>,
    pub statuses: Vec<PresenceStatus>,
}

impl Presences {
    /// Starts the presence writer (see [`writer`]).
    pub fn new(store: Store, hub: Hub, retention: Duration) -> Self {
        Self {
            writer: PresenceWriter::start(store.clone()),
            store,
            hub,
            leases: Arc::default(),
            retention,
        }
    }

    /// Follows the orgs that change from now on, on any replica (see
    /// [`crate::store::OrgChanges`]).
    pub fn org_changes(&self) -> tokio::sync::broadcast::Receiver<Option<OrgId>> {
        self.store.org_changes()
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sets a user AVAILABLE or UNAVAILABLE: oneself (`None`), or another
    /// user in the caller's scope.
    pub async fn set_availability(
        &self,
        principal: &Principal,
        origin: &Origin,
        target: Option<UserId>,
        status: PresenceStatus,
    ) -> Result<Presence> {
        let me = principal.user_id();
        let user_id = target.or(me).ok_or_else(|| {
            Error::invalid(
                crate::error::ParseError::new(
                    Reason::InvalidArgument,
                    "an API key has no presence of its own: name the user",
                )
                .at("user_id"),
            )
        })?;
        let own = me == Some(user_id);
        let change = Change::Availability {
            status,
            principal: principal.clone(),
            by: (!own).then(|| origin.clone()),
        };
        let written = self.writer.write(principal.org_id, user_id, change).await?;
        if written.lease_renewed {
            self.remember_lease(user_id, written.lease_expires_at);
        }
        Ok(written.presence)
    }

    /// Renews the caller's lease; brings an expired presence back as
    /// UNAVAILABLE.
    pub async fn heartbeat(&self, principal: &Principal) -> Result<Beat> {
        let user_id = principal
            .user_id()
            .ok_or(Error::Unauthenticated(Reason::NotASession))?;
        let org = self.store.read().org(principal.org_id).await?;
        let now = presence_time(Utc::now());
        let interval = org.presence_lease / 3;
        let half = chrono::Duration::from_std(org.presence_lease / 2).map_err(Error::internal)?;
        let known = self
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user_id)
            .copied();
        if let Some(lease_expires_at) = known.filter(|end| *end - now >= half) {
            let current = self
                .store
                .read()
                .presence_rows(org.org_id, Some(&[user_id]))
                .await?;
            if let Some(record) = current.into_iter().next()
                && record.presence.status != PresenceStatus::Offline
            {
                return Ok(Beat {
                    presence: record.presence,
                    lease_expires_at,
                    interval,
                });
            }
        }
        let written = self
            .writer
            .write(org.org_id, user_id, Change::Heartbeat)
            .await?;
        self.remember_lease(user_id, written.lease_expires_at);
        Ok(Beat {
            presence: written.presence,
            lease_expires_at: written.lease_expires_at,
            interval,
        })
    }

    /// Records how many chats an agent has open now.
    pub async fn report_chat_load(
        &self,
        principal: &Principal,
        user_id: UserId,
        active_chats: u32,
    ) -> Result<Presence> {
        authorize(principal, Permission::ReportChatLoad)?;
        let written = self
            .writer
            .write(principal.org_id, user_id, Change::ChatLoad { active_chats })
            .await?;
        Ok(written.presence)
    }

    /// The presence of each distinct user of `user_ids`, in order.
    pub async fn get(&self, principal: &Principal, user_ids: &[UserId]) -> Result<Vec<Presence>> {
        let mut distinct = Vec::new();
        let mut seen = HashSet::new();
        for id in user_ids {
            if seen.insert(*id) {
                distinct.push(*id);
            }
        }
        let org = self.store.read().org(principal.org_id).await?;
        let found: HashMap<UserId, Presence> = self
            .store
            .read()
            .presence_of(&org, &distinct, Utc::now())
            .await?
            .into_iter()
            .map(|p| (p.user_id, p))
            .collect();
        let scope = read_scope(principal, &PresenceQuery::default(), false)?;
        distinct
            .iter()
            .map(|id| {
                let presence = found.get(id).ok_or_else(Error::user_not_found)?;
                let mut facts = presence.scope();
                // Unwatched users (invited, suspended) are readable here.
                facts.watched = true;
                if scope.matches(*id, facts) {
                    Ok(presence.clone())
                } else {
                    Err(Error::permission_denied(
                        "you may read the presence of yourself and, with presence.read_team, \
                         of your teams",
                    ))
                }
            })
            .collect()
    }

    /// A page of the watched users in scope, in id order, after `after`.
    pub async fn list(
        &self,
        principal: &Principal,
        query: &PresenceQuery,
        after: Option<UserId>,
        page_size: usize,
    ) -> Result<(Vec<Presence>, bool)> {
        let filter = read_scope(principal, query, false)?;
        let read = self.store.read();
        let mut page = Vec::new();
        let mut cursor = after;
        const CHUNK: u64 = 500;
        loop {
            let chunk = read
                .watched_presence_page(principal.org_id, &query.statuses, cursor, CHUNK)
                .await?;
            let exhausted = (chunk.len() as u64) < CHUNK;
            cursor = chunk.last().map(|p| p.user_id);
            for presence in chunk {
                if filter.matches(presence.user_id, presence.scope()) {
                    if page.len() == page_size {
                        return Ok((page, true));
                    }
                    page.push(presence);
                }
            }
            if exhausted {
                return Ok((page, false));
            }
        }
    }

    /// Starts a watch of the users in the caller's scope.
    pub async fn watch(
        &self,
        principal: &Principal,
        query: &PresenceQuery,
        resume_after: Option<u64>,
    ) -> Result<Watcher> {
        let filter = read_scope(principal, query, true)?;
        self.hub.watch(principal.org_id, filter, resume_after).await
    }

    /// Expires lapsed leases and prunes the event log, until the hub stops.
    pub async fn run_sweeper(self) {
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = tokio::time::Instant::now();
        let mut stopping = self.hub.stopping();
        loop {
            tokio::select! {
                _ = sweep.tick() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            if let Err(err) = self.expire_leases().await {
                tracing::warn!(%err, "cannot expire presence leases");
            }
            if last_prune.elapsed() >= PRUNE_INTERVAL {
                last_prune = tokio::time::Instant::now();
                if let Err(err) = self.prune().await {
                    tracing::warn!(%err, "cannot prune the presence log");
                }
            }
        }
    }

    async fn expire_leases(&self) -> Result<()> {
        let now = presence_time(Utc::now());
        for org_id in self.store.read().orgs_with_expired_leases(now).await? {
            let tx = self.store.write().await?;
            let changes = sign_out_all(&tx, org_id, Some(now), ChangeReason::LeaseExpired).await?;
            tx.commit().await?;
            let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
            for (before, _) in &changes {
                leases.remove(&before.user_id);
            }
        }
        Ok(())
    }

    async fn prune(&self) -> Result<()> {
        let retention = chrono::Duration::from_std(self.retention).map_err(Error::internal)?;
        let tx = self.store.write().await?;
        let pruned = tx
            .repo()
            .prune_presence_events(Utc::now() - retention)
            .await?;
        tx.commit().await?;
        if pruned > 0 {
            tracing::debug!(pruned, "pruned presence events past retention");
        }
        Ok(())
    }

    fn remember_lease(&self, user_id: UserId, until: DateTime<Utc>) {
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user_id, until);
    }
}

/// A sign-in within the login's transaction (a heartbeat's goes through
/// the [`writer`]): an OFFLINE user becomes UNAVAILABLE; a
/// signed-in one keeps their status. Starts the lease; returns its end.
pub async fn sign_in(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<(Presence, DateTime<Utc>)> {
    let now = presence_time(now);
    let mut guard = tx.repo().lock_presence(org.org_id).await?;
    let before = current(tx, org, user_id, now).await?;
    let after = signed_in(&before, now);
    tx.repo()
        .record_presence(
            &mut guard,
            ChangeReason::SignedIn,
            now,
            &[(before, after.clone())],
        )
        .await?;
    let until = lease_end(org, now)?;
    tx.repo().set_presence_lease(user_id, Some(until)).await?;
    Ok((after, until))
}

/// The presence of a user who signs in: an OFFLINE one becomes
/// UNAVAILABLE; a signed-in one keeps their status.
fn signed_in(before: &Presence, now: DateTime<Utc>) -> Presence {
    let mut after = before.clone();
    if before.status == PresenceStatus::Offline && before.watched {
        after.status = PresenceStatus::Unavailable;
        after.status_changed_at = now;
    }
    after
}

fn lease_end(org: &OrgSettings, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    Ok(now + chrono::Duration::from_std(org.presence_lease).map_err(Error::internal)?)
}

/// A sign-out: the user goes OFFLINE, their chats with them.
pub async fn sign_out(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = presence_time(now);
    let mut guard = tx.repo().lock_presence(org.org_id).await?;
    let before = current(tx, org, user_id, now).await?;
    let mut after = before.clone();
    if before.status != PresenceStatus::Offline {
        after.status = PresenceStatus::Offline;
        after.status_changed_at = now;
        after.active_chats = 0;
    }
    tx.repo()
        .record_presence(&mut guard, ChangeReason::SignedOut, now, &[(before, after)])
        .await?;
    Ok(())
}

/// Signs out every signed-in user of the org (only those whose lease ended
/// before `lease_ended_before`, when given): OFFLINE, their chats with them,
/// one event each with `reason`. Returns the changes (before, after).
pub async fn sign_out_all(
    tx: &WriteTx,
    org_id: OrgId,
    lease_ended_before: Option<DateTime<Utc>>,
    reason: ChangeReason,
) -> Result<Vec<(Presence, Presence)>> {
    let now = presence_time(Utc::now());
    let mut guard = tx.repo().lock_presence(org_id).await?;
    let signed_in = tx
        .repo()
        .signed_in_presence(org_id, lease_ended_before)
        .await?;
    let changes: Vec<(Presence, Presence)> = signed_in
        .into_iter()
        .map(|before| {
            let mut after = before.clone();
            after.status = PresenceStatus::Offline;
            after.status_changed_at = now;
            after.active_chats = 0;
            (before, after)
        })
        .collect();
    tx.repo()
        .record_presence(&mut guard, reason, now, &changes)
        .await?;
    Ok(changes)
}

/// The user's presence for a change; call with the sequence locked.
async fn current(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<Presence> {
    tx.repo()
        .presence_for_update(org, &[user_id], now)
        .await?
        .into_iter()
        .next()
        .map(|r| r.presence)
        .ok_or_else(Error::user_not_found)
}

/// Who a reader may see, narrowed by the query. For a watch, team filters
/// outside a team-scoped caller's teams are refused rather than ignored.
fn read_scope(
    principal: &Principal,
    query: &PresenceQuery,
    strict: bool,
) -> Result<PresenceFilter> {
    let me = principal.user_id();
    let scope_teams = if principal.permissions.contains(Permission::ReadPresence) {
        None
    } else if principal.permissions.contains(Permission::ReadTeamPresence) {
        Some(principal.team_ids.iter().copied().collect::<HashSet<_>>())
    } else if me.is_some() {
        Some(HashSet::new())
    } else {
        return Err(Error::permission_denied(
            "this requires the presence.read permission",
        ));
    };
    if strict
        && let Some(mine) = &scope_teams
        && let Some(other) = query.team_ids.iter().find(|t| !mine.contains(t))
    {
        return Err(Error::permission_denied(format!(
            "you may watch only your own teams; {other} is not one of them"
        )));
    }
    Ok(PresenceFilter {
        scope_teams,
        me,
        teams: (!query.team_ids.is_empty()).then(|| query.team_ids.iter().copied().collect()),
        statuses: (!query.statuses.is_empty()).then(|| query.statuses.iter().copied().collect()),
    })
}

/// Whether the principal may set the availability of `target`.
fn authorize_manage(principal: &Principal, target: &Presence) -> Result<()> {
    let shares_team = target
        .team_ids
        .iter()
        .any(|t| principal.team_ids.contains(t));
    if principal.permissions.contains(Permission::ManagePresence)
        || principal
            .permissions
            .contains(Permission::ManageTeamPresence)
            && shares_team
    {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "setting another user's availability requires presence.manage, or \
             presence.manage_team for members of your teams",
        ))
    }
}

fn not_active() -> Error {
    Error::failed_precondition(Reason::UserNotActive, "the user is not ACTIVE")
}
