//! Who is calling and what they may do: password hashing, opaque tokens, the
//! authenticated [`Principal`] and the pure [`authorize`] policy.

mod authenticator;
pub mod lockout;
mod password;
mod policy;
mod principal;
mod token;

pub use authenticator::{Authenticator, SignedIn, open_session};
pub use password::{HashCost, PasswordHasher};
pub use policy::{authorize, user_read_scope};
pub use principal::{Actor, Principal};
pub use token::{
    INVITE_TOKEN_PREFIX, SESSION_TOKEN_PREFIX, new_invite_token, new_session_token, token_hash,
};
