//! Presence: whether a user can take a chat right now, and the events that
//! change it. A [`Presence`] is the whole routing view of one user, so an
//! event that carries one is enough to replay the change anywhere.

use std::{collections::HashSet, str::FromStr};

use chrono::{DateTime, SubsecRound, Utc};

use super::{TeamId, UserId};
use crate::{
    error::{ParseError, Reason},
    named::named_enum,
};

/// `t` as the database keeps it (whole microseconds), so a presence read
/// back equals the one returned when it was written.
pub fn presence_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum PresenceStatus {
        Offline => "offline",
        Unavailable => "unavailable",
        Available => "available",
    }
}

impl FromStr for PresenceStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        PresenceStatus::from_name(s).ok_or_else(|| {
            ParseError::new(
                Reason::InvalidStatus,
                format!("unknown presence status {s:?}"),
            )
        })
    }
}

named_enum! {
    /// Why a presence changed; the lifecycle reasons are the changes that matter
    /// to routing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ChangeReason {
        SignedIn => "signed_in",
        SignedOut => "signed_out",
        LeaseExpired => "lease_expired",
        AvailabilitySet => "availability_set",
        ChatLoadReported => "chat_load_reported",
        UserActivated => "user_activated",
        UserSuspended => "user_suspended",
        UserReactivated => "user_reactivated",
        UserDeleted => "user_deleted",
        RolesChanged => "roles_changed",
        TeamsChanged => "teams_changed",
        MaxChatsChanged => "max_chats_changed",
        OrgSuspended => "org_suspended",
    }
}

impl FromStr for ChangeReason {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        ChangeReason::from_name(s).ok_or_else(|| {
            ParseError::new(Reason::InvalidArgument, format!("unknown reason {s:?}"))
        })
    }
}

/// One user's presence and routing attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub user_id: UserId,
    pub status: PresenceStatus,
    pub status_changed_at: DateTime<Utc>,
    pub active_chats: u32,
    pub effective_max_chats: u32,
    /// Whether `effective_max_chats` is the user's own rather than the org's default.
    pub max_chats_overridden: bool,
    pub team_ids: Vec<TeamId>,
    pub can_handle_chats: bool,
    /// Whether the user is ACTIVE, the only users that lists and watchers cover.
    pub watched: bool,
}

impl Presence {
    /// Whether a router may send this user a new chat now.
    pub fn has_capacity(&self) -> bool {
        self.status == PresenceStatus::Available
            && self.can_handle_chats
            && self.active_chats < self.effective_max_chats
    }

    /// The part of a presence that decides whether a watcher's filter matches.
    pub fn scope_facts(&self) -> ScopeFacts {
        self.scope().facts()
    }

    /// [`Presence::scope_facts`] borrowed: filters run once per watcher per
    /// event, so they must not copy team lists.
    pub fn scope(&self) -> ScopeRef<'_> {
        ScopeRef {
            status: self.status,
            team_ids: &self.team_ids,
            watched: self.watched,
        }
    }
}

/// What a watch filter looks at; events carry it for before and after the
/// change, since a change is sent to a watcher that matches either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeFacts {
    pub status: PresenceStatus,
    pub team_ids: Vec<TeamId>,
    pub watched: bool,
}

impl ScopeFacts {
    pub fn scope(&self) -> ScopeRef<'_> {
        ScopeRef {
            status: self.status,
            team_ids: &self.team_ids,
            watched: self.watched,
        }
    }
}

/// [`ScopeFacts`] borrowed from a presence or an event.
#[derive(Debug, Clone, Copy)]
pub struct ScopeRef<'a> {
    pub status: PresenceStatus,
    pub team_ids: &'a [TeamId],
    pub watched: bool,
}

impl ScopeRef<'_> {
    fn facts(self) -> ScopeFacts {
        ScopeFacts {
            status: self.status,
            team_ids: self.team_ids.to_vec(),
            watched: self.watched,
        }
    }
}

/// One committed change, with its place in the org's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    pub sequence: u64,
    pub reason: ChangeReason,
    pub occurred_at: DateTime<Utc>,
    /// The state after the change.
    pub presence: Presence,
    pub before: ScopeFacts,
    /// Chats open before the change: with `before.status`, the state an
    /// activity report starts from.
    pub active_chats_before: u32,
}

/// Which users a reader sees: the caller's scope narrowed by the request's
/// team and status filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceFilter {
    /// `None`: the whole org.
    pub scope_teams: Option<HashSet<TeamId>>,
    /// Always visible whatever the team scope (the caller), if any.
    pub me: Option<UserId>,
    /// `None`: no narrowing by team.
    pub teams: Option<HashSet<TeamId>>,
    /// `None`: any status.
    pub statuses: Option<HashSet<PresenceStatus>>,
}

impl PresenceFilter {
    pub fn matches(&self, user_id: UserId, facts: ScopeRef<'_>) -> bool {
        let in_teams =
            |teams: &HashSet<TeamId>| facts.team_ids.iter().any(|team| teams.contains(team));
        facts.watched
            && (self.me == Some(user_id) || self.scope_teams.as_ref().is_none_or(in_teams))
            && self.teams.as_ref().is_none_or(in_teams)
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&facts.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: PresenceStatus, teams: &[TeamId], watched: bool) -> ScopeFacts {
        ScopeFacts {
            status,
            team_ids: teams.to_vec(),
            watched,
        }
    }

    #[test]
    fn reasons_round_trip() {
        for reason in ChangeReason::ALL {
            assert_eq!(reason.as_str().parse::<ChangeReason>().unwrap(), *reason);
        }
    }

    #[test]
    fn filters_narrow_by_scope_team_and_status() {
        let (a, b) = (TeamId::generate(), TeamId::generate());
        let (me, other) = (UserId::generate(), UserId::generate());
        let supervisor = PresenceFilter {
            scope_teams: Some(HashSet::from([a])),
            me: Some(me),
            teams: None,
            statuses: None,
        };
        let online = PresenceStatus::Available;
        assert!(supervisor.matches(other, facts(online, &[a, b], true).scope()));
        assert!(!supervisor.matches(other, facts(online, &[b], true).scope()));
        assert!(supervisor.matches(me, facts(online, &[], true).scope()));
        assert!(!supervisor.matches(other, facts(online, &[a], false).scope()));
        let available_in_b = PresenceFilter {
            scope_teams: None,
            me: None,
            teams: Some(HashSet::from([b])),
            statuses: Some(HashSet::from([online])),
        };
        assert!(available_in_b.matches(other, facts(online, &[b], true).scope()));
        assert!(!available_in_b.matches(other, facts(PresenceStatus::Offline, &[b], true).scope()));
        assert!(!available_in_b.matches(other, facts(online, &[a], true).scope()));
    }

    #[test]
    fn capacity_needs_availability_permission_and_room() {
        let mut p = Presence {
            user_id: UserId::generate(),
            status: PresenceStatus::Available,
            status_changed_at: Utc::now(),
            active_chats: 1,
            effective_max_chats: 2,
            max_chats_overridden: false,
            team_ids: vec![],
            can_handle_chats: true,
            watched: true,
        };
        assert!(p.has_capacity());
        p.active_chats = 2;
        assert!(!p.has_capacity());
        p.active_chats = 0;
        p.can_handle_chats = false;
        assert!(!p.has_capacity());
    }
}
