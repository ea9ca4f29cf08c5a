//! Activity reports from the presence history (the event log, kept for the
//! presence retention): per user and bucket, time in each status and peak
//! open chats.
//!
//! Access: one's own activity; with `reports.read_team` that of the users
//! who share a team with the caller; with `reports.read` the whole org.
//! Naming a user or team outside that scope is PERMISSION_DENIED, never a
//! silently shorter report.

use std::{collections::HashMap, ops::Bound};

use chrono::{DateTime, Utc};

use super::Presences;
use crate::{
    auth::{Principal, report_read_scope},
    domain::{
        ActivityRange, ActivityRow, OrgSettings, PresenceEvent, PresenceStatus, TeamId, Timeline,
        UserId, UserScope, activity,
    },
    error::{Error, ParseError, Reason, Result},
};

/// Users whose history is read per round of queries.
const SUBJECTS_PER_READ: u64 = 100;

/// What a report covers; both lists empty means everyone in scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActivityQuery {
    pub user_ids: Vec<UserId>,
    pub team_ids: Vec<TeamId>,
    pub range: ActivityRange,
}

/// Where a page of rows ends: rows are ordered by user, then bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityPageKey {
    pub user_id: UserId,
    pub bucket_start: DateTime<Utc>,
}

impl ActivityRow {
    fn key(&self) -> ActivityPageKey {
        ActivityPageKey {
            user_id: self.user_id,
            bucket_start: self.bucket_start,
        }
    }
}

impl ActivityPageKey {
    fn is_before(&self, row: &ActivityRow) -> bool {
        (self.user_id, self.bucket_start) < (row.user_id, row.bucket_start)
    }
}

impl Presences {
    /// Up to `page_size` rows after `after`, and the key to continue from
    /// when there are more.
    pub async fn activity(
        &self,
        principal: &Principal,
        query: &ActivityQuery,
        after: Option<ActivityPageKey>,
        page_size: usize,
    ) -> Result<(Vec<ActivityRow>, Option<ActivityPageKey>)> {
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        // Who first: a caller out of scope learns nothing of the history.
        let scope = report_read_scope(principal);
        self.check_named(&org, &scope, query).await?;
        let now = Utc::now();
        let retained_from = chrono::Duration::from_std(self.retention)
            .map(|r| now - r)
            .map_err(Error::internal)?;
        if query.range.start() < retained_from {
            return Err(Error::invalid(
                ParseError::new(
                    Reason::BeyondRetention,
                    format!(
                        "presence history is kept for {} s: start at {} or later",
                        self.retention.as_secs(),
                        retained_from.to_rfc3339()
                    ),
                )
                .at("start_time"),
            ));
        }
        let mut page = Vec::with_capacity(page_size.min(1024));
        // The user a page ended with may have more rows.
        let mut from = after.map_or(Bound::Unbounded, |a| Bound::Included(a.user_id));
        loop {
            let subjects = read
                .report_subjects(
                    org.org_id,
                    &scope,
                    &query.user_ids,
                    &query.team_ids,
                    from,
                    SUBJECTS_PER_READ,
                )
                .await?;
            let exhausted = (subjects.len() as u64) < SUBJECTS_PER_READ;
            for timeline in self.timelines(&org, &query.range, &subjects, now).await? {
                for row in activity(&query.range, now, &timeline) {
                    if after.is_some_and(|a| !a.is_before(&row)) {
                        continue;
                    }
                    if page.len() == page_size {
                        let next = page.last().map(ActivityRow::key);
                        return Ok((page, next));
                    }
                    page.push(row);
                }
            }
            match subjects.last() {
                Some((last, _)) if !exhausted => {
                    from = Bound::Excluded(*last);
                }
                _ => return Ok((page, None)),
            }
        }
    }

    /// Named users must exist and be in scope; named teams must exist and,
    /// for a team-scoped caller, be the caller's.
    async fn check_named(
        &self,
        org: &OrgSettings,
        scope: &UserScope,
        query: &ActivityQuery,
    ) -> Result<()> {
        let read = self.store.read();
        for id in &query.user_ids {
            let user = read
                .user(org, *id)
                .await?
                .ok_or_else(Error::user_not_found)?;
            if !scope.covers(user.id, &user.team_ids) {
                return Err(Error::permission_denied(format!(
                    "you may not read the activity of user {id}"
                )));
            }
        }
        for team in &query.team_ids {
            read.team(org.org_id, *team)
                .await?
                .ok_or_else(Error::team_not_found)?;
            let allowed = match scope {
                UserScope::Org => true,
                UserScope::Teams { teams, .. } => teams.contains(team),
                UserScope::Me(_) => false,
            };
            if !allowed {
                return Err(Error::permission_denied(format!(
                    "you may not read the activity of team {team}"
                )));
            }
        }
        Ok(())
    }

    /// Each subject's history over the range, as far as it has happened.
    async fn timelines(
        &self,
        org: &OrgSettings,
        range: &ActivityRange,
        subjects: &[(UserId, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Timeline>> {
        let read = self.store.read();
        let ids: Vec<UserId> = subjects.iter().map(|(id, _)| *id).collect();
        let until = range.end().min(now);
        let mut history: HashMap<UserId, Vec<PresenceEvent>> = HashMap::new();
        if range.start() < until {
            for event in read
                .presence_history(org.org_id, &ids, range.start(), until)
                .await?
            {
                history
                    .entry(event.presence.user_id)
                    .or_default()
                    .push(event);
            }
        }
        // A user with no change in the range was all along in the state that
        // their next change left, or, with none since, the one they are in.
        let quiet: Vec<UserId> = ids
            .iter()
            .copied()
            .filter(|id| !history.contains_key(id))
            .collect();
        let mut states: HashMap<UserId, (PresenceStatus, u32)> = read
            .first_presence_events_from(org.org_id, &quiet, until)
            .await?
            .into_iter()
            .map(|e| (e.presence.user_id, (e.before.status, e.active_chats_before)))
            .collect();
        let unchanged_since: Vec<UserId> = quiet
            .into_iter()
            .filter(|id| !states.contains_key(id))
            .collect();
        if !unchanged_since.is_empty() {
            for p in read.presence_of(org, &unchanged_since, now).await? {
                states.insert(p.user_id, (p.status, p.active_chats));
            }
        }
        Ok(subjects
            .iter()
            .filter_map(|&(user_id, created_at)| {
                let (initial, changes) = match history.remove(&user_id) {
                    Some(events) => {
                        let first = events.first()?;
                        let initial = (first.before.status, first.active_chats_before);
                        let changes = events
                            .iter()
                            .map(|e| (e.occurred_at, e.presence.status, e.presence.active_chats))
                            .collect();
                        (initial, changes)
                    }
                    None => (*states.get(&user_id)?, Vec::new()),
                };
                Some(Timeline {
                    user_id,
                    created_at,
                    initial,
                    changes,
                })
            })
            .collect())
    }
}
