use std::{fmt, marker::PhantomData, str::FromStr};

use crate::error::{ParseError, Reason};

/// A UUID (v7, so ids sort by creation time) tagged with what it identifies.
pub struct Id<T> {
    uuid: uuid::Uuid,
    kind: PhantomData<fn() -> T>,
}

pub enum UserKind {}
pub enum OrgKind {}
pub enum TeamKind {}
pub enum SessionKind {}
pub enum ApiKeyKind {}
pub enum ImportJobKind {}
pub enum PlatformKeyKind {}

pub type UserId = Id<UserKind>;
pub type OrgId = Id<OrgKind>;
pub type TeamId = Id<TeamKind>;
pub type SessionId = Id<SessionKind>;
pub type ApiKeyId = Id<ApiKeyKind>;
pub type ImportJobId = Id<ImportJobKind>;
pub type PlatformKeyId = Id<PlatformKeyKind>;

impl<T> Id<T> {
    pub fn generate() -> Self {
        Self::from_uuid(uuid::Uuid::now_v7())
    }

    /// The nil UUID, which [`Id::generate`] never makes: an id that names
    /// nothing, for statements that must run even when there is no row
    /// (so that work, and its time, does not depend on whether there is).
    pub fn none() -> Self {
        Self::from_uuid(uuid::Uuid::nil())
    }

    fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self {
            uuid,
            kind: PhantomData,
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        uuid::Uuid::parse_str(s.trim())
            .map(Self::from_uuid)
            .map_err(|_| ParseError::new(Reason::InvalidId, "must be a UUID"))
    }
}

impl<T> FromStr for Id<T> {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

// Manual impls: derives would needlessly require `T: Clone` etc.
impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}
impl<T> Eq for Id<T> {}
impl<T> std::hash::Hash for Id<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.uuid.hash(state)
    }
}
impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.uuid.cmp(&other.uuid)
    }
}
impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.uuid.hyphenated().fmt(f)
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            UserId::parse("not-a-uuid").unwrap_err().reason,
            Reason::InvalidId
        );
    }
}
