//! Orgs' settings, teams and roles on the wire.

use super::{duration, login_with, timestamp};
use crate::{
    api::pb,
    domain::Team,
    org::{RoleView, SettingsView},
};

impl From<&SettingsView> for pb::OrgSettings {
    fn from(view: &SettingsView) -> Self {
        let s = &view.settings;
        pb::OrgSettings {
            org_id: s.org_id.to_string(),
            slug: s.slug.as_str().to_owned(),
            display_name: s.name.clone(),
            seat_limit: s.seat_limit.unwrap_or(0),
            seats_used: u32::try_from(view.seats_used).unwrap_or(u32::MAX),
            default_max_chats: s.default_max_chats,
            password_min_length: s.password_min_length,
            lockout_threshold: s.lockout_threshold,
            lockout_duration: Some(duration(s.lockout_duration)),
            login_with: login_with(s.login_with).into(),
            invite_lifetime: Some(duration(s.invite_lifetime)),
            session_lifetime: Some(duration(s.session_lifetime)),
            presence_lease: Some(duration(s.presence_lease)),
            etag: s.version.to_string(),
        }
    }
}

impl From<&Team> for pb::Team {
    fn from(team: &Team) -> Self {
        pb::Team {
            team_id: team.id.to_string(),
            name: team.name.as_str().to_owned(),
            description: team.description.as_str().to_owned(),
            etag: team.version.to_string(),
            created_at: Some(timestamp(team.created_at)),
        }
    }
}

impl From<&RoleView> for pb::Role {
    fn from(role: &RoleView) -> Self {
        pb::Role {
            name: role.name.as_str().to_owned(),
            description: role.description.clone(),
            permissions: role
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            built_in: role.built_in,
            etag: role.version.to_string(),
        }
    }
}
