//! The one mapping from [`Error`] to `tonic::Status`, with google.rpc error
//! details: every status carries an `ErrorInfo` whose reason is a stable code
//! (domain `roster.v1`); invalid input also carries a `BadRequest` naming each
//! offending field. Internal causes are logged with their chain, never sent.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{Error, Reason};

pub const ERROR_DOMAIN: &str = "roster.v1";

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::new();
        let (code, reason) = match err {
            Error::InvalidArgument(violations) => {
                let reason = match violations.as_slice() {
                    [only] => only.reason,
                    _ => Reason::InvalidArgument,
                };
                let mut metadata = HashMap::new();
                for v in &violations {
                    details.add_bad_request_violation(&v.field, &v.description);
                    metadata.insert(v.field.clone(), v.reason.as_str().to_owned());
                }
                let summary = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                details.set_error_info(reason.as_str(), ERROR_DOMAIN, metadata);
                return Status::with_error_details(
                    Code::InvalidArgument,
                    format!("invalid argument: {summary}"),
                    details,
                );
            }
            Error::NotFound { reason, .. } => (Code::NotFound, reason),
            Error::AlreadyExists { reason, .. } => (Code::AlreadyExists, reason),
            Error::FailedPrecondition {
                reason,
                ref message,
                metadata: ref facts,
            } => {
                details.add_precondition_failure_violation(reason.as_str(), "", message);
                metadata.extend(facts.iter().map(|(k, v)| (k.to_string(), v.clone())));
                (Code::FailedPrecondition, reason)
            }
            Error::PermissionDenied { reason, .. } => (Code::PermissionDenied, reason),
            Error::Unauthenticated(reason) => (Code::Unauthenticated, reason),
            Error::ResourceExhausted {
                reason,
                ref message,
                metadata: ref facts,
            } => {
                details.add_quota_failure_violation(reason.as_str(), message);
                metadata.extend(facts.iter().map(|(k, v)| (k.to_string(), v.clone())));
                (Code::ResourceExhausted, reason)
            }
            Error::OutOfRange { reason, .. } => (Code::OutOfRange, reason),
            Error::Unavailable { reason, .. } => (Code::Unavailable, reason),
            Error::Aborted { reason, .. } => (Code::Aborted, reason),
            Error::Malformed(_) => (Code::InvalidArgument, Reason::MalformedRequest),
            Error::DeadlineExceeded(_) => (Code::DeadlineExceeded, Reason::DeadlineExceeded),
            Error::Unimplemented(_) => (Code::Unimplemented, Reason::NotImplemented),
            Error::Internal(cause) => {
                tracing::error!(error = %ErrorChain(&*cause), "internal error");
                (Code::Internal, Reason::Internal)
            }
        };
        details.set_error_info(reason.as_str(), ERROR_DOMAIN, metadata);
        Status::with_error_details(code, message, details)
    }
}

/// Displays an error with its sources: `a: b: c`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}
