//! Wire ⇄ domain conversions. Parsing the wire types is the only place input
//! is checked; every offending field is reported at once, by its path.
//!
//! One rule, one file per resource: `From<&T> for pb::X` outward, `parse_*`
//! (or `TryFrom`) inward. This file holds what every resource shares:
//! violations, times and durations, masks, request ids and page tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod api_key;
mod audit;
mod import;
mod org;
mod platform;
mod presence;
mod report;
mod user;

pub use import::parse_import_options;
pub use presence::parse_status;
pub use user::{
    UserFilters, decode_page_token, encode_page_token, login_with, parse_login_with,
    parse_new_user, parse_user_filters, parse_user_update,
};

use crate::error::{Error, FieldViolation, ParseError, Reason, Result};

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

/// A duration on the wire; at most `i64::MAX` seconds.
pub fn duration(d: impl Into<WireDuration>) -> prost_types::Duration {
    let WireDuration(d) = d.into();
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

/// What [`duration`] takes: a std duration, or a non-negative chrono one
/// (a negative one is zero).
pub struct WireDuration(std::time::Duration);

impl From<std::time::Duration> for WireDuration {
    fn from(d: std::time::Duration) -> Self {
        WireDuration(d)
    }
}

impl From<chrono::TimeDelta> for WireDuration {
    fn from(d: chrono::TimeDelta) -> Self {
        WireDuration(d.to_std().unwrap_or_default())
    }
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
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
