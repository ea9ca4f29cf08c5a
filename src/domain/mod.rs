//! Roster's vocabulary as types. A value of these types is valid: they are
//! built only through `parse`/`TryFrom`, which is the one place input is checked.
//! Nothing here knows the wire format, the database or the runtime.

mod avatar;
mod ids;
mod org;
mod password;
mod role;
mod scope;
mod user;

pub use avatar::Avatar;
pub use ids::{Id, OrgId, SessionId, TeamId, UserId};
pub use org::{OrgSettings, OrgSlug};
pub use password::Password;
pub use role::{Permission, PermissionSet, RoleName};
pub use scope::UserScope;
pub use user::{DisplayName, Email, LoginId, LoginWith, ProfileText, User, UserState};
