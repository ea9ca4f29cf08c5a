use chrono::{DateTime, Utc};

use super::{ApiKeyId, Permission, PermissionSet, PlatformKeyId, UserId, user::parse_name};
use crate::error::{ParseError, Reason};

/// An API key's name: what people recognise it by, unique in its org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_name(s, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key's scopes: the permissions it grants, at least one, all from the
/// catalogue.
pub fn parse_scopes(names: &[String]) -> Result<PermissionSet, ParseError> {
    if names.is_empty() {
        return Err(ParseError::new(
            Reason::UnknownScope,
            "name at least one scope",
        ));
    }
    names
        .iter()
        .map(|name| {
            Permission::parse(name.trim())
                .map_err(|e| ParseError::new(Reason::UnknownScope, e.message))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|perms| PermissionSet::of(&perms))
}

/// A backend service's credential, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: ApiKeyName,
    pub scopes: PermissionSet,
    /// The secret's first characters, to tell keys apart in a list.
    pub secret_prefix: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A platform operator's credential: it belongs to no org and can call only
/// `PlatformService`. Created offline (`rosterd platform-keys create`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformKey {
    pub id: PlatformKeyId,
    /// Unique among platform keys.
    pub name: ApiKeyName,
    /// The secret's first characters, to tell keys apart in a list.
    pub secret_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}
