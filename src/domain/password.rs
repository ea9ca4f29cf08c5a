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
        if chars > Self::MAX_LEN {
            return Err(ParseError::new(
                Reason::WeakPassword,
                "must be at most 256 characters",
            ));
        }
        if is_common(s) {
            return Err(ParseError::new(
                Reason::WeakPassword,
                "is one of the most commonly breached passwords",
            ));
        }
        Ok(Self(s.to_owned()))
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
    COMMON_PASSWORDS.contains(&lower.as_str())
}

/// The commonest breached passwords of 8 characters or more.
const COMMON_PASSWORDS: &[&str] = &[
    "00000000",
    "1111111111",
    "11111111",
    "12121212",
    "1234567890",
    "123456789",
    "12345678",
    "123123123",
    "123456789a",
    "12345678910",
    "123qweasd",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "87654321",
    "88888888",
    "987654321",
    "99999999",
    "aa12345678",
    "abc12345",
    "abcd1234",
    "admin123",
    "asdfghjkl",
    "baseball",
    "changeme",
    "charlie1",
    "football",
    "iloveyou",
    "jennifer",
    "letmein1",
    "liverpool",
    "michelle",
    "password",
    "password1",
    "password12",
    "password123",
    "princess",
    "q1w2e3r4",
    "q1w2e3r4t5y6",
    "qwerty12",
    "qwerty123",
    "qwertyui",
    "qwertyuiop",
    "starwars",
    "sunshine",
    "superman",
    "trustno1",
    "welcome1",
    "whatever",
    "zaq12wsx",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_holds_only_passwords_the_length_rule_lets_through() {
        assert!(COMMON_PASSWORDS.iter().all(|p| p.len() >= 8));
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
        assert_eq!(
            format!("{:?}", Password::parse("secret-horse", 8).unwrap()),
            "Password(***)"
        );
    }
}
