//! Wire ⇄ domain conversions. Parsing the wire types is the only place input
//! is checked; every offending field is reported at once, by its path.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::pb;
use crate::{
    domain::{
        ApiKey, DisplayName, Email, LoginId, LoginWith, PresenceStatus, ProfileText, RoleName,
        TeamId, User, UserId, UserPageKey, UserState,
    },
    error::{Error, FieldViolation, ParseError, Reason, Result, quoted},
    users::{NewUser, UserPatch},
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

pub fn parse_time(raw: prost_types::Timestamp) -> Result<DateTime<Utc>, ParseError> {
    u32::try_from(raw.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(raw.seconds, nanos))
        .ok_or_else(|| ParseError::new(Reason::InvalidArgument, "is not a valid time"))
}

/// A time range whose either end may be open.
pub type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// An optional range of a listing's `start_time` (inclusive) and `end_time`
/// (exclusive): each bound a valid time, the end after the start. `None`
/// when a violation was recorded.
pub fn parse_time_range(
    v: &mut Violations,
    start: Option<prost_types::Timestamp>,
    end: Option<prost_types::Timestamp>,
) -> Option<TimeRange> {
    let start = v.check("start_time", start.map(parse_time).transpose());
    let end = v.check("end_time", end.map(parse_time).transpose());
    if let (Some(Some(start)), Some(Some(end))) = (start, end)
        && end <= start
    {
        v.check::<()>(
            "end_time",
            Err(ParseError::new(
                Reason::InvalidTimeRange,
                "must be after start_time",
            )),
        );
        return None;
    }
    Some((start?, end?))
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn parse_status(raw: i32) -> Result<PresenceStatus, ParseError> {
    match pb::PresenceStatus::try_from(raw) {
        Ok(pb::PresenceStatus::Offline) => Ok(PresenceStatus::Offline),
        Ok(pb::PresenceStatus::Unavailable) => Ok(PresenceStatus::Unavailable),
        Ok(pb::PresenceStatus::Available) => Ok(PresenceStatus::Available),
        _ => Err(ParseError::new(
            Reason::InvalidStatus,
            format!("{raw} is not a presence status"),
        )),
    }
}

pub fn presence_status(status: PresenceStatus) -> pb::PresenceStatus {
    match status {
        PresenceStatus::Offline => pb::PresenceStatus::Offline,
        PresenceStatus::Unavailable => pb::PresenceStatus::Unavailable,
        PresenceStatus::Available => pb::PresenceStatus::Available,
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

/// A message field the request must set.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::invalid(ParseError::new(Reason::InvalidArgument, "is required").at(field))
    })
}

/// An empty etag means "regardless of concurrent changes".
pub fn etag_of(etag: String) -> Option<String> {
    Some(etag.trim().to_owned()).filter(|e| !e.is_empty())
}

/// Longest suspension reason (of a user or an org), in characters.
pub const SUSPEND_REASON_MAX: usize = 150;

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

/// The fields an update mask names, without the message's prefix (`team.name`
/// and `name` both mean `name`). An empty mask or an unknown field is refused:
/// guessing what a client meant to change is worse than saying no.
pub fn mask_fields(
    mask: Option<prost_types::FieldMask>,
    prefix: &str,
    allowed: &[&'static str],
) -> Result<Vec<&'static str>> {
    let invalid = |message: String| {
        Error::invalid(ParseError::new(Reason::InvalidFieldMask, message).at("update_mask"))
    };
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(invalid(format!(
            "name the fields to change, among: {}",
            allowed.join(", ")
        )));
    }
    // Each field at most twice (bare and prefixed): more is not a real mask.
    if paths.len() > allowed.len() * 2 {
        return Err(invalid("names too many fields".into()));
    }
    let mut fields = Vec::with_capacity(paths.len());
    for path in &paths {
        let bare = path
            .trim()
            .strip_prefix(prefix)
            .and_then(|p| p.strip_prefix('.'))
            .unwrap_or(path.trim());
        match allowed.iter().find(|f| **f == bare) {
            Some(field) => fields.push(*field),
            None => {
                return Err(invalid(format!(
                    "{} cannot be updated; allowed: {}",
                    crate::error::quoted(path),
                    allowed.join(", ")
                )));
            }
        }
    }
    Ok(fields)
}

pub fn masked(fields: &[&str], field: &str) -> bool {
    fields.contains(&field)
}

/// Longest idempotency key accepted (AIP-155 suggests a UUID).
const MAX_REQUEST_ID: usize = 100;

pub fn parse_request_id(raw: &str) -> Result<Option<String>, ParseError> {
    let id = raw.trim();
    if id.chars().count() > MAX_REQUEST_ID {
        return Err(ParseError::new(
            Reason::InvalidArgument,
            format!("must be at most {MAX_REQUEST_ID} characters"),
        ));
    }
    Ok(Some(id.to_owned()).filter(|r| !r.is_empty()))
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

/// `page_size`: 0 means the default; negative is invalid; large is capped.
pub fn page_size(raw: i32) -> Result<u64, ParseError> {
    page_size_within(raw, 50, 500)
}

/// A page size: `default` for 0, at most `max`, never negative.
pub fn page_size_within(raw: i32, default: u64, max: u64) -> Result<u64, ParseError> {
    match raw {
        0 => Ok(default),
        n if n < 0 => Err(ParseError::new(
            Reason::InvalidArgument,
            "must not be negative",
        )),
        n => Ok((n as u64).min(max)),
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
    encode_cursor(&key.sort_key, &key.user_id, fingerprint)
}

pub fn decode_page_token(raw: &str, fingerprint: &str) -> Result<Option<UserPageKey>, ParseError> {
    Ok(decode_cursor(raw, fingerprint)?
        .map(|(sort_key, user_id)| UserPageKey { sort_key, user_id }))
}

/// A page token for any listing ordered by a key and then an id.
pub fn encode_cursor(key: &str, id: &str, fingerprint: String) -> String {
    let token = PageToken {
        k: key.to_owned(),
        i: id.to_owned(),
        f: fingerprint,
    };
    // Serialising a struct of strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// The key and id of a token [`encode_cursor`] made with the same
/// fingerprint; `None` for an empty token (the first page).
pub fn decode_cursor(raw: &str, fingerprint: &str) -> Result<Option<(String, String)>, ParseError> {
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
    Ok(Some((token.k, token.i)))
}

/// The most ids a request may name in one repeated field.
pub const MAX_NAMED: usize = 1000;

/// At most `MAX_NAMED` ids, sorted and without repeats, so the same set
/// makes the same page tokens.
pub fn parse_ids<T: Ord>(
    v: &mut Violations,
    field: &str,
    raw: &[String],
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Option<Vec<T>> {
    if raw.len() > MAX_NAMED {
        v.check::<()>(
            field,
            Err(ParseError::new(
                Reason::InvalidArgument,
                format!("name at most {MAX_NAMED}"),
            )),
        );
        return None;
    }
    let parsed: Vec<Option<T>> = raw.iter().map(|id| v.check(field, parse(id))).collect();
    let mut ids: Vec<T> = parsed.into_iter().collect::<Option<_>>()?;
    ids.sort();
    ids.dedup();
    Some(ids)
}

/// A page token over (time, id), for listings ordered by time: what
/// [`decode_time_cursor`] reads back.
pub fn encode_time_cursor(at: DateTime<Utc>, id: &str, fingerprint: String) -> String {
    encode_cursor(
        &at.to_rfc3339_opts(SecondsFormat::Nanos, true),
        id,
        fingerprint,
    )
}

pub fn decode_time_cursor(
    raw: &str,
    fingerprint: &str,
) -> Result<Option<(DateTime<Utc>, String)>, ParseError> {
    let Some((time, id)) = decode_cursor(raw, fingerprint)? else {
        return Ok(None);
    };
    let at = DateTime::parse_from_rfc3339(&time).map_err(|_| {
        ParseError::new(
            Reason::InvalidPageToken,
            "is not a token this listing issued",
        )
    })?;
    Ok(Some((at.with_timezone(&Utc), id)))
}

impl From<&ApiKey> for pb::ApiKey {
    fn from(key: &ApiKey) -> Self {
        pb::ApiKey {
            api_key_id: key.id.to_string(),
            name: key.name.as_str().to_owned(),
            scopes: key.scopes.iter().map(|p| p.as_str().to_owned()).collect(),
            created_at: Some(timestamp(key.created_at)),
            created_by: key.created_by.map(|id| id.to_string()).unwrap_or_default(),
            last_used_at: key.last_used_at.map(timestamp),
            revoked_at: key.revoked_at.map(timestamp),
            secret_prefix: key.secret_prefix.clone(),
        }
    }
}
