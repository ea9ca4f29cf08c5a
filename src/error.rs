//! The one error type of Roster's use cases.
//!
//! Each variant says which gRPC status it becomes (the mapping lives in
//! `api::status`, the only place that knows tonic). Every client-facing error
//! carries a stable [`Reason`] code; internal causes are logged, never sent.

use std::fmt;

use crate::named::named_enum;

named_enum! {
    /// Stable, documented reason codes sent as `google.rpc.ErrorInfo.reason`
    /// (domain `roster.v1`). Clients may match on them; never rename one.
    /// Each variant is its name in UpperCamelCase (a test keeps it so).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        /// A field is missing or malformed; see the BadRequest field violations.
        InvalidArgument => "INVALID_ARGUMENT",
        InvalidEmail => "INVALID_EMAIL",
        InvalidName => "INVALID_NAME",
        InvalidLoginId => "INVALID_LOGIN_ID",
        InvalidText => "INVALID_TEXT",
        UnknownRole => "UNKNOWN_ROLE",
        UnknownTeam => "UNKNOWN_TEAM",
        InvalidPageToken => "INVALID_PAGE_TOKEN",
        InvalidId => "INVALID_ID",
        WeakPassword => "WEAK_PASSWORD",
        EmailTaken => "EMAIL_TAKEN",
        LoginIdTaken => "LOGIN_ID_TAKEN",
        SeatLimitReached => "SEAT_LIMIT_REACHED",
        InvalidCredentials => "INVALID_CREDENTIALS",
        /// A session token whose session ran out (its lifetime, the org's
        /// session lifetime, has passed): sign in again. The token's holder
        /// learns only about their own session.
        SessionExpired => "SESSION_EXPIRED",
        MissingCredentials => "MISSING_CREDENTIALS",
        PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
        PermissionDenied => "PERMISSION_DENIED",
        UserNotFound => "USER_NOT_FOUND",
        ImmutableField => "IMMUTABLE_FIELD",
        InvalidFieldMask => "INVALID_FIELD_MASK",
        StaleEtag => "STALE_ETAG",
        /// Another change to the same resource committed while this call
        /// ran (no etag was involved): retry.
        ConcurrentChange => "CONCURRENT_CHANGE",
        /// The server's limit per request passed before the answer.
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        InviteExpired => "INVITE_EXPIRED",
        InviteUsed => "INVITE_USED",
        InviteRevoked => "INVITE_REVOKED",
        InvalidInvite => "INVALID_INVITE",
        UserNotInvited => "USER_NOT_INVITED",
        UserNotSuspended => "USER_NOT_SUSPENDED",
        UserAlreadySuspended => "USER_ALREADY_SUSPENDED",
        UserNotActive => "USER_NOT_ACTIVE",
        NotASession => "NOT_A_SESSION",
        UnknownScope => "UNKNOWN_SCOPE",
        ApiKeyNameTaken => "API_KEY_NAME_TAKEN",
        ApiKeyNotFound => "API_KEY_NOT_FOUND",
        SelfAction => "SELF_ACTION",
        LastAdmin => "LAST_ADMIN",
        UnsupportedImage => "UNSUPPORTED_IMAGE",
        ImageTooLarge => "IMAGE_TOO_LARGE",
        AvatarNotFound => "AVATAR_NOT_FOUND",
        BuiltinRole => "BUILTIN_ROLE",
        RoleNotFound => "ROLE_NOT_FOUND",
        RoleTaken => "ROLE_TAKEN",
        RoleInUse => "ROLE_IN_USE",
        TeamNotFound => "TEAM_NOT_FOUND",
        TeamNameTaken => "TEAM_NAME_TAKEN",
        TeamInUse => "TEAM_IN_USE",
        InvalidSetting => "INVALID_SETTING",
        /// ChangePassword: the current password given is not the caller's.
        WrongPassword => "WRONG_PASSWORD",
        /// ChangePassword: failed sign-ins locked the caller's account.
        AccountLocked => "ACCOUNT_LOCKED",
        /// A presence status the call does not accept (e.g. OFFLINE in SetAvailability).
        InvalidStatus => "INVALID_STATUS",
        /// ReportChatLoad: a count beyond the accepted range.
        InvalidChatLoad => "INVALID_CHAT_LOAD",
        /// SuspendUser without `force` on an agent with open chats.
        ActiveChats => "ACTIVE_CHATS",
        /// The user is OFFLINE, and the change needs them signed in.
        UserOffline => "USER_OFFLINE",
        /// WatchPresence: `resume_after` is beyond the org's latest sequence.
        SequenceOutOfRange => "SEQUENCE_OUT_OF_RANGE",
        /// SetAvailability AVAILABLE for a user whose roles do not handle chats.
        CannotHandleChats => "CANNOT_HANDLE_CHATS",
        /// A stream ended because the server is stopping.
        ShuttingDown => "SHUTTING_DOWN",
        /// A time range whose end is not after its start.
        InvalidTimeRange => "INVALID_TIME_RANGE",
        /// A report range longer than its granularity allows.
        RangeTooLong => "RANGE_TOO_LONG",
        /// A report range that starts before the history the server keeps.
        BeyondRetention => "BEYOND_RETENTION",
        ImportJobNotFound => "IMPORT_JOB_NOT_FOUND",
        /// An upload over the server's size limit.
        FileTooLarge => "FILE_TOO_LARGE",
        /// The client's upload stream ended with an error before its end.
        UploadInterrupted => "UPLOAD_INTERRUPTED",
        /// The database cannot be reached now; retry, here or on another replica.
        DatabaseUnavailable => "DATABASE_UNAVAILABLE",
        /// A request message that cannot be decoded (not protobuf, a string
        /// that is not UTF-8).
        MalformedRequest => "MALFORMED_REQUEST",
        /// A request message over the server's size limit.
        MessageTooLarge => "MESSAGE_TOO_LARGE",
        /// The caller's org is suspended (sessions, keys, streams, invitations).
        OrgSuspended => "ORG_SUSPENDED",
        OrgNotFound => "ORG_NOT_FOUND",
        /// CreateOrg: the slug names another org.
        OrgSlugTaken => "ORG_SLUG_TAKEN",
        /// SuspendOrg on a suspended org.
        OrgAlreadySuspended => "ORG_ALREADY_SUSPENDED",
        /// ReactivateOrg or DeleteOrg on an org that is not suspended.
        OrgNotSuspended => "ORG_NOT_SUSPENDED",
        /// A platform key on an org RPC, or an org's caller on PlatformService.
        WrongCallerKind => "WRONG_CALLER_KIND",
        NotImplemented => "NOT_IMPLEMENTED",
        Internal => "INTERNAL",
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One offending input field: its path in the request (e.g. `user.email`),
/// a reason code and a human description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub reason: Reason,
    pub description: String,
}

/// Why a value could not be parsed into a domain type; the caller knows the
/// field name and turns it into a [`FieldViolation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub reason: Reason,
    pub message: String,
}

/// Shows at most the first 40 characters of an input, quoted, so an error
/// message stays small whatever a client sent.
pub fn quoted(input: &str) -> String {
    const MAX: usize = 40;
    match input.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &input[..cut]),
        None => format!("{input:?}"),
    }
}

impl ParseError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    pub fn at(self, field: impl Into<String>) -> FieldViolation {
        FieldViolation {
            field: field.into(),
            reason: self.reason,
            description: self.message,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `INVALID_ARGUMENT` with a BadRequest listing every offending field.
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    /// `NOT_FOUND`.
    #[error("{message}")]
    NotFound { reason: Reason, message: String },
    /// `ALREADY_EXISTS`.
    #[error("{message}")]
    AlreadyExists { reason: Reason, message: String },
    /// `FAILED_PRECONDITION` with a PreconditionFailure.
    #[error("{message}")]
    FailedPrecondition {
        reason: Reason,
        message: String,
        /// Facts a client may act on (e.g. `open_chats`), sent as ErrorInfo metadata.
        metadata: Vec<(&'static str, String)>,
    },
    /// `PERMISSION_DENIED`.
    #[error("{message}")]
    PermissionDenied { reason: Reason, message: String },
    /// `UNAUTHENTICATED`, always with the same generic message for a reason,
    /// so callers cannot tell which part of a credential was wrong.
    #[error("{}", unauthenticated_message(*.0))]
    Unauthenticated(Reason),
    /// `ABORTED`: the resource changed since the caller read it (reason
    /// `STALE_ETAG`, the etag sent is old) or while the call ran (reason
    /// `CONCURRENT_CHANGE`): read it again and retry.
    #[error("{message}")]
    Aborted { reason: Reason, message: String },
    /// `RESOURCE_EXHAUSTED` with a QuotaFailure.
    #[error("{message}")]
    ResourceExhausted {
        reason: Reason,
        message: String,
        /// E.g. `limit` and `used`, sent as ErrorInfo metadata.
        metadata: Vec<(&'static str, String)>,
    },
    /// `OUT_OF_RANGE`: a position past the end (e.g. a sequence not reached yet).
    #[error("{message}")]
    OutOfRange { reason: Reason, message: String },
    /// `DEADLINE_EXCEEDED` `DEADLINE_EXCEEDED`: the server's own limit per
    /// request passed (a client's shorter deadline ends the call client-side).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// `UNAVAILABLE`: retry, on this or another replica.
    #[error("{message}")]
    Unavailable { reason: Reason, message: String },
    /// `INVALID_ARGUMENT` `MALFORMED_REQUEST`: the request message could not
    /// be decoded at all.
    #[error("the request cannot be decoded: {0}")]
    Malformed(String),
    /// `UNIMPLEMENTED`: part of the contract this server does not do yet.
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    /// `INTERNAL`; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn unauthenticated_message(reason: Reason) -> &'static str {
    match reason {
        Reason::MissingCredentials => {
            "missing or malformed authorization: expected `Bearer <token>`"
        }
        _ => "invalid credentials",
    }
}

impl Error {
    pub fn invalid(violation: FieldViolation) -> Self {
        Error::InvalidArgument(vec![violation])
    }

    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Internal(Box::new(cause))
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Error::PermissionDenied {
            reason: Reason::PermissionDenied,
            message: message.into(),
        }
    }

    /// `PERMISSION_DENIED` `ORG_SUSPENDED`: the caller's org is suspended, so
    /// none of its sessions, keys or invitations work until it is reactivated.
    pub fn org_suspended() -> Self {
        Error::PermissionDenied {
            reason: Reason::OrgSuspended,
            message: "the org is suspended".into(),
        }
    }

    pub fn org_not_found() -> Self {
        Error::NotFound {
            reason: Reason::OrgNotFound,
            message: "org not found".into(),
        }
    }

    pub fn failed_precondition(reason: Reason, message: impl Into<String>) -> Self {
        Error::FailedPrecondition {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    /// `UNAVAILABLE` `DATABASE_UNAVAILABLE`: the cause was logged where it
    /// was seen.
    pub fn database_unavailable() -> Self {
        Error::Unavailable {
            reason: Reason::DatabaseUnavailable,
            message: "the database is unavailable: retry shortly".into(),
        }
    }

    /// A copy to hand to each of several callers that shared one attempt
    /// (a batch): an outage stays an outage; anything else becomes internal,
    /// keeping its cause's text for the log.
    pub fn share(&self) -> Self {
        match self {
            Error::Unavailable { reason, message } => Error::Unavailable {
                reason: *reason,
                message: message.clone(),
            },
            Error::Internal(cause) => Error::internal(std::io::Error::other(cause.to_string())),
            other => Error::internal(std::io::Error::other(other.to_string())),
        }
    }

    /// `ABORTED` `CONCURRENT_CHANGE`: a write lost to a change committed
    /// meanwhile.
    pub fn concurrent_change() -> Self {
        Error::Aborted {
            reason: Reason::ConcurrentChange,
            message: "changed by another call meanwhile: read it again and retry".into(),
        }
    }

    pub fn team_not_found() -> Self {
        Error::NotFound {
            reason: Reason::TeamNotFound,
            message: "team not found".into(),
        }
    }

    pub fn user_not_found() -> Self {
        Error::NotFound {
            reason: Reason::UserNotFound,
            message: "user not found".into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_reason_is_its_variant_in_screaming_snake_case() {
        for &reason in Reason::ALL {
            let mut expected = String::new();
            for (i, c) in format!("{reason:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    expected.push('_');
                }
                expected.push(c.to_ascii_uppercase());
            }
            assert_eq!(reason.as_str(), expected);
            assert_eq!(Reason::from_name(reason.as_str()), Some(reason));
        }
    }
}
