//! Who is calling and what they may do: password hashing, opaque tokens, the
//! authenticated [`Principal`] and the pure [`authorize`] policy.

mod api_keys;
mod authenticator;
pub mod lockout;
mod password;
mod platform_keys;
mod policy;
mod principal;
mod token;

pub use api_keys::{CreatedKey, KeyPage};
pub use authenticator::{Authenticator, SignedIn, open_session};
pub use password::{HashCost, PasswordHasher, generate_password};
pub use platform_keys::CreatedPlatformKey;
pub use policy::{authorize, authorize_grant, report_read_scope, user_read_scope};
pub use principal::{Actor, PlatformCaller, Principal};
pub use token::{
    API_KEY_PREFIX, INVITE_TOKEN_PREFIX, PLATFORM_KEY_PREFIX, SESSION_TOKEN_PREFIX,
    new_api_key_secret, new_invite_token, new_platform_key_secret, new_session_token, token_hash,
};
