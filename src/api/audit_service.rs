//! AuditService: reading the audit log. It has no RPC that edits or deletes
//! an entry, by design.

use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::{
        Violations, decode_time_cursor, encode_time_cursor, fingerprint, page_size,
        parse_time_range,
    },
    pb::{self, audit_service_server::AuditService},
};
use crate::{
    audit::AuditLog,
    domain::{ActionFilter, AuditCriteria, AuditPageKey, UserId},
    error::{Error, ParseError, Reason},
};

pub struct AuditApi {
    log: AuditLog,
}

impl AuditApi {
    pub fn new(log: AuditLog) -> Self {
        Self { log }
    }
}

/// Longest accepted action filter (real actions are far shorter).
const MAX_ACTION_LEN: usize = 100;

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListAuditEventsRequest {
            page_size: raw_page_size,
            page_token,
            actor_id,
            actor_kind,
            target_user_id,
            action,
            start_time,
            end_time,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let actor_id = v.check("actor_id", optional(&actor_id, parse_uuid));
        let actor_kind = v.check("actor_kind", parse_actor_kind(actor_kind));
        let target = v.check("target_user_id", optional(&target_user_id, UserId::parse));
        let action = v.check("action", optional(&action, parse_action));
        let range = parse_time_range(&mut v, start_time, end_time);
        let criteria = v.finish(|| {
            let (start, end) = range?;
            Some(AuditCriteria {
                actor_id: actor_id?,
                actor_kind: actor_kind?,
                target_user_id: target?,
                action: action?,
                start,
                end,
            })
        })?;
        let print = fingerprint(&criteria);
        let after = decode_time_cursor(&page_token, &print)
            .map_err(|e| Error::invalid(e.at("page_token")))?
            .map(|(occurred_at, id)| AuditPageKey { occurred_at, id });
        let page = self
            .log
            .list(&principal, criteria, after, size.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: page.events.iter().map(pb::AuditEvent::from).collect(),
            next_page_token: page
                .next
                .map(|key| encode_time_cursor(key.occurred_at, &key.id, print))
                .unwrap_or_default(),
        }))
    }
}

/// An empty filter means "any".
fn optional<T>(
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, ParseError> {
    let raw = raw.trim();
    if raw.is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

/// A user or API key id, as stored: a hyphenated lower-case UUID.
fn parse_uuid(raw: &str) -> Result<String, ParseError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ParseError::new(Reason::InvalidId, "must be a UUID"))
}

fn parse_actor_kind(raw: i32) -> Result<Option<&'static str>, ParseError> {
    match pb::AuditActorKind::try_from(raw) {
        Ok(pb::AuditActorKind::Unspecified) => Ok(None),
        Ok(pb::AuditActorKind::User) => Ok(Some("user")),
        Ok(pb::AuditActorKind::ApiKey) => Ok(Some("api_key")),
        Ok(pb::AuditActorKind::System) => Ok(Some("system")),
        Ok(pb::AuditActorKind::Anonymous) => Ok(Some("anonymous")),
        Err(_) => Err(ParseError::new(
            Reason::InvalidArgument,
            format!("{raw} is not an AuditActorKind"),
        )),
    }
}

/// An exact action (`user.suspend`) or, ending with `.`, a prefix (`user.`).
fn parse_action(raw: &str) -> Result<ActionFilter, ParseError> {
    let valid = raw.len() <= MAX_ACTION_LEN
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if !valid {
        return Err(ParseError::new(
            Reason::InvalidArgument,
            format!(
                "{} is not an action: lower-case letters, digits, '_' and '.', at most {MAX_ACTION_LEN}",
                crate::error::quoted(raw)
            ),
        ));
    }
    Ok(if raw.ends_with('.') {
        ActionFilter::Prefix(raw.to_owned())
    } else {
        ActionFilter::Exactly(raw.to_owned())
    })
}
