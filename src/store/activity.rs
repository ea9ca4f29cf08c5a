//! Reads for activity reports: which users a report covers, and their
//! presence history from the event log.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{
    Repo, StoreError, corrupt,
    entities::{presence_events, users},
    presence_log::event_of_row,
    user_search::{members_of, scope_condition},
};
use crate::domain::{OrgId, PresenceEvent, TeamId, UserId, UserScope};

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Up to `limit` users of the org within `scope`, from `from` on in id
    /// order, with when each was created; only those named in `ids` or
    /// members of `teams` when either is given.
    pub async fn report_subjects(
        &self,
        org_id: OrgId,
        scope: &UserScope,
        ids: &[UserId],
        teams: &[TeamId],
        from: Bound<UserId>,
        limit: u64,
    ) -> Result<Vec<(UserId, DateTime<Utc>)>, StoreError> {
        let mut select = users::Entity::find()
            .select_only()
            .columns([users::Column::Id, users::Column::CreatedAt])
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .filter(scope_condition(scope))
            .order_by_asc(users::Column::Id)
            .limit(limit);
        if !ids.is_empty() || !teams.is_empty() {
            let mut named = Condition::any();
            if !ids.is_empty() {
                named = named.add(users::Column::Id.is_in(ids.iter().map(ToString::to_string)));
            }
            if !teams.is_empty() {
                named = named.add(users::Column::Id.in_subquery(members_of(teams)));
            }
            select = select.filter(named);
        }
        match from {
            Bound::Included(id) => select = select.filter(users::Column::Id.gte(id.to_string())),
            Bound::Excluded(id) => select = select.filter(users::Column::Id.gt(id.to_string())),
            Bound::Unbounded => {}
        }
        select
            .into_tuple::<(String, DateTime<Utc>)>()
            .all(self.conn())
            .await?
            .into_iter()
            .map(|(id, created_at)| Ok((UserId::parse(&id).map_err(corrupt)?, created_at)))
            .collect()
    }

    /// The events of `users` that occurred in `[from, to)`, in sequence order.
    pub async fn presence_history(
        &self,
        org_id: OrgId,
        users: &[UserId],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        presence_events::Entity::find()
            .filter(presence_events::Column::OrgId.eq(org_id.to_string()))
            .filter(presence_events::Column::UserId.is_in(users.iter().map(ToString::to_string)))
            .filter(presence_events::Column::OccurredAt.gte(from))
            .filter(presence_events::Column::OccurredAt.lt(to))
            .order_by_asc(presence_events::Column::Sequence)
            .all(self.conn())
            .await?
            .into_iter()
            .map(event_of_row)
            .collect()
    }

    /// Each of `users`' first event at or after `at`, for those that have one.
    pub async fn first_presence_events_from(
        &self,
        org_id: OrgId,
        users: &[UserId],
        at: DateTime<Utc>,
    ) -> Result<Vec<PresenceEvent>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let firsts: Vec<Option<i64>> = presence_events::Entity::find()
            .select_only()
            .column_as(presence_events::Column::Sequence.min(), "first")
            .filter(presence_events::Column::OrgId.eq(org_id.to_string()))
            .filter(presence_events::Column::UserId.is_in(users.iter().map(ToString::to_string)))
            .filter(presence_events::Column::OccurredAt.gte(at))
            .group_by(presence_events::Column::UserId)
            .into_tuple()
            .all(self.conn())
            .await?;
        let firsts: Vec<i64> = firsts.into_iter().flatten().collect();
        if firsts.is_empty() {
            return Ok(Vec::new());
        }
        presence_events::Entity::find()
            .filter(presence_events::Column::OrgId.eq(org_id.to_string()))
            .filter(presence_events::Column::Sequence.is_in(firsts))
            .all(self.conn())
            .await?
            .into_iter()
            .map(event_of_row)
            .collect()
    }
}
