//! PlatformService: tenants for the platform's operators. The
//! authentication layer admits only platform keys here; each handler reads
//! the [`PlatformCaller`] it left, converts, calls [`Platform`] and converts
//! back.

use tonic::{Request, Response, Status};

use super::{
    convert::{
        SUSPEND_REASON_MAX, Violations, decode_cursor, decode_time_cursor, encode_cursor,
        encode_time_cursor, etag_of, fingerprint, mask_fields, masked, page_size, parse_request_id,
        parse_time_range, required, timestamp,
    },
    origin,
    pb::{self, platform_service_server::PlatformService},
};
use crate::{
    audit::PlatformAction,
    auth::PlatformCaller,
    domain::{
        DisplayName, Email, OrgId, OrgSettings, OrgSlug, OrgState, Password, PlatformAuditCriteria,
        ProfileText, SettingsChange, setting_in,
    },
    error::{Error, ParseError, Reason, Result},
    platform::{NewOrg, Platform, first_admin},
};

pub struct PlatformApi {
    platform: Platform,
}

impl PlatformApi {
    pub fn new(platform: Platform) -> Self {
        Self { platform }
    }
}

/// The fields UpdateOrg may change.
const ORG_FIELDS: &[&str] = &["display_name", "seat_limit"];

/// The platform key the authentication layer admitted.
fn platform_caller<T>(req: &Request<T>) -> Result<PlatformCaller> {
    req.extensions()
        .get::<PlatformCaller>()
        .cloned()
        .ok_or(Error::Unauthenticated(Reason::MissingCredentials))
}

#[tonic::async_trait]
impl PlatformService for PlatformApi {
    #[tracing::instrument(skip_all, fields(slug = %req.get_ref().slug))]
    async fn create_org(
        &self,
        req: Request<pb::CreateOrgRequest>,
    ) -> Result<Response<pb::CreateOrgResponse>, Status> {
        let caller = platform_caller(&req)?;
        let origin = origin(&req);
        let pb::CreateOrgRequest {
            slug,
            display_name,
            seat_limit,
            admin,
            admin_password,
            request_id,
        } = req.into_inner();
        let admin = required(admin, "admin")?;
        let mut v = Violations::default();
        let slug = v.check("slug", OrgSlug::parse(&slug));
        let name = v.check("display_name", DisplayName::parse(&display_name));
        let seat_limit = v.check("seat_limit", parse_seat_limit(seat_limit));
        let email = v.check("admin.email", Email::parse(&admin.email));
        let admin_name = v.check(
            "admin.display_name",
            DisplayName::parse(&admin.display_name),
        );
        let password = v.check(
            "admin_password",
            match admin_password.as_str() {
                "" => Ok(None),
                raw => Password::parse(raw, Password::MIN_LEN).map(Some),
            },
        );
        let request_id = v.check("request_id", parse_request_id(&request_id));
        let input = v.finish(|| {
            Some(NewOrg {
                slug: slug?,
                name: name?.as_str().to_owned(),
                seat_limit: seat_limit?,
                admin: first_admin(email?, admin_name?),
                admin_password: password?,
                request_id: request_id?,
            })
        })?;
        let created = self.platform.create_org(&caller, &origin, input).await?;
        Ok(Response::new(pb::CreateOrgResponse {
            org: Some(pb::Org::from(&created.org)),
            admin: created.admin.as_ref().map(Into::into),
            invite_expires_at: created.invite_expires_at.map(timestamp),
        }))
    }

    #[tracing::instrument(skip_all, fields(org_id = %req.get_ref().org_id))]
    async fn get_org(
        &self,
        req: Request<pb::GetOrgRequest>,
    ) -> Result<Response<pb::GetOrgResponse>, Status> {
        platform_caller(&req)?;
        let org_id = parse_org_id(&req.get_ref().org_id)?;
        let view = self.platform.get_org(org_id).await?;
        Ok(Response::new(pb::GetOrgResponse {
            org: Some(pb::Org::from(&view)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_orgs(
        &self,
        req: Request<pb::ListOrgsRequest>,
    ) -> Result<Response<pb::ListOrgsResponse>, Status> {
        platform_caller(&req)?;
        let pb::ListOrgsRequest {
            page_size: raw_page_size,
            page_token,
            slug_prefix,
            state,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let prefix = v.check("slug_prefix", parse_slug_prefix(&slug_prefix));
        let state = v.check("state", parse_state_filter(state));
        let (size, prefix, state) = v.finish(|| Some((size?, prefix?, state?)))?;
        let print = fingerprint(&(&prefix, state));
        let after = decode_cursor(&page_token, &print)
            .and_then(|key| key.map(|(slug, _)| OrgSlug::parse(&slug)).transpose())
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let page = self.platform.list_orgs(&prefix, state, after, size).await?;
        Ok(Response::new(pb::ListOrgsResponse {
            orgs: page.orgs.iter().map(pb::Org::from).collect(),
            next_page_token: page
                .next
                .map(|slug| encode_cursor(slug.as_str(), "", print))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_org(
        &self,
        req: Request<pb::UpdateOrgRequest>,
    ) -> Result<Response<pb::UpdateOrgResponse>, Status> {
        let caller = platform_caller(&req)?;
        let origin = origin(&req);
        let pb::UpdateOrgRequest { org, update_mask } = req.into_inner();
        let fields = mask_fields(update_mask, "org", ORG_FIELDS)?;
        let org = required(org, "org")?;
        let mut v = Violations::default();
        let org_id = v.check("org.org_id", OrgId::parse(&org.org_id));
        let mut change = SettingsChange::default();
        if masked(&fields, "display_name") {
            change.name = v.check("org.display_name", DisplayName::parse(&org.display_name));
        }
        if masked(&fields, "seat_limit") {
            change.seat_limit = v.check("org.seat_limit", parse_seat_limit(org.seat_limit));
        }
        let (org_id, change) = v.finish(|| Some((org_id?, change)))?;
        let view = self
            .platform
            .update_org(&caller, &origin, org_id, change, etag_of(org.etag))
            .await?;
        Ok(Response::new(pb::UpdateOrgResponse {
            org: Some(pb::Org::from(&view)),
        }))
    }

    #[tracing::instrument(skip_all, fields(org_id = %req.get_ref().org_id))]
    async fn suspend_org(
        &self,
        req: Request<pb::SuspendOrgRequest>,
    ) -> Result<Response<pb::SuspendOrgResponse>, Status> {
        let caller = platform_caller(&req)?;
        let origin = origin(&req);
        let pb::SuspendOrgRequest { org_id, reason } = req.into_inner();
        let mut v = Violations::default();
        let org_id = v.check("org_id", OrgId::parse(&org_id));
        let reason = v.check("reason", ProfileText::parse(&reason, SUSPEND_REASON_MAX));
        let (org_id, reason) = v.finish(|| Some((org_id?, reason?)))?;
        let view = self
            .platform
            .suspend_org(&caller, &origin, org_id, reason)
            .await?;
        Ok(Response::new(pb::SuspendOrgResponse {
            org: Some(pb::Org::from(&view)),
        }))
    }

    #[tracing::instrument(skip_all, fields(org_id = %req.get_ref().org_id))]
    async fn reactivate_org(
        &self,
        req: Request<pb::ReactivateOrgRequest>,
    ) -> Result<Response<pb::ReactivateOrgResponse>, Status> {
        let caller = platform_caller(&req)?;
        let origin = origin(&req);
        let org_id = parse_org_id(&req.get_ref().org_id)?;
        let view = self
            .platform
            .reactivate_org(&caller, &origin, org_id)
            .await?;
        Ok(Response::new(pb::ReactivateOrgResponse {
            org: Some(pb::Org::from(&view)),
        }))
    }

    #[tracing::instrument(skip_all, fields(org_id = %req.get_ref().org_id))]
    async fn delete_org(
        &self,
        req: Request<pb::DeleteOrgRequest>,
    ) -> Result<Response<pb::DeleteOrgResponse>, Status> {
        let caller = platform_caller(&req)?;
        let origin = origin(&req);
        let org_id = parse_org_id(&req.get_ref().org_id)?;
        let users_removed = self.platform.delete_org(&caller, &origin, org_id).await?;
        Ok(Response::new(pb::DeleteOrgResponse { users_removed }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_platform_audit_events(
        &self,
        req: Request<pb::ListPlatformAuditEventsRequest>,
    ) -> Result<Response<pb::ListPlatformAuditEventsResponse>, Status> {
        platform_caller(&req)?;
        let pb::ListPlatformAuditEventsRequest {
            page_size: raw_page_size,
            page_token,
            org_id,
            action,
            start_time,
            end_time,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let org_id = v.check(
            "org_id",
            match org_id.trim() {
                "" => Ok(None),
                raw => OrgId::parse(raw).map(Some),
            },
        );
        let action = v.check("action", parse_action(&action));
        let range = parse_time_range(&mut v, start_time, end_time);
        let (size, criteria) = v.finish(|| {
            let (start, end) = range?;
            Some((
                size?,
                PlatformAuditCriteria {
                    org_id: org_id?,
                    action: action?,
                    start,
                    end,
                },
            ))
        })?;
        let print = fingerprint(&criteria);
        let after = decode_time_cursor(&page_token, &print)
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let (entries, next) = self.platform.list_audit(&criteria, after, size).await?;
        Ok(Response::new(pb::ListPlatformAuditEventsResponse {
            events: entries.iter().map(pb::PlatformAuditEvent::from).collect(),
            next_page_token: next
                .map(|(at, id)| encode_time_cursor(at, &id, print))
                .unwrap_or_default(),
        }))
    }
}

fn parse_org_id(raw: &str) -> Result<OrgId> {
    OrgId::parse(raw).map_err(|e| Error::invalid(e.at("org_id")))
}

/// 0 means no limit.
fn parse_seat_limit(raw: u32) -> Result<Option<u32>, ParseError> {
    match raw {
        0 => Ok(None),
        n => setting_in(n, 1..=OrgSettings::SEAT_LIMIT_MAX).map(Some),
    }
}

/// A slug's beginning: what a slug may hold, or nothing.
fn parse_slug_prefix(raw: &str) -> Result<String, ParseError> {
    match raw.trim() {
        "" => Ok(String::new()),
        prefix => OrgSlug::parse(prefix).map(|s| s.as_str().to_owned()),
    }
}

fn parse_state_filter(raw: i32) -> Result<Option<OrgState>, ParseError> {
    match pb::OrgState::try_from(raw) {
        Ok(pb::OrgState::Unspecified) => Ok(None),
        Ok(pb::OrgState::Active) => Ok(Some(OrgState::Active)),
        Ok(pb::OrgState::Suspended) => Ok(Some(OrgState::Suspended)),
        Err(_) => Err(ParseError::new(
            Reason::InvalidArgument,
            format!("{raw} is not an OrgState"),
        )),
    }
}

/// One of the platform log's actions, or nothing.
fn parse_action(raw: &str) -> Result<Option<String>, ParseError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    PlatformAction::from_name(raw)
        .map(|a| Some(a.as_str().to_owned()))
        .ok_or_else(|| {
            let all: Vec<&str> = PlatformAction::ALL.iter().map(|a| a.as_str()).collect();
            ParseError::new(
                Reason::InvalidArgument,
                format!(
                    "{} is not a platform action; one of: {}",
                    crate::error::quoted(raw),
                    all.join(", ")
                ),
            )
        })
}
