//! The org's audit log on the wire.

use super::timestamp;
use crate::{api::pb, domain::AuditEntry};

impl From<&AuditEntry> for pb::AuditEvent {
    fn from(event: &AuditEntry) -> Self {
        pb::AuditEvent {
            event_id: event.id.clone(),
            time: Some(timestamp(event.occurred_at)),
            actor_kind: actor_kind_to_pb(&event.actor_kind).into(),
            actor_id: event.actor_id.clone().unwrap_or_default(),
            action: event.action.clone(),
            target_user_id: event.target_user_id.clone().unwrap_or_default(),
            target_resource: event.target_resource.clone().unwrap_or_default(),
            request_id: event.request_id.clone().unwrap_or_default(),
            details_json: event.details.clone(),
            peer_address: event.peer.clone().unwrap_or_default(),
        }
    }
}

fn actor_kind_to_pb(kind: &str) -> pb::AuditActorKind {
    match kind {
        "user" => pb::AuditActorKind::User,
        "api_key" => pb::AuditActorKind::ApiKey,
        "system" => pb::AuditActorKind::System,
        "anonymous" => pb::AuditActorKind::Anonymous,
        _ => pb::AuditActorKind::Unspecified,
    }
}
