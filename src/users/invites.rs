//! Invitations: an `INVITED` user and a one-time link by email, valid for
//! the org's invite lifetime. Resending kills the previous link; accepting
//! sets the password, activates the user and signs them in.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    NewUser, Users, changes, claim_request_id, identity_conflict, profile_json, reload,
    start_presence, take_seat, take_seats,
};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, SignedIn, authorize, new_invite_token, open_session, token_hash},
    batch::{Batcher, failed_all},
    domain::{
        ChangeReason, DisplayName, OrgId, OrgSettings, OrgState, Password, Permission, User,
        UserId, UserState,
    },
    error::{Error, Reason, Result},
    mail::Invitation,
    store::{AuditRecord, Store, WriteTx},
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
        if let Some(invited) = self.replayed_invite(&org, request_id.as_deref()).await? {
            return Ok(invited);
        }
        let user = self.new_user(&org, input, UserState::Invited).await?;
        self.authorize_roles(principal, &org, &user.roles).await?;
        let pending = PendingInvite {
            user,
            request_id,
            actor: AuditActor::from(principal),
            origin: origin.clone(),
        };
        match self.invites.submit(org.org_id, pending).await? {
            Committed::Invited { invited, token } => {
                self.send_invitation(&org, &invited.user, &token, invited.expires_at)
                    .await;
                Ok(*invited)
            }
            Committed::Replayed(request_id) => self
                .replayed_invite(&org, Some(&request_id))
                .await?
                .ok_or_else(Error::user_not_found),
        }
    }

    /// The invitation an earlier call with `request_id` made, if any.
    async fn replayed_invite(
        &self,
        org: &OrgSettings,
        request_id: Option<&str>,
    ) -> Result<Option<Invited>> {
        let Some(user) = self.replayed(org, INVITE_USER, request_id).await? else {
            return Ok(None);
        };
        let expires_at = user.created_at + lifetime(org)?;
        Ok(Some(Invited { user, expires_at }))
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

/// Most invitations written in one transaction.
const MAX_INVITES: usize = 256;

/// An invitation checked and built, waiting for its transaction.
pub(super) struct PendingInvite {
    user: User,
    request_id: Option<String>,
    actor: AuditActor,
    origin: Origin,
}

/// What an invitation's transaction did.
pub(super) enum Committed {
    Invited {
        invited: Box<Invited>,
        token: String,
    },
    /// A concurrent call with the same request id got there first.
    Replayed(String),
}

/// The batching writer of invitations (see [`crate::batch`]).
pub(super) fn invite_writer(store: Store) -> Batcher<PendingInvite, Committed> {
    Batcher::start(MAX_INVITES, move |org_id, pending: Vec<PendingInvite>| {
        let store = store.clone();
        async move { write_invites(&store, org_id, pending).await }
    })
}

/// Invitations that arrive together commit together when they all can;
/// when one of them cannot (a taken email, the last seat, a replayed
/// request id, a database error), each is written alone and gets its own
/// answer, as if it had come alone.
async fn write_invites(
    store: &Store,
    org_id: OrgId,
    pending: Vec<PendingInvite>,
) -> Vec<Result<Committed>> {
    let org = match store.read().org(org_id).await {
        Ok(org) => org,
        Err(err) => return failed_all(pending.len(), &err.into()),
    };
    if pending.len() > 1
        && let Ok(Some(committed)) = invite_together(store, &org, &pending).await
    {
        return committed.into_iter().map(Ok).collect();
    }
    if pending.len() > 1 {
        tracing::debug!(count = pending.len(), "invitations written one by one");
    }
    let mut outcomes = Vec::with_capacity(pending.len());
    for invite in &pending {
        outcomes.push(invite_alone(store, &org, invite).await);
    }
    outcomes
}

/// All of `pending` in one transaction, with one statement per table; `None`
/// (and nothing written) when one of them cannot be.
async fn invite_together(
    store: &Store,
    org: &OrgSettings,
    pending: &[PendingInvite],
) -> Result<Option<Vec<Committed>>> {
    let tx = store.write().await?;
    if take_seats(&tx, org, pending.len() as u64).await.is_err() {
        return Ok(None);
    }
    for invite in pending {
        if let Some(request_id) = &invite.request_id
            && !claim_request_id(&tx, org, INVITE_USER, request_id, invite.user.id).await?
        {
            return Ok(None);
        }
    }
    let repo = tx.repo();
    let users: Vec<User> = pending.iter().map(|invite| invite.user.clone()).collect();
    // A conflict is answered precisely by the invitation written alone.
    if repo.insert_users(org.org_id, &users).await.is_err() {
        return Ok(None);
    }
    let expires_at = Utc::now() + lifetime(org)?;
    let tokens: Vec<String> = pending.iter().map(|_| new_invite_token()).collect();
    repo.insert_invites(
        org.org_id,
        users
            .iter()
            .zip(&tokens)
            .map(|(user, token)| (user.id, token_hash(token), expires_at))
            .collect(),
    )
    .await?;
    repo.append_audits(
        pending
            .iter()
            .map(|invite| invited_audit(org, invite, expires_at))
            .collect(),
    )
    .await?;
    let ids: Vec<UserId> = users.iter().map(|user| user.id).collect();
    let mut stored: HashMap<UserId, User> = repo
        .users_in(org, &ids)
        .await?
        .into_iter()
        .map(|user| (user.id, user))
        .collect();
    start_presence(&tx, org, &ids).await?;
    tx.commit().await?;
    let committed = ids
        .iter()
        .zip(tokens)
        .map(|(id, token)| {
            let user = stored.remove(id).ok_or_else(Error::user_not_found)?;
            Ok(Committed::Invited {
                invited: Box::new(Invited { user, expires_at }),
                token,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(committed))
}

/// One invitation in its own transaction.
async fn invite_alone(
    store: &Store,
    org: &OrgSettings,
    invite: &PendingInvite,
) -> Result<Committed> {
    let user = &invite.user;
    let tx = store.write().await?;
    take_seat(&tx, org).await?;
    if let Some(request_id) = &invite.request_id
        && !claim_request_id(&tx, org, INVITE_USER, request_id, user.id).await?
    {
        return Ok(Committed::Replayed(request_id.clone()));
    }
    tx.repo()
        .insert_user(org.org_id, user)
        .await
        .map_err(identity_conflict)?;
    let (token, expires_at) = issue(&tx, org, user.id).await?;
    tx.repo()
        .append_audit(invited_audit(org, invite, expires_at))
        .await?;
    let invited = reload(&tx, org, user.id).await?;
    start_presence(&tx, org, &[user.id]).await?;
    tx.commit().await?;
    Ok(Committed::Invited {
        invited: Box::new(Invited {
            user: invited,
            expires_at,
        }),
        token,
    })
}

fn invited_audit(
    org: &OrgSettings,
    invite: &PendingInvite,
    expires_at: DateTime<Utc>,
) -> AuditRecord {
    audit::entry(
        org.org_id,
        invite.actor,
        Action::UserInvite,
        Some(invite.user.id),
        &invite.origin,
        json!({ "after": profile_json(&invite.user), "invite_expires_at": expires_at }),
    )
}
