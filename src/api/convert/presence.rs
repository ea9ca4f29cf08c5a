//! Presence on the wire: `From` the domain's presence, statuses and
//! change reasons out; statuses parsed in.

use super::timestamp;
use crate::{
    api::pb,
    domain::{ChangeReason, Presence, PresenceStatus, TeamId},
    error::{ParseError, Reason, Result},
};

pub fn parse_status(raw: i32) -> Result<PresenceStatus, ParseError> {
    match pb::PresenceStatus::try_from(raw) {
        Ok(pb::PresenceStatus::Offline) => Ok(PresenceStatus::Offline),
        Ok(pb::PresenceStatus::Unavailable) => Ok(PresenceStatus::Unavailable),
        Ok(pb::PresenceStatus::Available) => Ok(PresenceStatus::Available),
        _ => Err(ParseError::new(
            Reason::InvalidStatus,
            format!("{raw} is not a presence status"),
        )),
    }
}

pub fn presence_status(status: PresenceStatus) -> pb::PresenceStatus {
    match status {
        PresenceStatus::Offline => pb::PresenceStatus::Offline,
        PresenceStatus::Unavailable => pb::PresenceStatus::Unavailable,
        PresenceStatus::Available => pb::PresenceStatus::Available,
    }
}

impl From<ChangeReason> for pb::PresenceChangeReason {
    fn from(reason: ChangeReason) -> Self {
        use pb::PresenceChangeReason as R;
        match reason {
            ChangeReason::SignedIn => R::SignedIn,
            ChangeReason::SignedOut => R::SignedOut,
            ChangeReason::LeaseExpired => R::LeaseExpired,
            ChangeReason::AvailabilitySet => R::AvailabilitySet,
            ChangeReason::ChatLoadReported => R::ChatLoadReported,
            ChangeReason::UserActivated => R::UserActivated,
            ChangeReason::UserSuspended => R::UserSuspended,
            ChangeReason::UserReactivated => R::UserReactivated,
            ChangeReason::UserDeleted => R::UserDeleted,
            ChangeReason::RolesChanged => R::RolesChanged,
            ChangeReason::TeamsChanged => R::TeamsChanged,
            ChangeReason::MaxChatsChanged => R::MaxChatsChanged,
            ChangeReason::OrgSuspended => R::OrgSuspended,
        }
    }
}

impl From<&Presence> for pb::Presence {
    fn from(p: &Presence) -> Self {
        pb::Presence {
            user_id: p.user_id.to_string(),
            status: presence_status(p.status).into(),
            status_changed_at: Some(timestamp(p.status_changed_at)),
            active_chats: p.active_chats,
            effective_max_chats: p.effective_max_chats,
            team_ids: p.team_ids.iter().map(TeamId::to_string).collect(),
            can_handle_chats: p.can_handle_chats,
            max_chats_source: if p.max_chats_overridden {
                pb::MaxChatsSource::User
            } else {
                pb::MaxChatsSource::OrgDefault
            }
            .into(),
            has_capacity: p.has_capacity(),
        }
    }
}
