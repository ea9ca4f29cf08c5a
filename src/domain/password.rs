// The list lives in a file of its own: it is data, hundreds of lines long.
#[path = "common_passwords.rs"]
mod common_passwords;

use common_passwords::COMMON_PASSWORDS;

use crate::error::{ParseError, Reason};

/// A password that follows the org's policy: at least the policy's minimum
/// length (never below 8), at most 256 characters (so 64 always fit), no
/// composition rules, and not one of the commonest breached passwords.
/// Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: u32 = 8;
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: &str, min_len: u32) -> Result<Self, ParseError> {
        let min_len = min_len.max(Self::MIN_LEN) as usize;
        let chars = s.chars().count();
        if chars < min_len {
            return Err(ParseError::new(
                Reason::WeakPassword,
                format!("must be at least {min_len} characters"),
            ));
        }
        Self::check_max_len(s)?;
        if is_common(s) {
            return Err(ParseError::new(
                Reason::WeakPassword,
                "is one of the most commonly breached passwords",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Refuses a password longer than [`Self::MAX_LEN`] characters. Every
    /// password a request carries (a sign-in's or a current one too, not only
    /// new ones) passes here before it is hashed: no stored password can be
    /// that long, and argon2 over megabytes would burn CPU for nothing.
    pub fn check_max_len(s: &str) -> Result<(), ParseError> {
        // Counting stops at the first character past the limit.
        if s.chars().nth(Self::MAX_LEN).is_some() {
            return Err(ParseError::new(
                Reason::WeakPassword,
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        Ok(())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Whether `s` (case-insensitively) is in the list of the commonest breached
/// passwords long enough to pass the length rule.
fn is_common(s: &str) -> bool {
    let lower = s.to_lowercase();
    COMMON_PASSWORDS.binary_search(&lower.as_str()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_holds_only_passwords_the_length_rule_lets_through() {
        assert!(COMMON_PASSWORDS.iter().all(|p| p.chars().count() >= 8));
    }

    #[test]
    fn list_is_lowercase_sorted_and_unique_for_binary_search() {
        assert!(COMMON_PASSWORDS.len() >= 300);
        assert!(COMMON_PASSWORDS.iter().all(|p| p.to_lowercase() == *p));
        assert!(COMMON_PASSWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn policy() {
        assert!(Password::parse("short", 8).is_err());
        assert!(Password::parse("eight ch", 8).is_ok());
        assert!(Password::parse("eight ch", 4).is_ok());
        assert!(Password::parse("seven c", 4).is_err(), "never below 8");
        assert!(Password::parse("ten chars!", 12).is_err());
        assert!(Password::parse(&"x".repeat(64), 8).is_ok());
        assert!(Password::parse(&"x".repeat(257), 8).is_err());
        assert!(Password::parse("Password1", 8).is_err());
        assert!(Password::parse("QWERTYUIOP", 8).is_err());
        assert!(Password::parse("Summer2024", 8).is_err());
        assert!(Password::check_max_len(&"é".repeat(256)).is_ok());
        assert!(Password::check_max_len(&"é".repeat(257)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-horse", 8).unwrap()),
            "Password(***)"
        );
    }
}
