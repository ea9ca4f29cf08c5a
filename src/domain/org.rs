use std::{ops::RangeInclusive, time::Duration};

use chrono::{DateTime, Utc};

use super::{DisplayName, LoginWith, OrgId, ProfileText};
use crate::{
    error::{ParseError, Reason},
    named::named_enum,
};

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

named_enum! {
    /// An org's lifecycle. A suspended org keeps its data, but nobody of it
    /// signs in and none of its sessions or keys work; only a suspended org can
    /// be deleted. Deletion is not a state: a deleted org is gone.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OrgState {
        Active => "active",
        Suspended => "suspended",
    }
}

impl std::str::FromStr for OrgState {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgState::from_name(s).ok_or_else(|| {
            ParseError::new(Reason::InvalidArgument, format!("unknown org state {s:?}"))
        })
    }
}

/// An org: its lifecycle and its settings, with the defaults of a new org.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgSettings {
    pub org_id: OrgId,
    pub slug: OrgSlug,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub state: OrgState,
    pub suspended_at: Option<DateTime<Utc>>,
    /// Empty unless suspended with a reason.
    pub suspend_reason: ProfileText,
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
            created_at: Utc::now(),
            state: OrgState::Active,
            suspended_at: None,
            suspend_reason: ProfileText::default(),
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

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The accepted range of each setting. The password minimum stops at 64 so a
/// 64-character password is always accepted, as the password policy promises.
impl OrgSettings {
    pub const SEAT_LIMIT_MAX: u32 = 1_000_000;
    pub const DEFAULT_MAX_CHATS: RangeInclusive<u32> = 1..=1000;
    pub const PASSWORD_MIN_LENGTH: RangeInclusive<u32> = 8..=64;
    pub const LOCKOUT_THRESHOLD: RangeInclusive<u32> = 1..=100;
    pub const LOCKOUT_DURATION: RangeInclusive<Duration> =
        Duration::ZERO..=Duration::from_secs(30 * DAY);
    pub const INVITE_LIFETIME: RangeInclusive<Duration> =
        Duration::from_secs(HOUR)..=Duration::from_secs(30 * DAY);
    pub const SESSION_LIFETIME: RangeInclusive<Duration> =
        Duration::from_secs(5 * MINUTE)..=Duration::from_secs(30 * DAY);
    pub const PRESENCE_LEASE: RangeInclusive<Duration> =
        Duration::from_secs(5)..=Duration::from_secs(HOUR);
}

/// A number setting inside its range.
pub fn setting_in(value: u32, range: RangeInclusive<u32>) -> Result<u32, ParseError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ParseError::new(
            Reason::InvalidSetting,
            format!("must be {} to {}", range.start(), range.end()),
        ))
    }
}

/// A duration setting inside its range, in whole seconds.
pub fn duration_in(
    value: Duration,
    range: RangeInclusive<Duration>,
) -> Result<Duration, ParseError> {
    if value.subsec_nanos() != 0 {
        return Err(ParseError::new(
            Reason::InvalidSetting,
            "must be a whole number of seconds",
        ));
    }
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ParseError::new(
            Reason::InvalidSetting,
            format!(
                "must be {}s to {}s",
                range.start().as_secs(),
                range.end().as_secs()
            ),
        ))
    }
}

/// A change to some of an org's settings, each already in range; `None`
/// leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsChange {
    pub name: Option<DisplayName>,
    /// `Some(None)` removes the limit.
    pub seat_limit: Option<Option<u32>>,
    pub default_max_chats: Option<u32>,
    pub password_min_length: Option<u32>,
    pub lockout_threshold: Option<u32>,
    pub lockout_duration: Option<Duration>,
    pub login_with: Option<LoginWith>,
    pub invite_lifetime: Option<Duration>,
    pub session_lifetime: Option<Duration>,
    pub presence_lease: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_ranges() {
        assert!(setting_in(7, OrgSettings::PASSWORD_MIN_LENGTH).is_err());
        assert!(setting_in(8, OrgSettings::PASSWORD_MIN_LENGTH).is_ok());
        assert!(setting_in(0, OrgSettings::LOCKOUT_THRESHOLD).is_err());
        assert!(duration_in(Duration::ZERO, OrgSettings::LOCKOUT_DURATION).is_ok());
        assert!(duration_in(Duration::from_millis(1500), OrgSettings::PRESENCE_LEASE).is_err());
        assert!(duration_in(Duration::from_secs(4), OrgSettings::PRESENCE_LEASE).is_err());
        let defaults = OrgSettings::new(OrgSlug::parse("acme").unwrap(), "Acme".into());
        assert!(OrgSettings::INVITE_LIFETIME.contains(&defaults.invite_lifetime));
        assert!(OrgSettings::SESSION_LIFETIME.contains(&defaults.session_lifetime));
        assert!(OrgSettings::PRESENCE_LEASE.contains(&defaults.presence_lease));
    }
}
