//! Roster's vocabulary as types. A value of these types is valid: they are
//! built only through `parse`/`TryFrom`, which is the one place input is checked.
//! Nothing here knows the wire format, the database or the runtime.

mod activity;
mod api_key;
mod avatar;
mod ids;
mod import;
mod org;
mod password;
mod presence;
mod query;
mod role;
mod scope;
mod team;
mod user;

pub use activity::{ActivityRange, ActivityRow, Granularity, Timeline, activity};
pub use api_key::{ApiKey, ApiKeyName, PlatformKey, parse_scopes};
pub use avatar::Avatar;
pub use ids::{ApiKeyId, Id, ImportJobId, OrgId, PlatformKeyId, SessionId, TeamId, UserId};
pub use import::{ImportJob, ImportStatus, ReportLine};
pub use org::{OrgSettings, OrgSlug, OrgState, SettingsChange, duration_in, setting_in};
pub use password::Password;
pub use presence::{
    ChangeReason, Presence, PresenceEvent, PresenceFilter, PresenceStatus, ScopeFacts,
    presence_time,
};
pub use query::{
    ActionFilter, AuditCriteria, AuditEntry, AuditPageKey, ImportCriteria, ImportOrder,
    PlatformAuditCriteria, PlatformAuditEntry, UserCriteria, UserFilter, UserPageKey,
};
pub use role::{CustomRole, Permission, PermissionSet, RoleName, permissions_of};
pub use scope::UserScope;
pub use team::{Team, TeamName};
pub use user::{DisplayName, Email, LoginId, LoginWith, ProfileText, Tombstone, User, UserState};
