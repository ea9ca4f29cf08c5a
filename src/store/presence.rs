//! Presence rows and the per-org sequence counter; events are appended to
//! the log of `presence_log.rs` under the same lock.
//!
//! Ordering: every writer first locks its org's counter row
//! ([`Repo::lock_presence`]), reads the rows it changes, then appends events
//! numbered after the counter and stores the new counter, all in one
//! transaction. The row lock serialises writers per org, so a later
//! sequence always commits later and a reader of "events after N" never
//! misses one that commits late. On SQLite the single writer gives the same.
//!
//! A presence row is derived from the user (state, roles, teams, capacity)
//! and kept in step with it in the same transaction as every change to them
//! ([`Repo::refresh_presence`]), so a snapshot is one query.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use super::{
    Repo, StoreError, corrupt,
    entities::{presence, presence_sequences, users},
    non_negative,
};
use crate::domain::{
    ChangeReason, OrgId, OrgSettings, Permission, Presence, PresenceEvent, PresenceStatus, TeamId,
    User, UserId, UserState, permissions_of, presence_time,
};

/// The PostgreSQL channel on which committed presence events are announced;
/// the payload is the org id and the announcing replica.
pub const PRESENCE_CHANNEL: &str = "roster_presence";

/// A presence row as the store holds it: the presence and its lease.
#[derive(Debug, Clone)]
pub struct PresenceRecord {
    pub presence: Presence,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// The sequence lock of one org, held until the transaction ends; every
/// presence change of the transaction goes through it.
pub struct SequenceGuard {
    org_id: OrgId,
    last: u64,
}

impl SequenceGuard {
    pub fn last(&self) -> u64 {
        self.last
    }
}

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Locks the org's sequence counter until the transaction ends.
    pub async fn lock_presence(&self, org_id: OrgId) -> Result<SequenceGuard, StoreError> {
        let bump = || {
            presence_sequences::Entity::update_many()
                .col_expr(
                    presence_sequences::Column::LastSequence,
                    Expr::col(presence_sequences::Column::LastSequence),
                )
                .filter(presence_sequences::Column::OrgId.eq(org_id.to_string()))
                .exec(self.conn())
        };
        if bump().await?.rows_affected == 0 {
            presence_sequences::Entity::insert(presence_sequences::ActiveModel {
                org_id: Set(org_id.to_string()),
                last_sequence: Set(0),
            })
            .on_conflict(
                OnConflict::column(presence_sequences::Column::OrgId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.conn())
            .await?;
            bump().await?;
        }
        let last = self.last_presence_sequence(org_id).await?;
        Ok(SequenceGuard { org_id, last })
    }

    pub(super) async fn last_presence_sequence(&self, org_id: OrgId) -> Result<u64, StoreError> {
        let row = presence_sequences::Entity::find_by_id(org_id.to_string())
            .one(self.conn())
            .await?;
        Ok(row.map_or(0, |r| r.last_sequence.max(0) as u64))
    }

    /// The presence of `user_ids` in the org (derived, OFFLINE, for users
    /// without a row yet); users of other orgs and unknown ids are absent.
    pub async fn presence_of(
        &self,
        org: &OrgSettings,
        user_ids: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Presence>, StoreError> {
        let now = presence_time(now);
        let mut found: Vec<Presence> = self
            .presence_rows(org.org_id, Some(user_ids))
            .await?
            .into_iter()
            .map(|r| r.presence)
            .collect();
        let missing: Vec<UserId> = user_ids
            .iter()
            .copied()
            .filter(|id| !found.iter().any(|p| p.user_id == *id))
            .collect();
        let derived = self.derive_presence(org, &missing, now).await?;
        found.extend(derived.into_iter().filter_map(|(_, p)| p));
        Ok(found)
    }

    /// The presence rows of `user_ids` in the org, creating (without an
    /// event) those of users who have none yet.
    pub async fn presence_for_update(
        &self,
        org: &OrgSettings,
        user_ids: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<PresenceRecord>, StoreError> {
        let now = presence_time(now);
        let mut found: HashMap<UserId, PresenceRecord> = self
            .presence_rows(org.org_id, Some(user_ids))
            .await?
            .into_iter()
            .map(|r| (r.presence.user_id, r))
            .collect();
        let mut missing: Vec<UserId> = user_ids
            .iter()
            .copied()
            .filter(|id| !found.contains_key(id))
            .collect();
        // One row per user: a multi-row upsert may not touch a row twice.
        missing.sort_unstable();
        missing.dedup();
        let derived: Vec<Presence> = self
            .derive_presence(org, &missing, now)
            .await?
            .into_iter()
            .filter_map(|(_, p)| p)
            .collect();
        self.write_presence_rows(org.org_id, derived.iter()).await?;
        for presence in derived {
            let user_id = presence.user_id;
            let record = PresenceRecord {
                presence,
                lease_expires_at: None,
            };
            found.insert(user_id, record);
        }
        Ok(user_ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Stores the presence of `changes` (before, after) and appends one
    /// event per change a watcher could see, numbered after `guard`.
    pub async fn record_presence(
        &self,
        guard: &mut SequenceGuard,
        reason: ChangeReason,
        now: DateTime<Utc>,
        changes: &[(Presence, Presence)],
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        self.record_presence_changes(
            guard,
            now,
            changes
                .iter()
                .map(|(before, after)| (reason, before, after)),
        )
        .await
    }

    /// As [`Repo::record_presence`], each change with its own reason: the
    /// events are numbered in the order of `changes`, and the statements
    /// are as few whatever their number (one for the rows, one for the
    /// events).
    pub async fn record_presence_changes<'p>(
        &self,
        guard: &mut SequenceGuard,
        now: DateTime<Utc>,
        changes: impl IntoIterator<Item = (ChangeReason, &'p Presence, &'p Presence)>,
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        let now = presence_time(now);
        let mut events = Vec::new();
        // A user changed twice in the batch is written once, as they end.
        let mut rows: Vec<&Presence> = Vec::new();
        let mut row_of: HashMap<UserId, usize> = HashMap::new();
        for (reason, before, after) in changes {
            if before == after {
                continue;
            }
            match row_of.get(&after.user_id) {
                Some(&i) => rows[i] = after,
                None => {
                    row_of.insert(after.user_id, rows.len());
                    rows.push(after);
                }
            }
            if before.watched || after.watched {
                guard.last += 1;
                let event = PresenceEvent {
                    sequence: guard.last,
                    reason,
                    occurred_at: now,
                    presence: after.clone(),
                    before: before.scope_facts(),
                    active_chats_before: before.active_chats,
                };
                events.push(event);
            }
        }
        self.write_presence_rows(guard.org_id, rows.into_iter())
            .await?;
        self.append_presence_events(guard.org_id, &events).await?;
        if !events.is_empty() {
            presence_sequences::Entity::update_many()
                .col_expr(
                    presence_sequences::Column::LastSequence,
                    Expr::value(guard.last as i64),
                )
                .filter(presence_sequences::Column::OrgId.eq(guard.org_id.to_string()))
                .exec(self.conn())
                .await?;
            // Announced at commit (see `WriteTx::commit`).
            self.appended(guard.org_id, &events);
        }
        Ok(events)
    }

    /// Sets the lease of a user's presence; no event (a lease is not
    /// something watchers see).
    pub async fn set_presence_lease(
        &self,
        user_id: UserId,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.set_presence_leases(&[user_id], expires_at).await
    }

    /// Sets one lease end for all of `user_ids`, in one statement.
    pub async fn set_presence_leases(
        &self,
        user_ids: &[UserId],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        if user_ids.is_empty() {
            return Ok(());
        }
        presence::Entity::update_many()
            .col_expr(presence::Column::LeaseExpiresAt, Expr::value(expires_at))
            .filter(presence::Column::UserId.is_in(user_ids.iter().map(|i| i.to_string())))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Derives the presence of `users` (all of the org's when `None`) from
    /// their state, roles, teams and capacity, and records what changed with
    /// `reason`. Users who no longer exist leave the watch (`UserDeleted`).
    pub async fn refresh_presence(
        &self,
        org: &OrgSettings,
        users: Option<&[UserId]>,
        reason: ChangeReason,
        now: DateTime<Utc>,
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        let now = presence_time(now);
        let mut guard = self.lock_presence(org.org_id).await?;
        let current: HashMap<UserId, Presence> = self
            .presence_rows(org.org_id, users)
            .await?
            .into_iter()
            .map(|r| (r.presence.user_id, r.presence))
            .collect();
        let ids: Vec<UserId> = match users {
            Some(ids) => ids.to_vec(),
            None => self.org_user_ids(org.org_id).await?,
        };
        let derived = self.derive_presence(org, &ids, now).await?;
        let mut changes = Vec::new();
        let mut gone_ids = Vec::new();
        for (user_id, after) in derived {
            match (current.get(&user_id), after) {
                (Some(before), Some(after)) => {
                    changes.push((before.clone(), keep_status(before, after, now)));
                }
                (Some(before), None) => {
                    let mut gone = before.clone();
                    gone.watched = false;
                    gone_ids.push(user_id);
                    changes.push((before.clone(), keep_status(before, gone, now)));
                }
                (None, Some(after)) => {
                    // A row-less user (created before presence existed):
                    // compare with an unwatched, offline presence.
                    let mut before = after.clone();
                    before.watched = false;
                    before.team_ids.clear();
                    changes.push((before, after));
                }
                (None, None) => {}
            }
        }
        let events = self
            .record_presence(&mut guard, reason, now, &changes)
            .await?;
        if !gone_ids.is_empty() {
            presence::Entity::delete_many()
                .filter(presence::Column::UserId.is_in(gone_ids.iter().map(|i| i.to_string())))
                .exec(self.conn())
                .await?;
        }
        Ok(events)
    }

    /// Starts the presence of users inserted in this transaction. Those
    /// that nobody watches yet (invited users) are only written: no event,
    /// so no sequence lock, which every presence writer of the org would
    /// wait for; no other transaction can see the users before the commit.
    /// Those that are watched get their event under the lock, as from
    /// [`Repo::refresh_presence`].
    pub async fn start_presence(
        &self,
        org: &OrgSettings,
        user_ids: &[UserId],
        reason: ChangeReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = presence_time(now);
        let (watched, unwatched): (Vec<Presence>, Vec<Presence>) = self
            .derive_presence(org, user_ids, now)
            .await?
            .into_iter()
            .filter_map(|(_, presence)| presence)
            .partition(|presence| presence.watched);
        self.write_presence_rows(org.org_id, unwatched.iter())
            .await?;
        if watched.is_empty() {
            return Ok(());
        }
        let mut guard = self.lock_presence(org.org_id).await?;
        let changes: Vec<(Presence, Presence)> = watched
            .into_iter()
            .map(|after| {
                let mut before = after.clone();
                before.watched = false;
                before.team_ids.clear();
                (before, after)
            })
            .collect();
        self.record_presence(&mut guard, reason, now, &changes)
            .await?;
        Ok(())
    }

    /// Takes a user out of the watch before they are deleted: OFFLINE,
    /// unwatched, with a `UserDeleted` event.
    pub async fn remove_presence(
        &self,
        org_id: OrgId,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        let now = presence_time(now);
        let mut guard = self.lock_presence(org_id).await?;
        let Some(before) = self.presence_rows(org_id, Some(&[user_id])).await?.pop() else {
            return Ok(Vec::new());
        };
        let mut gone = before.presence.clone();
        gone.watched = false;
        let after = keep_status(&before.presence, gone, now);
        self.record_presence(
            &mut guard,
            ChangeReason::UserDeleted,
            now,
            &[(before.presence, after)],
        )
        .await
    }

    /// The org's current presence rows (of `users` only, when given).
    pub async fn presence_rows(
        &self,
        org_id: OrgId,
        users: Option<&[UserId]>,
    ) -> Result<Vec<PresenceRecord>, StoreError> {
        let mut select = presence::Entity::find()
            .filter(presence::Column::OrgId.eq(org_id.to_string()))
            .order_by_asc(presence::Column::UserId);
        if let Some(ids) = users {
            select =
                select.filter(presence::Column::UserId.is_in(ids.iter().map(|i| i.to_string())));
        }
        select
            .all(self.conn())
            .await?
            .into_iter()
            .map(record_of_row)
            .collect()
    }

    /// A page of the org's watched presence rows with ids after `after`,
    /// in id order, whose status is one of `statuses` (any when empty).
    pub async fn watched_presence_page(
        &self,
        org_id: OrgId,
        statuses: &[PresenceStatus],
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<Presence>, StoreError> {
        let mut select = presence::Entity::find()
            .filter(presence::Column::OrgId.eq(org_id.to_string()))
            .filter(presence::Column::Watched.eq(true))
            .order_by_asc(presence::Column::UserId)
            .limit(limit);
        if !statuses.is_empty() {
            select =
                select.filter(presence::Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
        }
        if let Some(after) = after {
            select = select.filter(presence::Column::UserId.gt(after.to_string()));
        }
        select
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| record_of_row(row).map(|r| r.presence))
            .collect()
    }

    /// Orgs with a signed-in user whose lease ended before `now`.
    pub async fn orgs_with_expired_leases(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrgId>, StoreError> {
        presence::Entity::find()
            .select_only()
            .column(presence::Column::OrgId)
            .distinct()
            .filter(presence::Column::LeaseExpiresAt.lt(now))
            .filter(presence::Column::Status.ne(PresenceStatus::Offline.as_str()))
            .into_tuple::<String>()
            .all(self.conn())
            .await?
            .iter()
            .map(|id| OrgId::parse(id).map_err(corrupt))
            .collect()
    }

    /// The org's signed-in users, only those whose lease ended before
    /// `lease_ended_before` when given; call with the sequence locked, so a
    /// concurrent heartbeat either committed first (and the user is not
    /// listed) or waits.
    pub async fn signed_in_presence(
        &self,
        org_id: OrgId,
        lease_ended_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<Presence>, StoreError> {
        let mut select = presence::Entity::find()
            .filter(presence::Column::OrgId.eq(org_id.to_string()))
            .filter(presence::Column::Status.ne(PresenceStatus::Offline.as_str()));
        if let Some(now) = lease_ended_before {
            select = select.filter(presence::Column::LeaseExpiresAt.lt(now));
        }
        select
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| record_of_row(row).map(|r| r.presence))
            .collect()
    }

    async fn org_user_ids(&self, org_id: OrgId) -> Result<Vec<UserId>, StoreError> {
        users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .into_tuple::<String>()
            .all(self.conn())
            .await?
            .iter()
            .map(|id| UserId::parse(id).map_err(corrupt))
            .collect()
    }

    /// The presence each user's state, roles, teams and capacity imply, as
    /// an OFFLINE presence; `None` for users that do not exist.
    async fn derive_presence(
        &self,
        org: &OrgSettings,
        user_ids: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<(UserId, Option<Presence>)>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = users::Entity::find()
            .filter(users::Column::OrgId.eq(org.org_id.to_string()))
            .filter(users::Column::Id.is_in(user_ids.iter().map(|i| i.to_string())))
            .all(self.conn())
            .await?;
        let users: HashMap<UserId, User> = self
            .hydrate(org, rows)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut role_names: Vec<_> = users.values().flat_map(|u| u.roles.clone()).collect();
        role_names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        role_names.dedup();
        let custom = self.custom_roles(org.org_id, &role_names).await?;
        Ok(user_ids
            .iter()
            .map(|id| {
                let presence = users.get(id).map(|user| Presence {
                    user_id: user.id,
                    status: PresenceStatus::Offline,
                    status_changed_at: now,
                    active_chats: 0,
                    effective_max_chats: user.effective_max_chats,
                    max_chats_overridden: user.max_chats.is_some(),
                    team_ids: user.team_ids.clone(),
                    can_handle_chats: user.state == UserState::Active
                        && permissions_of(&user.roles, &custom).contains(Permission::HandleChats),
                    watched: user.state == UserState::Active,
                });
                (*id, presence)
            })
            .collect())
    }

    /// Writes presence rows, inserted or replaced whole: one statement per
    /// [`ROW_CHUNK`] rows, and per kind of row, since the lease (written
    /// only by `set_presence_lease`) is cleared by the OFFLINE ones and
    /// kept by the others. Each user at most once.
    async fn write_presence_rows<'p>(
        &self,
        org_id: OrgId,
        rows: impl Iterator<Item = &'p Presence>,
    ) -> Result<(), StoreError> {
        let (offline, online): (Vec<&Presence>, Vec<&Presence>) =
            rows.partition(|p| p.status == PresenceStatus::Offline);
        let kept = [
            presence::Column::Status,
            presence::Column::StatusChangedAt,
            presence::Column::ActiveChats,
            presence::Column::EffectiveMaxChats,
            presence::Column::MaxChatsOverridden,
            presence::Column::TeamIds,
            presence::Column::CanHandleChats,
            presence::Column::Watched,
        ];
        let cleared: Vec<_> = kept
            .into_iter()
            .chain([presence::Column::LeaseExpiresAt])
            .collect();
        for (rows, update) in [(online, kept.to_vec()), (offline, cleared)] {
            for chunk in rows.chunks(ROW_CHUNK) {
                presence::Entity::insert_many(chunk.iter().map(|p| presence_row(org_id, p)))
                    .on_conflict(
                        OnConflict::column(presence::Column::UserId)
                            .update_columns(update.iter().copied())
                            .to_owned(),
                    )
                    .exec_without_returning(self.conn())
                    .await?;
            }
        }
        Ok(())
    }
}

/// Rows per insert statement: SQLite allows 32,766 bound values, and a
/// row has 11 columns.
const ROW_CHUNK: usize = 1000;

fn presence_row(org_id: OrgId, p: &Presence) -> presence::ActiveModel {
    presence::ActiveModel {
        user_id: Set(p.user_id.to_string()),
        org_id: Set(org_id.to_string()),
        status: Set(p.status.as_str().to_owned()),
        status_changed_at: Set(p.status_changed_at),
        active_chats: Set(p.active_chats as i32),
        lease_expires_at: Set(None),
        effective_max_chats: Set(p.effective_max_chats as i32),
        max_chats_overridden: Set(p.max_chats_overridden),
        team_ids: Set(join_teams(&p.team_ids)),
        can_handle_chats: Set(p.can_handle_chats),
        watched: Set(p.watched),
    }
}

/// `after` with the status-related fields carried over from `before`; a
/// user who leaves the watch goes OFFLINE with no chats.
fn keep_status(before: &Presence, mut after: Presence, now: DateTime<Utc>) -> Presence {
    after.status = before.status;
    after.status_changed_at = before.status_changed_at;
    after.active_chats = before.active_chats;
    if !after.watched && after.status != PresenceStatus::Offline {
        after.status = PresenceStatus::Offline;
        after.status_changed_at = now;
    }
    if !after.watched {
        after.active_chats = 0;
    }
    after
}

pub(super) fn join_teams(teams: &[TeamId]) -> String {
    teams
        .iter()
        .map(TeamId::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn split_teams(text: &str) -> Result<Vec<TeamId>, StoreError> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| TeamId::parse(t).map_err(corrupt))
        .collect()
}

/// The presence held in a row of `presence` or `presence_events`, whose
/// routing columns have the same names.
macro_rules! presence_in {
    ($row:expr) => {
        Presence {
            user_id: UserId::parse(&$row.user_id).map_err(corrupt)?,
            status: $row.status.parse().map_err(corrupt)?,
            status_changed_at: $row.status_changed_at,
            active_chats: non_negative($row.active_chats),
            effective_max_chats: non_negative($row.effective_max_chats),
            max_chats_overridden: $row.max_chats_overridden,
            team_ids: split_teams(&$row.team_ids)?,
            can_handle_chats: $row.can_handle_chats,
            watched: $row.watched,
        }
    };
}
pub(super) use presence_in;

fn record_of_row(row: presence::Model) -> Result<PresenceRecord, StoreError> {
    let presence = presence_in!(row);
    Ok(PresenceRecord {
        presence,
        lease_expires_at: row.lease_expires_at,
    })
}
