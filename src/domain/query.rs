//! What listings ask for: the filters, orders and page keys that use cases
//! take from the API and hand to the store, so neither side owns the other's
//! types.

use chrono::{DateTime, Utc};

use super::{OrgId, PresenceStatus, RoleName, TeamId, UserId, UserScope, UserState};

/// What a caller asks a listing for; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserCriteria {
    /// Substring of the display name, public name, email, login id or id.
    pub query: Option<String>,
    pub role: Option<RoleName>,
    pub team: Option<TeamId>,
    pub state: Option<UserState>,
    pub locked: Option<bool>,
    pub presence: Option<PresenceStatus>,
}

/// Which users a listing returns: the criteria, within what the caller may see.
#[derive(Debug, Clone)]
pub struct UserFilter {
    pub criteria: UserCriteria,
    pub scope: UserScope,
}

/// Where a page of users starts: after this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPageKey {
    pub sort_key: String,
    pub user_id: String,
}

/// How ListImportJobs sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImportOrder {
    #[default]
    UploadedAt,
    FileName,
    UploadedBy,
    Status,
}

/// Which jobs a listing returns and in what order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ImportCriteria {
    pub uploaded_after: Option<DateTime<Utc>>,
    pub uploaded_before: Option<DateTime<Utc>>,
    pub order: ImportOrder,
    pub descending: bool,
}

/// Which entries a listing returns; every part is optional and they combine
/// with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditCriteria {
    pub actor_id: Option<String>,
    /// `user`, `api_key`, `system` or `anonymous`.
    pub actor_kind: Option<&'static str>,
    pub target_user_id: Option<UserId>,
    pub action: Option<ActionFilter>,
    /// Inclusive.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive.
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    Exactly(String),
    Prefix(String),
}

/// Where a page of entries starts: strictly older than this time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPageKey {
    pub occurred_at: DateTime<Utc>,
    pub id: String,
}

/// One org audit log entry as read back.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_user_id: Option<String>,
    /// E.g. `teams/<id>`, for changes to something other than a user.
    pub target_resource: Option<String>,
    pub request_id: Option<String>,
    pub peer: Option<String>,
    /// A JSON object.
    pub details: String,
}

/// One platform audit log entry, as written and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformAuditEntry {
    /// Assigned when written (UUID v7: ids sort by time).
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    /// `platform_key` or `operator`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub org_id: Option<String>,
    pub org_slug: Option<String>,
    pub request_id: Option<String>,
    pub peer: Option<String>,
    /// A JSON object.
    pub details: String,
}

/// Which platform entries a listing returns; the parts combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformAuditCriteria {
    pub org_id: Option<OrgId>,
    pub action: Option<String>,
    /// Inclusive.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive.
    pub end: Option<DateTime<Utc>>,
}
