use chrono::{DateTime, Utc};

use super::{ProfileText, TeamId};
use crate::error::ParseError;

/// A team's name: trimmed, 1 to 100 characters, no control characters.
/// Unique in its org regardless of case (see [`TeamName::unique_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        super::user::parse_name(s, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness and ordering compare: computed here rather than in SQL
    /// so both databases agree on every script's case rules.
    pub fn unique_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A group of users of one org.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: TeamId,
    pub name: TeamName,
    pub description: ProfileText,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl Team {
    pub const DESCRIPTION_MAX_LEN: usize = 500;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_name_bounds() {
        assert!(TeamName::parse("  ").is_err());
        assert!(TeamName::parse(&"x".repeat(101)).is_err());
        assert!(TeamName::parse("a\nb").is_err());
        let name = TeamName::parse(" Ventas ÉU ").unwrap();
        assert_eq!(name.as_str(), "Ventas ÉU");
        assert_eq!(name.unique_key(), "ventas éu");
    }
}
