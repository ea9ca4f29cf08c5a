//! How failures are reported: `error: <CODE>: <message>` and the details.

use std::error::Error as StdError;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::output::note;

#[derive(Debug)]
pub enum CliError {
    /// The server refused the call.
    Status(Status),
    /// There is no session file.
    NotSignedIn,
    /// Anything else, already phrased for the user.
    Message(String),
}

impl CliError {
    pub fn msg(message: impl Into<String>) -> Self {
        Self::Message(message.into())
    }
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        Self::Status(status)
    }
}

/// Prints the error to stderr: the status code and message, then the
/// machine-readable details the server attached, which say what to fix.
pub fn report(err: &CliError) {
    match err {
        CliError::Status(status) => {
            note(format!(
                "error: {}: {}",
                code_name(status.code()),
                status.message()
            ));
            if let Some(hint) = connection_hint(status) {
                note(format!("hint: {hint}"));
            }
            let violations = status
                .get_details_bad_request()
                .map(|bad_request| bad_request.field_violations)
                .unwrap_or_default();
            if let Some(info) = status.get_details_error_info() {
                note(format!("  reason: {}", info.reason));
                // E.g. the seat limit and count, or how many members a team
                // has; sorted so the output is stable. Entries about a field
                // are left to the field's violation below.
                let mut metadata: Vec<_> = info
                    .metadata
                    .into_iter()
                    .filter(|(key, _)| !violations.iter().any(|v| &v.field == key))
                    .collect();
                metadata.sort();
                for (key, value) in metadata {
                    note(format!("  {key}: {value}"));
                }
            }
            for violation in violations {
                note(format!("  {}: {}", violation.field, violation.description));
            }
        }
        CliError::NotSignedIn => note("error: not signed in: run rosterctl login"),
        CliError::Message(message) => note(format!("error: {message}")),
    }
}

/// What to try when the call failed in the connection rather than in the
/// server (tonic reports those as statuses too, with the cause as source).
fn connection_hint(status: &Status) -> Option<&'static str> {
    let cause = chain(status);
    if let Some(hint) = unreachable_hint(&cause) {
        Some(hint)
    } else if matches!(status.code(), Code::Unknown | Code::Internal)
        && (cause.contains("transport error") || cause.contains("h2 protocol error"))
    {
        Some(
            "the connection broke before an answer: if the server serves TLS, use an \
             https:// URL (with --ca-cert when its CA is private); if plaintext, http://",
        )
    } else {
        None
    }
}

/// What to try when nothing answered: `cause` is the error chain.
pub fn unreachable_hint(cause: &str) -> Option<&'static str> {
    if cause.contains("Connection refused") {
        Some(
            "nothing answers at that address: is rosterd running, and is the port right? \
             (--server or ROSTER_SERVER)",
        )
    } else if cause.contains("timed out") || cause.contains("deadline has elapsed") {
        Some("no answer in time: is the host reachable, and is it the right address?")
    } else {
        None
    }
}

/// The canonical gRPC name of a code, as grpcurl and the docs spell it
/// (tonic's `Display` gives a sentence instead).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its causes on one line: tonic's transport errors say only
/// "transport error" at the top.
pub fn chain(err: &dyn StdError) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Wrappers often repeat their cause's message; say it once.
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        source = cause.source();
    }
    parts.join(": ")
}
