//! Passwords after creation: a user changing their own, an admin setting one
//! (ResetPassword) or requiring a change (ForcePasswordChange).
//!
//! A new password always follows the org's policy. Changing or resetting a
//! password ends every session of the user at once (a changed password must
//! lock out whoever knew the old one); a change returns a fresh session so the
//! caller stays signed in. Forcing a change ends no session: the principal is
//! resolved on every request, so each open session is confined to
//! ChangePassword, Logout and WhoAmI from the next request on.

use chrono::Utc;
use serde_json::json;

use super::{Users, reload};
use crate::{
    audit::{Action, Origin},
    auth::{Principal, SignedIn, authorize, lockout, open_session},
    domain::{OrgSettings, Password, Permission, User, UserId, UserState},
    error::{Error, ParseError, Reason, Result},
    presence,
};

impl Users {
    /// Changes the caller's own password, given the current one; clears a
    /// pending password change. A wrong current password counts as a failed
    /// sign-in, so a stolen session cannot guess the password without limit.
    pub async fn change_password(
        &self,
        principal: &Principal,
        origin: &Origin,
        current_password: &str,
        new_password: &str,
    ) -> Result<SignedIn> {
        let Some(user_id) = principal.user_id() else {
            return Err(Error::failed_precondition(
                Reason::NotASession,
                "an API key has no password to change",
            ));
        };
        let (org, user) = self.target(principal, user_id).await?;
        let new_password = policy(&org, new_password)?;
        if user.locked {
            return Err(locked());
        }
        let credential = self
            .store
            .read()
            .credential(user_id)
            .await?
            .ok_or_else(no_password)?;
        let matches = self
            .hasher
            .verify(current_password, Some(&credential.password_hash))
            .await?;
        if !matches {
            let tx = self.store.write().await?;
            lockout::end_expired_lock(&tx, &org, user_id, origin).await?;
            lockout::count_failure(&tx, &org, user_id, origin).await?;
            tx.commit().await?;
            return Err(Error::invalid(
                ParseError::new(Reason::WrongPassword, "is not your current password")
                    .at("current_password"),
            ));
        }
        if new_password.expose() == current_password {
            return Err(Error::invalid(
                ParseError::new(
                    Reason::WeakPassword,
                    "must differ from the current password",
                )
                .at("new_password"),
            ));
        }
        let hash = self.hasher.hash(&new_password).await?;

        let now = Utc::now();
        let tx = self.store.write().await?;
        if lockout::locked_now(&tx, &org, user_id).await? {
            return Err(locked());
        }
        let repo = tx.repo();
        // The password checked above must still be the stored one: a reset
        // by an admin in the meantime wins over this change.
        let unchanged = repo
            .credential(user_id)
            .await?
            .is_some_and(|c| c.password_hash == credential.password_hash);
        if !unchanged {
            return Err(Error::Aborted {
                reason: Reason::ConcurrentChange,
                message: "the password changed meanwhile: sign in again".into(),
            });
        }
        repo.set_password(user_id, hash, false).await?;
        repo.delete_user_sessions(user_id).await?;
        let (session_token, session) = open_session(&tx, &org, user_id, now).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::PasswordChange,
            user_id,
            json!({
                "session_id": session.session_id.to_string(),
                "was_required": credential.password_change_required,
            }),
        )
        .await?;
        let user = reload(&tx, &org, user_id).await?;
        tx.commit().await?;
        Ok(SignedIn {
            session_token,
            expires_at: session.expires_at,
            user,
        })
    }

    /// Sets a user's password (admin). Unless `require_change` is false the
    /// user must change it at next sign-in. Their sessions end.
    pub async fn reset_password(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
        new_password: &str,
        require_change: bool,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        let (org, before) = self.target(principal, user_id).await?;
        // Setting someone's password is acting as them: only over people
        // with no more permissions than the caller.
        self.authorize_roles(principal, &org, &before.roles).await?;
        has_password(&before)?;
        let password = policy(&org, new_password)?;
        let hash = self.hasher.hash(&password).await?;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        if !repo.set_password(user_id, hash, require_change).await? {
            return Err(no_password());
        }
        repo.delete_user_sessions(user_id).await?;
        presence::sign_out(&tx, &org, user_id, Utc::now()).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::UserPasswordReset,
            user_id,
            json!({ "password_change_required": require_change }),
        )
        .await?;
        let updated = reload(&tx, &org, user_id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Requires the user to change their password before anything else,
    /// from their next request on.
    pub async fn force_password_change(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        let (org, before) = self.target(principal, user_id).await?;
        has_password(&before)?;
        let tx = self.store.write().await?;
        if !tx.repo().require_password_change(user_id).await? {
            return Err(no_password());
        }
        self.audit(
            &tx,
            principal,
            origin,
            Action::UserForcePasswordChange,
            user_id,
            json!({
                "before": { "password_change_required": before.password_change_required },
                "after": { "password_change_required": true },
            }),
        )
        .await?;
        let updated = reload(&tx, &org, user_id).await?;
        tx.commit().await?;
        Ok(updated)
    }
}

/// A new password checked against the org's policy, on field `new_password`.
fn policy(org: &OrgSettings, raw: &str) -> Result<Password> {
    Password::parse(raw, org.password_min_length).map_err(|e| Error::invalid(e.at("new_password")))
}

/// An invited user has no password yet: they choose one when accepting.
fn has_password(user: &User) -> Result<()> {
    if user.state == UserState::Invited {
        return Err(no_password());
    }
    Ok(())
}

fn no_password() -> Error {
    Error::failed_precondition(
        Reason::UserNotActive,
        "an invited user has no password yet: they set one when accepting the invitation",
    )
}

fn locked() -> Error {
    Error::failed_precondition(
        Reason::AccountLocked,
        "failed sign-ins locked this account: an administrator must unlock it \
         (or wait for the lock to expire)",
    )
}
