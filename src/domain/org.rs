use std::time::Duration;

use super::{LoginWith, OrgId};
use crate::error::{ParseError, Reason};

/// An org's slug, what people type to sign in: lower case letters, digits and
/// `-`, 1 to 63 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSlug(String);

impl OrgSlug {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_lowercase();
        let valid = !s.is_empty()
            && s.len() <= 63
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Self(s))
        } else {
            Err(ParseError::new(
                Reason::InvalidArgument,
                "an org slug is 1 to 63 lower-case letters, digits or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An org's settings, with the defaults of a new org.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgSettings {
    pub org_id: OrgId,
    pub slug: OrgSlug,
    pub name: String,
    /// `None` means no limit.
    pub seat_limit: Option<u32>,
    pub default_max_chats: u32,
    pub password_min_length: u32,
    pub lockout_threshold: u32,
    /// Zero means "until an admin unlocks".
    pub lockout_duration: Duration,
    pub login_with: LoginWith,
    pub invite_lifetime: Duration,
    pub session_lifetime: Duration,
    pub presence_lease: Duration,
    pub version: i64,
}

impl OrgSettings {
    pub fn new(slug: OrgSlug, name: String) -> Self {
        Self {
            org_id: OrgId::generate(),
            slug,
            name,
            seat_limit: None,
            default_max_chats: 6,
            password_min_length: 8,
            lockout_threshold: 5,
            lockout_duration: Duration::ZERO,
            login_with: LoginWith::Both,
            invite_lifetime: Duration::from_secs(7 * 24 * 3600),
            session_lifetime: Duration::from_secs(12 * 3600),
            presence_lease: Duration::from_secs(60),
            version: 1,
        }
    }
}
