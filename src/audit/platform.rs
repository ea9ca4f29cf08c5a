//! The platform audit log's vocabulary: changes to orgs as resources and to
//! platform keys, by platform keys or by an operator at the server's
//! console. Written in the same transaction as the change; it outlives the
//! orgs it names.

use chrono::Utc;
use serde_json::Value;

use super::Origin;
use crate::{
    auth::PlatformCaller,
    domain::{OrgSettings, PlatformAuditEntry, PlatformKeyId},
    named::named_enum,
};

/// Who acted on the platform.
#[derive(Debug, Clone, Copy)]
pub enum PlatformActor {
    Key(PlatformKeyId),
    /// `rosterd platform-keys …` or the start-up bootstrap.
    Operator,
}

impl From<&PlatformCaller> for PlatformActor {
    fn from(caller: &PlatformCaller) -> Self {
        PlatformActor::Key(caller.key_id)
    }
}

named_enum! {
    /// What was done. The string forms are stable: dashboards filter on them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PlatformAction {
        OrgCreate => "org.create",
        OrgUpdate => "org.update",
        OrgSuspend => "org.suspend",
        OrgReactivate => "org.reactivate",
        OrgDelete => "org.delete",
        PlatformKeyCreate => "platform_key.create",
        PlatformKeyRevoke => "platform_key.revoke",
    }
}

/// An entry of the platform log, about `org` when the change is one.
pub fn platform_entry(
    actor: PlatformActor,
    action: PlatformAction,
    org: Option<&OrgSettings>,
    origin: &Origin,
    details: Value,
) -> PlatformAuditEntry {
    let (actor_kind, actor_id) = match actor {
        PlatformActor::Key(id) => ("platform_key", Some(id.to_string())),
        PlatformActor::Operator => ("operator", None),
    };
    PlatformAuditEntry {
        id: String::new(),
        occurred_at: Utc::now(),
        actor_kind: actor_kind.to_owned(),
        actor_id,
        action: action.as_str().to_owned(),
        org_id: org.map(|o| o.org_id.to_string()),
        org_slug: org.map(|o| o.slug.as_str().to_owned()),
        request_id: origin.request_id.clone(),
        peer: origin.peer.clone(),
        details: details.to_string(),
    }
}
