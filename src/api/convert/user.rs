//! Users on the wire: `From<&User> for pb::User` out; the input fields of
//! creating and updating requests, and the user states and `login_with`
//! enums, parsed in.

use super::{
    Violations, decode_cursor, encode_cursor, mask_fields, masked, parse_status, required,
    timestamp,
};
use crate::{
    api::pb,
    domain::{
        DisplayName, Email, LoginId, LoginWith, ProfileText, RoleName, TeamId, User, UserCriteria,
        UserId, UserPageKey, UserState,
    },
    error::{Error, ParseError, Reason, Result, quoted},
    users::{NewUser, UserPatch},
};

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

pub fn login_with(l: LoginWith) -> pb::LoginWith {
    match l {
        LoginWith::Email => pb::LoginWith::Email,
        LoginWith::LoginId => pb::LoginWith::LoginId,
        LoginWith::Both => pb::LoginWith::Both,
    }
}

pub fn parse_login_with(raw: i32) -> Result<Option<LoginWith>, ParseError> {
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
            has_avatar: u.has_avatar,
            suspend_reason: u.suspend_reason.as_str().to_owned(),
        }
    }
}

/// The input fields of a `User`, each parsed (`None` where it did not parse).
struct UserInput {
    user_id: Option<UserId>,
    etag: Option<Option<i64>>,
    email: Option<Email>,
    login_id: Option<Option<LoginId>>,
    display_name: Option<DisplayName>,
    public_name: Option<ProfileText>,
    roles: Option<Vec<RoleName>>,
    team_ids: Option<Vec<TeamId>>,
    max_chats: Option<Option<u32>>,
    login_with: Option<Option<LoginWith>>,
    language: Option<ProfileText>,
    landline_phone: Option<ProfileText>,
    mobile_phone: Option<ProfileText>,
    job_title: Option<ProfileText>,
    location: Option<ProfileText>,
    can_view_colleagues_chats: bool,
}

/// Parses every input field of `user`; a field's violation is recorded
/// (under `prefix.field`) only when `wanted(field)`.
fn parse_user_input(
    user: pb::User,
    prefix: &str,
    wanted: impl Fn(&str) -> bool,
) -> (Violations, UserInput) {
    let pb::User {
        user_id,
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
        etag,
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
        suspend_reason: _,
    } = user;
    let mut fields = Fields {
        v: Violations::default(),
        prefix,
        wanted,
    };
    let text = |s: &str, max| ProfileText::parse(s, max);
    let roles = bounded(roles.len(), MAX_ROLES).and_then(|()| {
        roles
            .iter()
            .map(|r| RoleName::parse(r))
            .collect::<Result<Vec<_>, _>>()
    });
    let team_ids = bounded(team_ids.len(), MAX_TEAMS).and_then(|()| {
        team_ids
            .iter()
            .map(|t| {
                TeamId::parse(t).map_err(|_| {
                    ParseError::new(
                        Reason::UnknownTeam,
                        format!("{} is not a team id", quoted(t)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
    });
    let input = UserInput {
        user_id: fields.check("user_id", UserId::parse(&user_id)),
        etag: fields.check(
            "etag",
            (!etag.is_empty())
                .then(|| {
                    etag.parse::<i64>().map_err(|_| {
                        ParseError::new(
                            Reason::InvalidArgument,
                            "is not an etag this server issued",
                        )
                    })
                })
                .transpose(),
        ),
        email: fields.check("email", Email::parse(&email)),
        login_id: fields.check(
            "login_id",
            (!login_id.trim().is_empty())
                .then(|| LoginId::parse(&login_id))
                .transpose(),
        ),
        display_name: fields.check("display_name", DisplayName::parse(&display_name)),
        public_name: fields.check("public_name", text(&public_name, DisplayName::MAX_LEN)),
        roles: fields.check("roles", roles),
        team_ids: fields.check("team_ids", team_ids),
        max_chats: fields.check(
            "max_chats",
            match max_chats {
                Some(n) if n > MAX_CHATS => Err(ParseError::new(
                    Reason::InvalidArgument,
                    format!("must be at most {MAX_CHATS}"),
                )),
                other => Ok(other),
            },
        ),
        login_with: fields.check("login_with", parse_login_with(login_with)),
        language: fields.check("language", text(&language, 35)),
        landline_phone: fields.check("landline_phone", text(&landline_phone, 50)),
        mobile_phone: fields.check("mobile_phone", text(&mobile_phone, 50)),
        job_title: fields.check("job_title", text(&job_title, 100)),
        location: fields.check("location", text(&location, 100)),
        can_view_colleagues_chats,
    };
    (fields.v, input)
}

/// Collects the violations of the wanted fields only.
struct Fields<'a, W> {
    v: Violations,
    prefix: &'a str,
    wanted: W,
}

impl<W: Fn(&str) -> bool> Fields<'_, W> {
    fn check<T>(&mut self, name: &str, parsed: Result<T, ParseError>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(e) if (self.wanted)(name) => {
                self.v.check(&format!("{}.{name}", self.prefix), Err(e))
            }
            Err(_) => None,
        }
    }
}
/// The input fields of a `User` in a creating request; output-only fields
/// are ignored. `prefix` is the field's path in the request (e.g. `user`).
pub fn parse_new_user(user: Option<pb::User>, prefix: &str) -> Result<NewUser> {
    let user = required(user, prefix)?;
    let (v, input) = parse_user_input(user, prefix, |field| !matches!(field, "user_id" | "etag"));
    v.finish(|| {
        Some(NewUser {
            email: input.email?,
            login_id: input.login_id?,
            display_name: input.display_name?,
            public_name: input.public_name?,
            roles: input.roles?,
            team_ids: input.team_ids?,
            max_chats: input.max_chats?,
            login_with: input.login_with?,
            language: input.language?,
            landline_phone: input.landline_phone?,
            mobile_phone: input.mobile_phone?,
            job_title: input.job_title?,
            location: input.location?,
            can_view_colleagues_chats: input.can_view_colleagues_chats,
        })
    })
}
/// The paths `UpdateUser` accepts in its mask.
const EDITABLE: &[&str] = &[
    "display_name",
    "public_name",
    "login_id",
    "login_with",
    "language",
    "roles",
    "team_ids",
    "max_chats",
    "landline_phone",
    "mobile_phone",
    "job_title",
    "location",
    "can_view_colleagues_chats",
];

/// A masked field's parsed value: `Some(None)` when not masked (left as is),
/// `Some(Some(v))` when masked and valid, `None` when masked and invalid.
fn pick<T>(masked: bool, parsed: Option<T>) -> Option<Option<T>> {
    if masked { parsed.map(Some) } else { Some(None) }
}

/// An update: which user, at which etag, and the masked fields' new values.
pub fn parse_user_update(
    user: Option<pb::User>,
    mask: Option<prost_types::FieldMask>,
) -> Result<(UserId, Option<i64>, UserPatch)> {
    let user = required(user, "user")?;
    let names_email = mask.as_ref().is_some_and(|m| {
        m.paths
            .iter()
            .any(|p| matches!(p.trim(), "email" | "user.email"))
    });
    if names_email {
        return Err(Error::invalid(
            ParseError::new(Reason::ImmutableField, "email cannot be changed").at("update_mask"),
        ));
    }
    let paths = mask_fields(mask, "user", EDITABLE)?;
    let masked = |field: &str| masked(&paths, field);
    let (v, input) = parse_user_input(user, "user", |f| f == "user_id" || f == "etag" || masked(f));
    let take = |field: &str| masked(field);
    v.finish(|| {
        Some((
            input.user_id?,
            input.etag?,
            UserPatch {
                display_name: pick(take("display_name"), input.display_name)?,
                public_name: pick(take("public_name"), input.public_name)?,
                login_id: pick(take("login_id"), input.login_id)?,
                login_with: pick(take("login_with"), input.login_with)?,
                language: pick(take("language"), input.language)?,
                roles: pick(take("roles"), input.roles)?,
                team_ids: pick(take("team_ids"), input.team_ids)?,
                max_chats: pick(take("max_chats"), input.max_chats)?,
                landline_phone: pick(take("landline_phone"), input.landline_phone)?,
                mobile_phone: pick(take("mobile_phone"), input.mobile_phone)?,
                job_title: pick(take("job_title"), input.job_title)?,
                location: pick(take("location"), input.location)?,
                can_view_colleagues_chats: take("can_view_colleagues_chats")
                    .then_some(input.can_view_colleagues_chats),
            },
        ))
    })
}

const MAX_ROLES: usize = 32;
const MAX_TEAMS: usize = 256;

const MAX_CHATS: u32 = 1000;

/// Refuses a repeated field with more than `max` entries.
fn bounded(len: usize, max: usize) -> Result<(), ParseError> {
    if len > max {
        Err(ParseError::new(
            Reason::InvalidArgument,
            format!("at most {max} entries"),
        ))
    } else {
        Ok(())
    }
}
pub fn encode_page_token(key: &UserPageKey, fingerprint: String) -> String {
    encode_cursor(&key.sort_key, &key.user_id, fingerprint)
}

pub fn decode_page_token(raw: &str, fingerprint: &str) -> Result<Option<UserPageKey>, ParseError> {
    Ok(decode_cursor(raw, fingerprint)?
        .map(|(sort_key, user_id)| UserPageKey { sort_key, user_id }))
}

/// The filters ListUsers and ExportUsers share, as they come off the wire.
pub struct UserFilters {
    pub query: String,
    pub role: String,
    pub team_id: String,
    pub state: i32,
    pub locked: Option<bool>,
    pub presence_status: i32,
}

/// Longest free-text query, in characters.
const QUERY_MAX: usize = 200;

/// Parses the shared filters; each bad one is recorded in `v` under its
/// field name, and then the result is `None`.
pub fn parse_user_filters(v: &mut Violations, filters: UserFilters) -> Option<UserCriteria> {
    let UserFilters {
        query,
        role,
        team_id,
        state,
        locked,
        presence_status,
    } = filters;
    let query = Some(query.trim().to_owned()).filter(|q| !q.is_empty());
    let query = v.check(
        "query",
        match query {
            Some(q) if q.chars().count() > QUERY_MAX => Err(ParseError::new(
                Reason::InvalidArgument,
                format!("must be at most {QUERY_MAX} characters"),
            )),
            other => Ok(other),
        },
    );
    let role = v.check(
        "role",
        (!role.trim().is_empty())
            .then(|| RoleName::parse(&role))
            .transpose(),
    );
    let team = v.check(
        "team_id",
        (!team_id.trim().is_empty())
            .then(|| TeamId::parse(&team_id))
            .transpose(),
    );
    let state = v.check("state", parse_user_state_filter(state));
    let presence = v.check(
        "presence_status",
        (presence_status != pb::PresenceStatus::Unspecified as i32)
            .then(|| parse_status(presence_status))
            .transpose(),
    );
    Some(UserCriteria {
        query: query?,
        role: role?,
        team: team?,
        state: state?,
        locked,
        presence: presence?,
    })
}
