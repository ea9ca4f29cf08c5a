use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};

use super::{RoleName, TeamId, UserId};
use crate::{
    error::{ParseError, Reason},
    named::named_enum,
};

/// An email address, trimmed and lower-cased, so that two spellings of one
/// address are one value (the uniqueness rule is case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_lowercase();
        let bad = |m: &str| Err(ParseError::new(Reason::InvalidEmail, m));
        if s.is_empty() {
            return bad("is required");
        }
        if s.chars().count() > Self::MAX_LEN {
            return bad("must be at most 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("must look like name@example.com");
        };
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let valid_domain = !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let no_forbidden = s
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[],;:\\\"".contains(c));
        if !(valid_local && valid_domain && no_forbidden && local.chars().all(|c| c != '@')) {
            return bad("must look like name@example.com");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name as colleagues see it: trimmed, 1 to 100 characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_name(s, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key users are listed by: case-insensitive, computed here rather
    /// than in SQL so both databases order identically.
    pub fn sort_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A name people read (of a person, a team): trimmed, 1 to `max` characters,
/// no control characters.
pub(super) fn parse_name(s: &str, max: usize) -> Result<String, ParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ParseError::new(Reason::InvalidName, "is required"));
    }
    if s.chars().count() > max {
        return Err(ParseError::new(
            Reason::InvalidName,
            format!("must be at most {max} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ParseError::new(
            Reason::InvalidName,
            "must not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

/// A sign-in name unique inside an org: 1 to 100 characters, no whitespace or
/// control characters. Case is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginId(String);

impl LoginId {
    pub const MAX_LEN: usize = 100;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::new(Reason::InvalidLoginId, "must not be empty"));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ParseError::new(
                Reason::InvalidLoginId,
                "must be at most 100 characters",
            ));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new(
                Reason::InvalidLoginId,
                "must not contain spaces or control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Optional free text of a profile (public name, phones, job title, ...):
/// trimmed, bounded, no control characters; empty means "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileText(String);

impl ProfileText {
    pub fn parse(s: &str, max_chars: usize) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.chars().count() > max_chars {
            return Err(ParseError::new(
                Reason::InvalidText,
                format!("must be at most {max_chars} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError::new(
                Reason::InvalidText,
                "must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

named_enum! {
    /// Account lifecycle. Deletion is not a state: a deleted user is gone.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum UserState {
        Invited => "invited",
        Active => "active",
        Suspended => "suspended",
    }
}

impl FromStr for UserState {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        UserState::from_name(s).ok_or_else(|| {
            ParseError::new(Reason::InvalidArgument, format!("unknown user state {s:?}"))
        })
    }
}

named_enum! {
    /// Which identifier a user may sign in with.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum LoginWith {
        Email => "email",
        LoginId => "login_id",
        Both => "both",
    }
}

impl LoginWith {
    pub fn allows_email(self) -> bool {
        matches!(self, LoginWith::Email | LoginWith::Both)
    }

    pub fn allows_login_id(self) -> bool {
        matches!(self, LoginWith::LoginId | LoginWith::Both)
    }
}

impl FromStr for LoginWith {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        LoginWith::from_name(s).ok_or_else(|| {
            ParseError::new(Reason::InvalidArgument, format!("unknown login_with {s:?}"))
        })
    }
}

/// What is kept of a deleted user, so history can still name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub deleted_at: DateTime<Utc>,
    /// The user who deleted them; `None` for an API key or the system.
    pub deleted_by: Option<UserId>,
}

/// A user as stored, with roles and teams.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub login_id: Option<LoginId>,
    pub display_name: DisplayName,
    pub public_name: ProfileText,
    pub state: UserState,
    pub locked: bool,
    pub roles: Vec<RoleName>,
    pub team_ids: Vec<TeamId>,
    pub max_chats: Option<u32>,
    pub effective_max_chats: u32,
    pub login_with: Option<LoginWith>,
    pub language: ProfileText,
    pub landline_phone: ProfileText,
    pub mobile_phone: ProfileText,
    pub job_title: ProfileText,
    pub location: ProfileText,
    pub can_view_colleagues_chats: bool,
    pub password_change_required: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_logout_at: Option<DateTime<Utc>>,
    /// Why the user was suspended; empty when not suspended or not said.
    pub suspend_reason: ProfileText,
    pub has_avatar: bool,
}

impl User {
    /// Whether the user is an active admin, the role an org must never lose
    /// its last holder of.
    pub fn is_active_admin(&self) -> bool {
        self.state == UserState::Active && self.roles.iter().any(|r| r.as_str() == RoleName::ADMIN)
    }

    /// Every text a free-text query matches, lower-cased, so that search is
    /// case-insensitive and identical on both databases.
    pub fn search_text(&self) -> String {
        let login_id = self.login_id.as_ref().map_or("", LoginId::as_str);
        [
            self.display_name.as_str(),
            self.public_name.as_str(),
            self.email.as_str(),
            login_id,
            &self.id.to_string(),
        ]
        .join("\u{1f}")
        .to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ana.Silva@Example.COM ").unwrap().as_str(),
            "ana.silva@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "ana@",
            "ana@@example.com",
            "ana@exa mple.com",
            "ana@example..com",
            ".ana@example.com",
            "ana@-example.com",
            "a<b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn display_name_bounds() {
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert_eq!(DisplayName::parse(" Ana ").unwrap().as_str(), "Ana");
    }

    #[test]
    fn login_id_has_no_spaces() {
        assert!(LoginId::parse("ana silva").is_err());
        assert!(LoginId::parse("ana.silva").is_ok());
    }
}
