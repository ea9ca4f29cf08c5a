//! Services whose RPCs are part of the contract but not served yet: every
//! RPC answers `UNIMPLEMENTED` through the generated default methods.

use super::pb::report_service_server::ReportService;

pub struct ReportApi;
impl ReportService for ReportApi {}
