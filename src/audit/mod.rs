//! The audit log's vocabulary: who did what, to whom, from which request.
//! Use cases write an entry in the same transaction as the change it records;
//! nothing edits or deletes an entry.

mod log;
mod platform;

pub use log::{AuditLog, AuditPage};
pub use platform::{PlatformAction, PlatformActor, platform_entry};

use chrono::Utc;
use serde_json::Value;

use crate::{
    auth::{Actor, Principal},
    domain::{ApiKeyId, OrgId, UserId},
    named::named_enum,
    store::AuditRecord,
};

/// Where a request came from, as far as the audit log cares.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The caller's `x-request-id`, else one the server made (see
    /// `api::middleware::RequestId`); `None` for the console and the system.
    pub request_id: Option<String>,
    pub peer: Option<String>,
}

/// Who acted.
#[derive(Debug, Clone, Copy)]
pub enum AuditActor {
    User(UserId),
    ApiKey(ApiKeyId),
    /// A failed sign-in by nobody we could identify.
    Anonymous,
    /// Roster itself (bootstrap, expiry), or an operator at its console.
    System,
}

impl From<&Principal> for AuditActor {
    fn from(principal: &Principal) -> Self {
        match principal.actor {
            Actor::User { user_id, .. } => AuditActor::User(user_id),
            Actor::ApiKey { key_id } => AuditActor::ApiKey(key_id),
            Actor::Operator => AuditActor::System,
        }
    }
}

named_enum! {
    /// What was done. The string forms are stable: dashboards filter on them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Action {
        OrgBootstrap => "org.bootstrap",
        UserCreate => "user.create",
        UserInvite => "user.invite",
        InviteResend => "invite.resend",
        InviteRevoke => "invite.revoke",
        InviteAccept => "invite.accept",
        UserUpdate => "user.update",
        UserSuspend => "user.suspend",
        UserReactivate => "user.reactivate",
        UserUnlock => "user.unlock",
        /// Failed sign-ins reached the org's threshold; the actor is the system.
        UserLock => "user.lock",
        UserPasswordReset => "user.password_reset",
        UserForcePasswordChange => "user.force_password_change",
        UserDelete => "user.delete",
        AvatarSet => "user.avatar_set",
        Login => "auth.login",
        LoginFailed => "auth.login_failed",
        Logout => "auth.logout",
        PasswordChange => "auth.password_change",
        OrgSettingsUpdate => "org.settings_update",
        TeamCreate => "team.create",
        TeamUpdate => "team.update",
        TeamDelete => "team.delete",
        RoleCreate => "role.create",
        RoleUpdate => "role.update",
        RoleDelete => "role.delete",
        ApiKeyCreate => "api_key.create",
        ApiKeyRevoke => "api_key.revoke",
        /// A supervisor, admin or service set another user's availability.
        PresenceSet => "presence.set",
        /// A CSV import of users began; each user it creates has its own
        /// `user.invite` entry naming the job.
        ImportStart => "import.start",
        /// The platform created the org (PlatformService.CreateOrg).
        OrgCreate => "org.create",
        /// The platform suspended or reactivated the org.
        OrgSuspend => "org.suspend",
        OrgReactivate => "org.reactivate",
    }
}

pub fn entry(
    org_id: OrgId,
    actor: AuditActor,
    action: Action,
    target_user_id: Option<UserId>,
    origin: &Origin,
    details: Value,
) -> AuditRecord {
    let (actor_kind, actor_id) = match actor {
        AuditActor::User(id) => ("user", Some(id.to_string())),
        AuditActor::ApiKey(id) => ("api_key", Some(id.to_string())),
        AuditActor::Anonymous => ("anonymous", None),
        AuditActor::System => ("system", None),
    };
    AuditRecord {
        org_id,
        occurred_at: Utc::now(),
        actor_kind,
        actor_id,
        action: action.as_str(),
        target_user_id,
        target_resource: None,
        request_id: origin.request_id.clone(),
        peer: origin.peer.clone(),
        details: details.to_string(),
    }
}

/// An entry about a resource other than a user (e.g. `teams/<id>`).
pub fn resource_entry(
    org_id: OrgId,
    actor: AuditActor,
    action: Action,
    resource: String,
    origin: &Origin,
    details: Value,
) -> AuditRecord {
    AuditRecord {
        target_resource: Some(resource),
        ..entry(org_id, actor, action, None, origin, details)
    }
}
