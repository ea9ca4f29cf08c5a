//! Sign-in, sign-out and resolving a bearer token to a [`Principal`].
//!
//! Every failed sign-in looks the same to the caller (`UNAUTHENTICATED`
//! "invalid credentials", after the same argon2 work); the real reason goes
//! to the audit log.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::metrics::LoginOutcome;

use super::{API_KEY_PREFIX, Actor, PasswordHasher, Principal, new_session_token, token_hash};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    domain::{OrgSettings, OrgSlug, OrgState, SessionId, User, UserId, UserState, permissions_of},
    error::{Error, Reason, Result},
    presence,
    store::{LoginCandidate, SessionRecord, Store, WriteTx},
};

/// A new session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

#[derive(Clone)]
pub struct Authenticator {
    pub(super) store: Store,
    hasher: PasswordHasher,
}

impl Authenticator {
    pub fn new(store: Store, hasher: PasswordHasher) -> Self {
        Self { store, hasher }
    }

    pub async fn login(
        &self,
        org: &str,
        login: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<SignedIn> {
        let invalid = || Error::Unauthenticated(Reason::InvalidCredentials);
        let read = self.store.read();
        let org = match OrgSlug::parse(org) {
            Ok(slug) => read.org_by_slug(&slug).await?,
            Err(_) => None,
        };
        let Some(org) = org else {
            self.hasher.verify(password, None).await?;
            crate::metrics::get().login(LoginOutcome::UnknownOrg);
            return Err(invalid());
        };
        // PostgreSQL text cannot hold NUL: such a login names nobody, and is
        // looked up and audited as U+FFFD so its failure costs what any does.
        let login = &login.replace('\0', "\u{FFFD}");
        let candidate = read
            .login_candidate(&org, login)
            .await?
            .filter(|candidate| login_allowed(&org, candidate, login));
        let hash = candidate
            .as_ref()
            .and_then(|c| c.credential.as_ref())
            .map(|c| c.password_hash.as_str());
        let matches = self.hasher.verify(password, hash).await?;
        let org_active = org.state == OrgState::Active;
        let user = match candidate {
            Some(user)
                if matches && !user.locked && user.state == UserState::Active && org_active =>
            {
                user
            }
            // Every refusal does the same work from here: one audited failure.
            refused => {
                let why = match &refused {
                    None => LoginOutcome::UnknownLogin,
                    Some(_) if !matches => LoginOutcome::WrongPassword,
                    Some(_) if !org_active => LoginOutcome::OrgSuspended,
                    Some(user) if user.locked => LoginOutcome::AccountLocked,
                    Some(user) if user.state == UserState::Invited => {
                        LoginOutcome::InvitationNotAccepted
                    }
                    Some(_) => LoginOutcome::AccountSuspended,
                };
                self.audit_failure(&org, refused.as_ref(), login, why, origin)
                    .await?;
                return Err(invalid());
            }
        };

        let now = Utc::now();
        let tx = self.store.write().await?;
        if super::lockout::locked_now(&tx, &org, user.id).await? {
            drop(tx);
            self.audit_failure(
                &org,
                Some(&user),
                login,
                LoginOutcome::AccountLocked,
                origin,
            )
            .await?;
            return Err(invalid());
        }
        let (session_token, session) = open_session(&tx, &org, user.id, now).await?;
        // Not locked now, yet maybe locked before: then the lock ran out.
        super::lockout::end_expired_lock(&tx, &org, user.id, origin).await?;
        let repo = tx.repo();
        repo.record_login_success(user.id, now).await?;
        repo.append_audit(audit::entry(
            org.org_id,
            AuditActor::User(user.id),
            Action::Login,
            Some(user.id),
            origin,
            json!({ "session_id": session.session_id.to_string() }),
        ))
        .await?;
        let user = repo
            .user(&org, user.id)
            .await?
            .ok_or_else(Error::user_not_found)?;
        tx.commit().await?;
        crate::metrics::get().login(LoginOutcome::Success);
        Ok(SignedIn {
            session_token,
            expires_at: session.expires_at,
            user,
        })
    }

    /// Counts the failure against a known user who is not locked (locking
    /// them at the org's threshold, after ending a lock that ran out) and
    /// records why in the audit log. The same statements run for a locked
    /// or unknown user, on an id that names nobody, so every failure takes
    /// the same time.
    async fn audit_failure(
        &self,
        org: &OrgSettings,
        user: Option<&LoginCandidate>,
        login: &str,
        why: LoginOutcome,
        origin: &Origin,
    ) -> Result<()> {
        let tx = self.store.write().await?;
        let repo = tx.repo();
        // A suspended org's users are not locked out by trying meanwhile.
        let counted = user
            .filter(|u| !u.locked && org.state == OrgState::Active)
            .map_or_else(UserId::none, |u| u.id);
        super::lockout::end_expired_lock(&tx, org, counted, origin).await?;
        let locked_now = super::lockout::count_failure(&tx, org, counted, origin).await?;
        repo.append_audit(audit::entry(
            org.org_id,
            user.map_or(AuditActor::Anonymous, |u| AuditActor::User(u.id)),
            Action::LoginFailed,
            user.map(|u| u.id),
            origin,
            // The audit log words the reason with spaces ("wrong password").
            json!({ "login": login, "reason": why.as_str().replace('_', " "), "locked": locked_now }),
        ))
        .await?;
        tx.commit().await?;
        crate::metrics::get().login(why);
        Ok(())
    }

    pub async fn logout(&self, principal: &Principal, origin: &Origin) -> Result<()> {
        let Actor::User {
            user_id,
            session_id,
            ..
        } = principal.actor
        else {
            return Err(Error::failed_precondition(
                Reason::NotASession,
                "an API key has no session to end",
            ));
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let org = repo.org(principal.org_id).await?;
        repo.delete_session(user_id, session_id).await?;
        repo.record_logout(user_id, Utc::now()).await?;
        presence::sign_out(&tx, &org, user_id, Utc::now()).await?;
        repo.append_audit(audit::entry(
            principal.org_id,
            AuditActor::from(principal),
            Action::Logout,
            Some(user_id),
            origin,
            json!({ "session_id": session_id.to_string() }),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The principal behind a bearer token, with permissions computed from the
    /// user's roles as they are now.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        if token.starts_with(API_KEY_PREFIX) {
            return self.authenticate_key(token).await;
        }
        let invalid = || Error::Unauthenticated(Reason::InvalidCredentials);
        let read = self.store.read();
        let (hash, now) = (token_hash(token), Utc::now());
        let Some(session) = read.session_by_token_hash(&hash, now).await? else {
            // Only the token's holder can ask about its session: telling
            // them it expired says nothing about anyone else.
            return Err(if read.session_expired(&hash, now).await? {
                Error::Unauthenticated(Reason::SessionExpired)
            } else {
                invalid()
            });
        };
        let org = read.org(session.org_id).await?;
        if org.state != OrgState::Active {
            return Err(Error::org_suspended());
        }
        let user = read
            .user(&org, session.user_id)
            .await?
            .filter(|u| u.state == UserState::Active)
            .ok_or_else(invalid)?;
        let custom = read.custom_roles(org.org_id, &user.roles).await?;
        let permissions = permissions_of(&user.roles, &custom);
        Ok(Principal {
            org_id: org.org_id,
            actor: Actor::User {
                user_id: user.id,
                session_id: session.session_id,
                expires_at: session.expires_at,
            },
            permissions,
            team_ids: user.team_ids,
            password_change_required: user.password_change_required,
        })
    }

    /// Fails unless the org is still active: suspended (`ORG_SUSPENDED`) or
    /// deleted (`ORG_NOT_FOUND`).
    pub async fn org_in_service(&self, org_id: crate::domain::OrgId) -> Result<()> {
        match self.store.read().org(org_id).await?.state {
            OrgState::Active => Ok(()),
            OrgState::Suspended => Err(Error::org_suspended()),
        }
    }

    /// The org and, for a person, the user behind a principal.
    pub async fn who_am_i(&self, principal: &Principal) -> Result<(OrgSettings, Option<User>)> {
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        let user = match principal.user_id() {
            Some(id) => Some(
                read.user(&org, id)
                    .await?
                    .ok_or_else(Error::user_not_found)?,
            ),
            None => None,
        };
        Ok((org, user))
    }
}

/// Starts a session for the user within `tx`; returns its token, shown to
/// the client once and stored only as a hash.
pub async fn open_session(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<(String, SessionRecord)> {
    let token = new_session_token();
    let lifetime = chrono::Duration::from_std(org.session_lifetime).map_err(Error::internal)?;
    let session = SessionRecord {
        session_id: SessionId::generate(),
        org_id: org.org_id,
        user_id,
        expires_at: now + lifetime,
    };
    let repo = tx.repo();
    repo.delete_expired_sessions(user_id, now).await?;
    repo.insert_session(&session, token_hash(&token)).await?;
    presence::sign_in(tx, org, user_id, now).await?;
    Ok((token, session))
}

/// Whether `login` names the user by an identifier their `login_with` allows.
fn login_allowed(org: &OrgSettings, user: &LoginCandidate, login: &str) -> bool {
    let rule = user.login_with.unwrap_or(org.login_with);
    let by_email = user.email.as_str() == login.trim().to_lowercase();
    (by_email && rule.allows_email()) || (!by_email && rule.allows_login_id())
}
