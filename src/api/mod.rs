//! The gRPC surface: generated code ([`pb`]), wire ⇄ domain conversions, the
//! one error → status mapping, the authentication layer and one adapter per
//! service. Handlers authenticate (middleware), convert, call a use case and
//! convert back; they hold no business rules and no SQL.

pub mod access;
mod audit_service;
mod auth_service;
mod bearer;
mod convert;
mod deadline;
mod middleware;
mod org_service;
mod platform_service;
mod presence_service;
mod report_service;
mod status;
mod transfer;
mod user_service;
pub mod wire;

use tonic::Request;

pub use audit_service::AuditApi;
pub use auth_service::AuthApi;
pub use bearer::Bearer;
pub use deadline::DeadlineLayer;
pub use middleware::AuthLayer;
pub use org_service::OrgApi;
pub use platform_service::PlatformApi;
pub use presence_service::{PassThrough, PresenceServer, WATCH_PATH};
pub use report_service::ReportApi;
pub use status::ERROR_DOMAIN;
pub use user_service::UserApi;

use crate::{
    audit::Origin,
    auth::Principal,
    error::{Error, Reason},
};

pub mod pb {
    //! Code generated from `proto/roster/v1`.
    tonic::include_proto!("roster.v1");
    include!(concat!(env!("OUT_DIR"), "/roster_nul_checks.rs"));

    /// The encoded descriptor set of `roster.v1`, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/roster_descriptor.bin"));

    /// The encoded descriptor set of `google.rpc`'s error details and
    /// `Status`, served by reflection so a client can decode the details of
    /// an error with nothing else.
    pub const ERROR_DETAILS_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/error_details_descriptor.bin"));
}

/// Fully qualified names of the roster.v1 services, for health and reflection.
pub const SERVICE_NAMES: [&str; 7] = [
    "roster.v1.AuthService",
    "roster.v1.UserService",
    "roster.v1.PresenceService",
    "roster.v1.OrgService",
    "roster.v1.AuditService",
    "roster.v1.ReportService",
    "roster.v1.PlatformService",
];

/// Whether `path` (`/package.Service/Method`) is an RPC this server
/// serves: one of the permission table's, health or reflection.
pub fn is_rpc(path: &str) -> bool {
    access::rule_for(path).is_some()
        || matches!(
            path,
            "/grpc.health.v1.Health/Check"
                | "/grpc.health.v1.Health/Watch"
                | "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
                | "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        )
}

/// The authenticated caller (put there by [`AuthLayer`]) and where the
/// request came from.
fn caller<T>(req: &Request<T>) -> Result<(Principal, Origin), Error> {
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(Error::Unauthenticated(Reason::MissingCredentials))?;
    Ok((principal, origin(req)))
}

fn origin<T>(req: &Request<T>) -> Origin {
    Origin {
        request_id: req
            .extensions()
            .get::<middleware::RequestId>()
            .map(|id| id.0.clone()),
        peer: req.remote_addr().map(|a| a.to_string()),
    }
}
