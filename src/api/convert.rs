//! Wire ⇄ domain conversions. Parsing the wire types is the only place input
//! is checked; every offending field is reported at once, by its path.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::pb;
use crate::{
    domain::{
        DisplayName, Email, LoginId, LoginWith, ProfileText, RoleName, TeamId, User, UserState,
    },
    error::{Error, FieldViolation, ParseError, Reason, Result, quoted},
    store::UserPageKey,
    users::NewUser,
};

/// Collects field violations while parsing a request.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// The parsed value, or `None` with the violation recorded under `field`.
    /// Only a field's first violation is kept, so the error stays small
    /// however many bad entries a repeated field holds.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, ParseError>) -> Option<T> {
        parsed
            .map_err(|e| {
                if !self.0.iter().any(|v| v.field == field) {
                    self.0.push(e.at(field));
                }
            })
            .ok()
    }

    /// `Ok(value)` if nothing was recorded; `value` is built only then.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T> {
        if !self.0.is_empty() {
            return Err(Error::InvalidArgument(self.0));
        }
        // Every `None` came with a recorded violation, so this is `Some`.
        value().ok_or_else(|| Error::internal(std::io::Error::other("unparsed field")))
    }
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn user_state(state: UserState) -> pb::UserState {
    match state {
        UserState::Invited => pb::UserState::Invited,
        UserState::Active => pb::UserState::Active,
        UserState::Suspended => pb::UserState::Suspended,
    }
}

/// A `UserState` filter: unspecified means any.
pub fn parse_user_state_filter(raw: i32) -> Result<Option<UserState>, ParseError> {
    match pb::UserState::try_from(raw) {
        Ok(pb::UserState::Unspecified) => Ok(None),
        Ok(pb::UserState::Invited) => Ok(Some(UserState::Invited)),
        Ok(pb::UserState::Active) => Ok(Some(UserState::Active)),
        Ok(pb::UserState::Suspended) => Ok(Some(UserState::Suspended)),
        Err(_) => Err(ParseError::new(
            Reason::InvalidArgument,
            format!("{raw} is not a UserState"),
        )),
    }
}

fn login_with(l: LoginWith) -> pb::LoginWith {
    match l {
        LoginWith::Email => pb::LoginWith::Email,
        LoginWith::LoginId => pb::LoginWith::LoginId,
        LoginWith::Both => pb::LoginWith::Both,
    }
}

fn parse_login_with(raw: i32) -> Result<Option<LoginWith>, ParseError> {
    match pb::LoginWith::try_from(raw) {
        Ok(pb::LoginWith::Unspecified) => Ok(None),
        Ok(pb::LoginWith::Email) => Ok(Some(LoginWith::Email)),
        Ok(pb::LoginWith::LoginId) => Ok(Some(LoginWith::LoginId)),
        Ok(pb::LoginWith::Both) => Ok(Some(LoginWith::Both)),
        Err(_) => Err(ParseError::new(
            Reason::InvalidArgument,
            format!("{raw} is not a LoginWith"),
        )),
    }
}

impl From<&User> for pb::User {
    fn from(u: &User) -> Self {
        pb::User {
            user_id: u.id.to_string(),
            email: u.email.to_string(),
            login_id: u
                .login_id
                .as_ref()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
            display_name: u.display_name.as_str().to_owned(),
            public_name: u.public_name.as_str().to_owned(),
            state: user_state(u.state).into(),
            locked: u.locked,
            roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            team_ids: u.team_ids.iter().map(ToString::to_string).collect(),
            max_chats: u.max_chats,
            effective_max_chats: u.effective_max_chats,
            etag: u.version.to_string(),
            login_with: u
                .login_with
                .map_or(pb::LoginWith::Unspecified, login_with)
                .into(),
            language: u.language.as_str().to_owned(),
            landline_phone: u.landline_phone.as_str().to_owned(),
            mobile_phone: u.mobile_phone.as_str().to_owned(),
            job_title: u.job_title.as_str().to_owned(),
            location: u.location.as_str().to_owned(),
            can_view_colleagues_chats: u.can_view_colleagues_chats,
            created_at: Some(timestamp(u.created_at)),
            last_login_at: u.last_login_at.map(timestamp),
            last_logout_at: u.last_logout_at.map(timestamp),
            password_change_required: u.password_change_required,
            has_avatar: false,
        }
    }
}

/// The input fields of a `User` in a creating request; output-only fields
/// are ignored. `prefix` is the field's path in the request (e.g. `user`).
pub fn parse_new_user(user: Option<pb::User>, prefix: &str) -> Result<NewUser> {
    let Some(user) = user else {
        return Err(Error::invalid(
            ParseError::new(Reason::InvalidArgument, "is required").at(prefix),
        ));
    };
    let pb::User {
        user_id: _,
        email,
        login_id,
        display_name,
        public_name,
        state: _,
        locked: _,
        roles,
        team_ids,
        max_chats,
        effective_max_chats: _,
        etag: _,
        login_with,
        language,
        landline_phone,
        mobile_phone,
        job_title,
        location,
        can_view_colleagues_chats,
        created_at: _,
        last_login_at: _,
        last_logout_at: _,
        password_change_required: _,
        has_avatar: _,
    } = user;
    let mut v = Violations::default();
    let field = |name: &str| format!("{prefix}.{name}");
    let email = v.check(&field("email"), Email::parse(&email));
    let login_id = v.check(
        &field("login_id"),
        (!login_id.trim().is_empty())
            .then(|| LoginId::parse(&login_id))
            .transpose(),
    );
    let display_name = v.check(&field("display_name"), DisplayName::parse(&display_name));
    let text = |v: &mut Violations, name: &str, s: &str, max: usize| {
        v.check(&field(name), ProfileText::parse(s, max))
    };
    let public_name = text(&mut v, "public_name", &public_name, DisplayName::MAX_LEN);
    let language = text(&mut v, "language", &language, 35);
    let landline_phone = text(&mut v, "landline_phone", &landline_phone, 50);
    let mobile_phone = text(&mut v, "mobile_phone", &mobile_phone, 50);
    let job_title = text(&mut v, "job_title", &job_title, 100);
    let location = text(&mut v, "location", &location, 100);
    bounded(&mut v, &field("roles"), roles.len(), MAX_ROLES);
    bounded(&mut v, &field("team_ids"), team_ids.len(), MAX_TEAMS);
    let roles: Vec<_> = roles
        .iter()
        .take(MAX_ROLES)
        .filter_map(|r| v.check(&field("roles"), RoleName::parse(r)))
        .collect();
    let team_ids: Vec<_> = team_ids
        .iter()
        .take(MAX_TEAMS)
        .filter_map(|t| {
            v.check(
                &field("team_ids"),
                TeamId::parse(t).map_err(|_| {
                    ParseError::new(
                        Reason::UnknownTeam,
                        format!("{} is not a team id", quoted(t)),
                    )
                }),
            )
        })
        .collect();
    let max_chats = v.check(
        &field("max_chats"),
        match max_chats {
            Some(n) if n > 1000 => Err(ParseError::new(
                Reason::InvalidArgument,
                "must be at most 1000",
            )),
            other => Ok(other),
        },
    );
    let login_with = v.check(&field("login_with"), parse_login_with(login_with));
    v.finish(|| {
        Some(NewUser {
            email: email?,
            login_id: login_id?,
            display_name: display_name?,
            public_name: public_name?,
            roles,
            team_ids,
            max_chats: max_chats?,
            login_with: login_with?,
            language: language?,
            landline_phone: landline_phone?,
            mobile_phone: mobile_phone?,
            job_title: job_title?,
            location: location?,
            can_view_colleagues_chats,
        })
    })
}

const MAX_ROLES: usize = 32;
const MAX_TEAMS: usize = 256;

/// Records a violation when a repeated field has more than `max` entries.
fn bounded(v: &mut Violations, field: &str, len: usize, max: usize) {
    let check = if len > max {
        Err(ParseError::new(
            Reason::InvalidArgument,
            format!("at most {max} entries"),
        ))
    } else {
        Ok(())
    };
    v.check(field, check);
}

/// `page_size`: 0 means the default; negative is invalid; large is capped.
pub fn page_size(raw: i32) -> Result<u64, ParseError> {
    const DEFAULT: u64 = 50;
    const MAX: u64 = 500;
    match raw {
        0 => Ok(DEFAULT),
        n if n < 0 => Err(ParseError::new(
            Reason::InvalidArgument,
            "must not be negative",
        )),
        n => Ok((n as u64).min(MAX)),
    }
}

/// What a page token holds: where the next page starts, and a fingerprint
/// of the filters, so a token is refused with other filters than its own.
#[derive(Serialize, Deserialize)]
struct PageToken {
    k: String,
    i: String,
    f: String,
}

pub fn fingerprint(filters: &impl std::fmt::Debug) -> String {
    let digest = Sha256::digest(format!("{filters:?}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

pub fn encode_page_token(key: &UserPageKey, fingerprint: String) -> String {
    let token = PageToken {
        k: key.sort_key.clone(),
        i: key.user_id.clone(),
        f: fingerprint,
    };
    // Serialising a struct of strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

pub fn decode_page_token(raw: &str, fingerprint: &str) -> Result<Option<UserPageKey>, ParseError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ParseError::new(
            Reason::InvalidPageToken,
            "is not a token this listing issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.f != fingerprint {
        return Err(ParseError::new(
            Reason::InvalidPageToken,
            "was issued for different filters",
        ));
    }
    Ok(Some(UserPageKey {
        sort_key: token.k,
        user_id: token.i,
    }))
}
