//! Tenants and the platform audit log on the wire.

use super::timestamp;
use crate::{
    api::pb,
    domain::{OrgState, PlatformAuditEntry},
    org::SettingsView,
};

impl From<&SettingsView> for pb::Org {
    fn from(view: &SettingsView) -> Self {
        let s = &view.settings;
        pb::Org {
            org_id: s.org_id.to_string(),
            slug: s.slug.as_str().to_owned(),
            display_name: s.name.clone(),
            state: match s.state {
                OrgState::Active => pb::OrgState::Active,
                OrgState::Suspended => pb::OrgState::Suspended,
            }
            .into(),
            seat_limit: s.seat_limit.unwrap_or(0),
            seats_used: u32::try_from(view.seats_used).unwrap_or(u32::MAX),
            created_at: Some(timestamp(s.created_at)),
            suspended_at: s.suspended_at.map(timestamp),
            suspend_reason: s.suspend_reason.as_str().to_owned(),
            etag: s.version.to_string(),
        }
    }
}

impl From<&PlatformAuditEntry> for pb::PlatformAuditEvent {
    fn from(entry: &PlatformAuditEntry) -> Self {
        pb::PlatformAuditEvent {
            event_id: entry.id.clone(),
            time: Some(timestamp(entry.occurred_at)),
            actor_kind: match entry.actor_kind.as_str() {
                "platform_key" => pb::PlatformActorKind::PlatformKey,
                "operator" => pb::PlatformActorKind::Operator,
                _ => pb::PlatformActorKind::Unspecified,
            }
            .into(),
            actor_id: entry.actor_id.clone().unwrap_or_default(),
            action: entry.action.clone(),
            org_id: entry.org_id.clone().unwrap_or_default(),
            org_slug: entry.org_slug.clone().unwrap_or_default(),
            request_id: entry.request_id.clone().unwrap_or_default(),
            details_json: entry.details.clone(),
            peer_address: entry.peer.clone().unwrap_or_default(),
        }
    }
}
