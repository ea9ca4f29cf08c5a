//! Services whose RPCs are part of the contract but not served yet: every
//! RPC answers `UNIMPLEMENTED` through the generated default methods.

use super::pb::{presence_service_server::PresenceService, report_service_server::ReportService};

pub struct PresenceApi;
impl PresenceService for PresenceApi {}

pub struct ReportApi;
impl ReportService for ReportApi {}
