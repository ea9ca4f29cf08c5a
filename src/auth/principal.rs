use chrono::{DateTime, Utc};

use crate::domain::{ApiKeyId, OrgId, PermissionSet, PlatformKeyId, SessionId, TeamId, UserId};

/// Who is making a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    /// A person, through a session.
    User {
        user_id: UserId,
        session_id: SessionId,
        expires_at: DateTime<Utc>,
    },
    /// A backend service, through an API key; its permissions are the key's scopes.
    ApiKey { key_id: ApiKeyId },
    /// An operator at the server's console (`rosterd admin …`), inside one
    /// org; audited as the system. Never the caller of an RPC.
    Operator,
}

/// An authenticated caller, resolved afresh on every request, so a role change
/// takes effect on the user's next request without a new login.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub org_id: OrgId,
    pub actor: Actor,
    pub permissions: PermissionSet,
    pub team_ids: Vec<TeamId>,
    pub password_change_required: bool,
}

impl Principal {
    pub fn user_id(&self) -> Option<UserId> {
        match &self.actor {
            Actor::User { user_id, .. } => Some(*user_id),
            Actor::ApiKey { .. } | Actor::Operator => None,
        }
    }
}

/// A platform operator's service, authenticated by a platform API key: it
/// belongs to no org and may call only `PlatformService`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformCaller {
    pub key_id: PlatformKeyId,
}
