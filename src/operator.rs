//! Offline recovery at the server's console (`rosterd admin …`), for when
//! nobody who could fix an account can sign in: the only admin locked out,
//! or their password lost; and platform keys (`rosterd platform-keys …`),
//! which no RPC can make.
//!
//! Each command runs against the configured database directly, inside one
//! org, as an operator principal holding every permission, through the
//! same use cases the API calls: the same rules, the same transaction and
//! the same audit entry (actor: the system; request id `rosterd-admin`).
//! On PostgreSQL, running replicas hear of the change as of any other; an
//! SQLite file belongs to one server, so run them while it is stopped.

use crate::{
    app::{StartError, connect},
    audit::Origin,
    auth::{Actor, Authenticator, PasswordHasher, Principal},
    config::Config,
    domain::{OrgSlug, PermissionSet, User},
    error::Error,
    mail::Mailer,
    store::Store,
    users::Users,
};

/// What the audit log records as the request of an operator command.
pub const OPERATOR_REQUEST_ID: &str = "rosterd-admin";

/// The org and user a command acts on, and the use cases to act with.
pub struct Operator {
    users: Users,
    principal: Principal,
    user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("no org with slug {0:?}")]
    NoOrg(String),
    #[error("no user signs in as {login:?} in org {org:?}")]
    NoUser { org: String, login: String },
    #[error("{}", describe(.0))]
    Refused(#[from] Error),
}

/// The error as an operator needs it: each offending field of invalid
/// input, not just "invalid argument".
fn describe(err: &Error) -> String {
    match err {
        Error::InvalidArgument(violations) => violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The configured database, which must be current.
async fn current_store(config: &Config) -> Result<Store, OperatorError> {
    let store = connect(config).await?;
    let pending = store.pending_migrations().await.map_err(StartError::from)?;
    if !pending.is_empty() {
        return Err(StartError::SchemaNotCurrent(pending).into());
    }
    Ok(store)
}

/// Platform keys at the console (`rosterd platform-keys …`): created,
/// listed and revoked straight on the database, each change in the
/// platform audit log with the operator as its actor.
pub async fn platform_keys(config: &Config) -> Result<Authenticator, OperatorError> {
    let store = current_store(config).await?;
    let hasher = PasswordHasher::new(config.hash_cost())?;
    Ok(Authenticator::new(store, hasher))
}

impl Operator {
    /// Connects to the configured database (which must be current) and
    /// finds the user who signs in as `login` (email or login id) in `org`.
    pub async fn open(config: &Config, org: &str, login: &str) -> Result<Self, OperatorError> {
        let store = current_store(config).await?;
        let no_org = || OperatorError::NoOrg(org.to_owned());
        let slug = OrgSlug::parse(org).map_err(|_| no_org())?;
        let read = store.read();
        let settings = read
            .org_by_slug(&slug)
            .await
            .map_err(Error::from)?
            .ok_or_else(no_org)?;
        let no_user = || OperatorError::NoUser {
            org: org.to_owned(),
            login: login.to_owned(),
        };
        let candidate = read
            .login_candidate(&settings, login)
            .await
            .map_err(Error::from)?
            .ok_or_else(no_user)?;
        let user = read
            .user(&settings, candidate.id)
            .await
            .map_err(Error::from)?
            .ok_or_else(no_user)?;
        let hasher = PasswordHasher::new(config.hash_cost())?;
        let mailer =
            Mailer::new(None, &config.smtp_from, &config.public_url).map_err(StartError::from)?;
        Ok(Self {
            users: Users::new(store, hasher, mailer),
            principal: Principal {
                org_id: settings.org_id,
                actor: Actor::Operator,
                permissions: PermissionSet::all(),
                team_ids: Vec::new(),
                password_change_required: false,
            },
            user,
        })
    }

    /// Sets the user's password; they must change it at their next
    /// sign-in, and every session of theirs ends.
    pub async fn reset_password(&self, password: &str) -> Result<User, OperatorError> {
        Ok(self
            .users
            .reset_password(&self.principal, &origin(), self.user.id, password, true)
            .await?)
    }

    /// Lifts the user's lock.
    pub async fn unlock(&self) -> Result<User, OperatorError> {
        Ok(self
            .users
            .unlock_user(&self.principal, &origin(), self.user.id)
            .await?)
    }
}

fn origin() -> Origin {
    Origin {
        request_id: Some(OPERATOR_REQUEST_ID.into()),
        peer: None,
    }
}
