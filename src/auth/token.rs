//! Opaque bearer tokens: 256 random bits, shown to the client once and stored
//! only as a SHA-256 digest, so a database leak yields no usable token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of session tokens, so a leaked token is recognisable in logs and scanners.
pub const SESSION_TOKEN_PREFIX: &str = "rs_";

pub fn new_session_token() -> String {
    random_token(SESSION_TOKEN_PREFIX)
}

/// Prefix of API key secrets; it also tells the authentication layer which
/// kind of credential it holds.
pub const API_KEY_PREFIX: &str = "rk_";

pub fn new_api_key_secret() -> String {
    random_token(API_KEY_PREFIX)
}

/// Prefix of platform API key secrets (keys of no org, for PlatformService).
pub const PLATFORM_KEY_PREFIX: &str = "rpk_";

pub fn new_platform_key_secret() -> String {
    random_token(PLATFORM_KEY_PREFIX)
}

/// Prefix of invitation tokens.
pub const INVITE_TOKEN_PREFIX: &str = "ri_";

pub fn new_invite_token() -> String {
    random_token(INVITE_TOKEN_PREFIX)
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The digest under which a token is stored and looked up.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = new_session_token();
        let b = new_session_token();
        assert_ne!(a, b);
        assert!(a.starts_with(SESSION_TOKEN_PREFIX));
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
