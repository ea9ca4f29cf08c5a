//! Services whose RPCs are part of the contract but not served yet: every
//! RPC answers `UNIMPLEMENTED` through the generated default methods.

use super::pb::{
    audit_service_server::AuditService, org_service_server::OrgService,
    presence_service_server::PresenceService, report_service_server::ReportService,
};

pub struct OrgApi;
impl OrgService for OrgApi {}

pub struct PresenceApi;
impl PresenceService for PresenceApi {}

pub struct AuditApi;
impl AuditService for AuditApi {}

pub struct ReportApi;
impl ReportService for ReportApi {}
