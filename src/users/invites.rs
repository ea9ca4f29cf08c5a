//! Invitations: an `INVITED` user and a one-time link by email, valid for
//! the org's invite lifetime. Resending kills the previous link; accepting
//! sets the password, activates the user and signs them in.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    NewUser, Users, changes, claim_request_id, identity_conflict, profile_json, reload,
    start_presence, take_seat,
};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, SignedIn, authorize, new_invite_token, open_session, token_hash},
    domain::{
        ChangeReason, DisplayName, OrgSettings, OrgState, Password, Permission, User, UserId,
        UserState,
    },
    error::{Error, Reason, Result},
    mail::Invitation,
    store::WriteTx,
};

/// An invited user and when their link expires.
#[derive(Debug, Clone)]
pub struct Invited {
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

const INVITE_USER: &str = "InviteUser";

impl Users {
    pub async fn invite_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        input: NewUser,
        request_id: Option<String>,
    ) -> Result<Invited> {
        authorize(principal, Permission::ManageUsers)?;
        let org = self.store.read().org(principal.org_id).await?;
        if let Some(user) = self
            .replayed(&org, INVITE_USER, request_id.as_deref())
            .await?
        {
            let expires_at = user.created_at + lifetime(&org)?;
            return Ok(Invited { user, expires_at });
        }
        let user = self.new_user(&org, input, UserState::Invited).await?;
        self.authorize_roles(principal, &org, &user.roles).await?;
        let tx = self.store.write().await?;
        take_seat(&tx, &org).await?;
        if let Some(request_id) = &request_id
            && !claim_request_id(&tx, &org, INVITE_USER, request_id, user.id).await?
        {
            drop(tx);
            let user = self
                .replayed(&org, INVITE_USER, Some(request_id))
                .await?
                .ok_or_else(Error::user_not_found)?;
            let expires_at = user.created_at + lifetime(&org)?;
            return Ok(Invited { user, expires_at });
        }
        tx.repo()
            .insert_user(org.org_id, &user)
            .await
            .map_err(identity_conflict)?;
        let (token, expires_at) = issue(&tx, &org, user.id).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::UserInvite,
            user.id,
            json!({ "after": profile_json(&user), "invite_expires_at": expires_at }),
        )
        .await?;
        let invited = reload(&tx, &org, user.id).await?;
        start_presence(&tx, &org, user.id).await?;
        tx.commit().await?;
        self.send_invitation(&org, &invited, &token, expires_at)
            .await;
        Ok(Invited {
            user: invited,
            expires_at,
        })
    }

    pub async fn resend_invite(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
    ) -> Result<Invited> {
        let (tx, org, user) = self.end_invites(principal, user_id).await?;
        let (token, expires_at) = issue(&tx, &org, user_id).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::InviteResend,
            user_id,
            json!({ "invite_expires_at": expires_at }),
        )
        .await?;
        tx.commit().await?;
        self.send_invitation(&org, &user, &token, expires_at).await;
        Ok(Invited { user, expires_at })
    }

    /// Opens the change of a pending user's invitation: kills their links,
    /// in a transaction the caller goes on with. The user is read inside
    /// it, as an acceptance may have just won: an active user is refused.
    async fn end_invites(
        &self,
        principal: &Principal,
        user_id: UserId,
    ) -> Result<(WriteTx, OrgSettings, User)> {
        authorize(principal, Permission::ManageUsers)?;
        let (org, _) = self.target(principal, user_id).await?;
        let tx = self.store.write().await?;
        let user = reload(&tx, &org, user_id).await?;
        invited_only(&user)?;
        tx.repo().revoke_invites(user_id, Utc::now()).await?;
        Ok((tx, org, user))
    }

    /// Removes a pending user; their link then answers `INVITE_REVOKED`.
    pub async fn revoke_invite(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
    ) -> Result<()> {
        let (tx, org, user) = self.end_invites(principal, user_id).await?;
        tx.repo().delete_user(org.org_id, &user, None).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::InviteRevoke,
            user_id,
            json!({ "before": profile_json(&user) }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts an invitation: sets the password (and, optionally, the name),
    /// activates the user and starts their first session.
    pub async fn accept_invite(
        &self,
        origin: &Origin,
        token: &str,
        password: &str,
        display_name: Option<DisplayName>,
    ) -> Result<SignedIn> {
        let hash = token_hash(token.trim());
        let read = self.store.read();
        let invite = read
            .invite_by_token_hash(&hash)
            .await?
            .ok_or_else(|| Error::NotFound {
                reason: Reason::InvalidInvite,
                message: "no such invitation".into(),
            })?;
        let now = Utc::now();
        if invite.used_at.is_some() {
            return Err(Error::failed_precondition(
                Reason::InviteUsed,
                "this invitation was already used",
            ));
        }
        if invite.revoked_at.is_some() {
            return Err(Error::failed_precondition(
                Reason::InviteRevoked,
                "this invitation was revoked or replaced by a newer one",
            ));
        }
        if invite.expires_at <= now {
            return Err(Error::failed_precondition(
                Reason::InviteExpired,
                "this invitation expired: ask an administrator to send a new one",
            ));
        }
        let org = read.org(invite.org_id).await?;
        if org.state != OrgState::Active {
            return Err(Error::org_suspended());
        }
        let before = read.user(&org, invite.user_id).await?.ok_or_else(|| {
            Error::failed_precondition(Reason::InviteRevoked, "this invitation was revoked")
        })?;
        let password = Password::parse(password, org.password_min_length)
            .map_err(|e| Error::invalid(e.at("password")))?;
        let password_hash = self.hasher.hash(&password).await?;
        if before.state != UserState::Invited {
            return Err(Error::failed_precondition(
                Reason::InviteUsed,
                "this invitation was already used",
            ));
        }
        let mut after = before.clone();
        after.state = UserState::Active;
        if let Some(name) = display_name {
            after.display_name = name;
        }
        let tx = self.store.write().await?;
        if !tx.repo().use_invite(&hash, now).await? {
            return Err(Error::failed_precondition(
                Reason::InviteUsed,
                "this invitation was already used",
            ));
        }
        self.save(&tx, &after, None, None).await?;
        tx.repo()
            .insert_credentials(after.id, password_hash, false)
            .await?;
        tx.repo()
            .refresh_presence(&org, Some(&[after.id]), ChangeReason::UserActivated, now)
            .await?;
        let (session_token, session) = open_session(&tx, &org, after.id, now).await?;
        tx.repo().record_login_success(after.id, now).await?;
        let user = reload(&tx, &org, after.id).await?;
        tx.repo()
            .append_audit(audit::entry(
                org.org_id,
                AuditActor::User(after.id),
                Action::InviteAccept,
                Some(after.id),
                origin,
                changes(&before, &user),
            ))
            .await?;
        tx.commit().await?;
        Ok(SignedIn {
            session_token,
            expires_at: session.expires_at,
            user,
        })
    }

    /// Sends the invitation email. The invitation is already committed, so a
    /// delivery failure is logged, not returned: ResendInvite sends it again.
    pub async fn send_invitation(
        &self,
        org: &OrgSettings,
        user: &User,
        token: &str,
        expires_at: DateTime<Utc>,
    ) {
        let invitation = Invitation {
            to: &user.email,
            name: &user.display_name,
            org: &org.name,
            token,
            expires_at,
        };
        if let Err(err) = self.mailer.send_invitation(invitation).await {
            tracing::error!(error = %err, user_id = %user.id, "invitation email not delivered");
        }
    }
}

pub(super) fn lifetime(org: &OrgSettings) -> Result<chrono::Duration> {
    chrono::Duration::from_std(org.invite_lifetime).map_err(Error::internal)
}

/// A new link for the user; returns the token and its expiry.
pub(super) async fn issue(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
) -> Result<(String, DateTime<Utc>)> {
    let token = new_invite_token();
    let expires_at = Utc::now() + lifetime(org)?;
    tx.repo()
        .insert_invite(org.org_id, user_id, token_hash(&token), expires_at)
        .await?;
    Ok((token, expires_at))
}

fn invited_only(user: &User) -> Result<()> {
    if user.state == UserState::Invited {
        Ok(())
    } else {
        Err(Error::failed_precondition(
            Reason::UserNotInvited,
            "the user is not a pending invitation",
        ))
    }
}
