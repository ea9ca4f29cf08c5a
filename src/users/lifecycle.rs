//! Editing users and taking their access away: update, suspend, reactivate,
//! unlock, delete. An org never loses its last active admin, and nobody
//! suspends or deletes themselves.

use chrono::Utc;
use serde_json::json;

use super::{Users, changes, identity_conflict, profile_json, reload, take_seat};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize},
    domain::{
        ChangeReason, DisplayName, LoginId, LoginWith, OrgSettings, Permission, ProfileText,
        RoleName, TeamId, User, UserId, UserState,
    },
    error::{Error, ParseError, Reason, Result},
    store::WriteTx,
};

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<DisplayName>,
    pub public_name: Option<ProfileText>,
    pub login_id: Option<Option<LoginId>>,
    pub login_with: Option<Option<LoginWith>>,
    pub language: Option<ProfileText>,
    pub roles: Option<Vec<RoleName>>,
    pub team_ids: Option<Vec<TeamId>>,
    pub max_chats: Option<Option<u32>>,
    pub landline_phone: Option<ProfileText>,
    pub mobile_phone: Option<ProfileText>,
    pub job_title: Option<ProfileText>,
    pub location: Option<ProfileText>,
    pub can_view_colleagues_chats: Option<bool>,
}

impl UserPatch {
    /// Whether the patch touches only what users may change on their own
    /// profile: names, language and phones.
    fn is_own_profile_edit(&self) -> bool {
        self.login_id.is_none()
            && self.login_with.is_none()
            && self.roles.is_none()
            && self.team_ids.is_none()
            && self.max_chats.is_none()
            && self.job_title.is_none()
            && self.location.is_none()
            && self.can_view_colleagues_chats.is_none()
    }
}

/// Fails with `SELF_ACTION` when the principal is the target.
fn not_self(principal: &Principal, user_id: UserId, what: &str) -> Result<()> {
    if principal.user_id() == Some(user_id) {
        return Err(Error::failed_precondition(
            Reason::SelfAction,
            format!("you cannot {what} yourself"),
        ));
    }
    Ok(())
}

/// Fails with `LAST_ADMIN` when `before` is an active admin that `after`
/// no longer is, and no other active admin is left. Runs inside the change's
/// transaction, after the org lock, so two demotions cannot both pass.
async fn keep_an_admin(
    tx: &WriteTx,
    org: &OrgSettings,
    before: &User,
    after: Option<&User>,
) -> Result<()> {
    let loses_admin = before.is_active_admin() && !after.is_some_and(User::is_active_admin);
    if loses_admin && tx.repo().count_active_admins(org.org_id).await? <= 1 {
        return Err(Error::failed_precondition(
            Reason::LastAdmin,
            "this is the org's last active admin",
        ));
    }
    Ok(())
}

impl Users {
    pub async fn update_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
        patch: UserPatch,
        etag: Option<i64>,
    ) -> Result<User> {
        let own = principal.user_id() == Some(user_id)
            && principal.permissions.contains(Permission::EditOwnProfile)
            && patch.is_own_profile_edit();
        if !own {
            authorize(principal, Permission::ManageUsers)?;
        }
        let (org, before) = self.target(principal, user_id).await?;
        check_etag(&before, etag)?;
        let mut after = before.clone();
        let (roles, team_ids) = match (patch.roles, patch.team_ids) {
            (None, None) => (None, None),
            (roles, teams) => {
                if roles.as_ref().is_some_and(Vec::is_empty) {
                    return Err(Error::invalid(
                        ParseError::new(Reason::UnknownRole, "at least one role is required")
                            .at("user.roles"),
                    ));
                }
                let (r, t) = self
                    .check_roles_and_teams(
                        &org,
                        roles.clone().unwrap_or_else(|| before.roles.clone()),
                        teams.clone().unwrap_or_else(|| before.team_ids.clone()),
                        "user",
                    )
                    .await?;
                (roles.map(|_| r), teams.map(|_| t))
            }
        };
        if let Some(v) = patch.display_name {
            after.display_name = v;
        }
        if let Some(v) = patch.public_name {
            after.public_name = v;
        }
        if let Some(v) = patch.login_id {
            after.login_id = v;
        }
        if let Some(v) = patch.login_with {
            after.login_with = v;
        }
        if let Some(v) = patch.language {
            after.language = v;
        }
        if let Some(v) = patch.max_chats {
            after.max_chats = v;
        }
        if let Some(v) = patch.landline_phone {
            after.landline_phone = v;
        }
        if let Some(v) = patch.mobile_phone {
            after.mobile_phone = v;
        }
        if let Some(v) = patch.job_title {
            after.job_title = v;
        }
        if let Some(v) = patch.location {
            after.location = v;
        }
        if let Some(v) = patch.can_view_colleagues_chats {
            after.can_view_colleagues_chats = v;
        }
        if let Some(roles) = &roles {
            self.authorize_roles(principal, &org, roles).await?;
            after.roles = roles.clone();
        }
        if let Some(teams) = &team_ids {
            after.team_ids = teams.clone();
        }

        let tx = self.store.write().await?;
        tx.repo().lock_org(org.org_id).await?;
        keep_an_admin(&tx, &org, &before, Some(&after)).await?;
        self.save(&tx, &after, roles.as_deref(), team_ids.as_deref())
            .await?;
        let routing_change = if roles.is_some() {
            Some(ChangeReason::RolesChanged)
        } else if team_ids.is_some() {
            Some(ChangeReason::TeamsChanged)
        } else if patch.max_chats.is_some() {
            Some(ChangeReason::MaxChatsChanged)
        } else {
            None
        };
        self.finish_change(
            tx,
            principal,
            origin,
            &org,
            &before,
            routing_change,
            Action::UserUpdate,
        )
        .await
    }

    /// The end of every change to one user: presence brought in step with
    /// it (when `routing` says the change matters to routers), the user
    /// read back, the audit entry with what differs, the commit.
    #[allow(clippy::too_many_arguments)]
    async fn finish_change(
        &self,
        tx: WriteTx,
        principal: &Principal,
        origin: &Origin,
        org: &OrgSettings,
        before: &User,
        routing: Option<ChangeReason>,
        action: Action,
    ) -> Result<User> {
        if let Some(reason) = routing {
            tx.repo()
                .refresh_presence(org, Some(&[before.id]), reason, Utc::now())
                .await?;
        }
        let updated = reload(&tx, org, before.id).await?;
        self.audit(
            &tx,
            principal,
            origin,
            action,
            before.id,
            changes(before, &updated),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Writes `user` if nobody changed it since it was read; else `ABORTED`.
    pub(super) async fn save(
        &self,
        tx: &WriteTx,
        user: &User,
        roles: Option<&[RoleName]>,
        teams: Option<&[TeamId]>,
    ) -> Result<()> {
        let saved = tx
            .repo()
            .update_user(user, roles, teams)
            .await
            .map_err(identity_conflict)?;
        if saved {
            Ok(())
        } else {
            Err(Error::concurrent_change())
        }
    }

    pub(super) async fn audit(
        &self,
        tx: &WriteTx,
        principal: &Principal,
        origin: &Origin,
        action: Action,
        target: UserId,
        details: serde_json::Value,
    ) -> Result<()> {
        tx.repo()
            .append_audit(audit::entry(
                principal.org_id,
                AuditActor::from(principal),
                action,
                Some(target),
                origin,
                details,
            ))
            .await?;
        Ok(())
    }

    /// Suspends an active user: they cannot sign in and their sessions end
    /// at once; their data stays and their seat is freed. An agent with open
    /// chats is suspended only with `force` (they go OFFLINE, and routers
    /// see it on the presence stream and requeue the chats).
    pub async fn suspend_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
        reason: ProfileText,
        force: bool,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        not_self(principal, user_id, "suspend")?;
        let (org, before) = self.target(principal, user_id).await?;
        match before.state {
            UserState::Active => {}
            UserState::Suspended => {
                return Err(Error::failed_precondition(
                    Reason::UserAlreadySuspended,
                    "the user is already suspended",
                ));
            }
            UserState::Invited => {
                return Err(Error::failed_precondition(
                    Reason::UserNotActive,
                    "an invited user is not suspended but has the invitation revoked",
                ));
            }
        }
        let mut after = before.clone();
        after.state = UserState::Suspended;
        after.suspend_reason = reason;
        let tx = self.store.write().await?;
        tx.repo().lock_org(org.org_id).await?;
        keep_an_admin(&tx, &org, &before, Some(&after)).await?;
        // Under the presence lock, so no chat load lands between the check
        // and the suspension.
        tx.repo().lock_presence(org.org_id).await?;
        let open_chats = tx
            .repo()
            .presence_of(&org, &[user_id], Utc::now())
            .await?
            .first()
            .map_or(0, |p| p.active_chats);
        if open_chats > 0 && !force {
            return Err(Error::FailedPrecondition {
                reason: Reason::ActiveChats,
                message: format!(
                    "the user has {open_chats} open chats: requeue them, or suspend with force"
                ),
                metadata: vec![("active_chats", open_chats.to_string())],
            });
        }
        self.save(&tx, &after, None, None).await?;
        tx.repo().delete_user_sessions(user_id).await?;
        self.finish_change(
            tx,
            principal,
            origin,
            &org,
            &before,
            Some(ChangeReason::UserSuspended),
            Action::UserSuspend,
        )
        .await
    }

    /// Makes a suspended user active again, if a seat is free.
    pub async fn reactivate_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        let (org, before) = self.target(principal, user_id).await?;
        if before.state != UserState::Suspended {
            return Err(Error::failed_precondition(
                Reason::UserNotSuspended,
                "only a suspended user can be reactivated",
            ));
        }
        let mut after = before.clone();
        after.state = UserState::Active;
        after.suspend_reason = ProfileText::default();
        let tx = self.store.write().await?;
        take_seat(&tx, &org).await?;
        self.save(&tx, &after, None, None).await?;
        self.finish_change(
            tx,
            principal,
            origin,
            &org,
            &before,
            Some(ChangeReason::UserReactivated),
            Action::UserReactivate,
        )
        .await
    }

    /// Clears the lock that failed sign-ins set.
    pub async fn unlock_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        let (org, before) = self.target(principal, user_id).await?;
        let tx = self.store.write().await?;
        tx.repo().unlock_user(user_id).await?;
        let updated = reload(&tx, &org, user_id).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::UserUnlock,
            user_id,
            // `by` tells an admin's unlock from a lock that ran out ("expiry").
            json!({
                "by": "admin",
                "before": { "locked": before.locked },
                "after": { "locked": updated.locked },
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a user for good. A tombstone keeps id, name and email so
    /// history can still name them; the email is free again at once.
    pub async fn delete_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
    ) -> Result<()> {
        authorize(principal, Permission::ManageUsers)?;
        not_self(principal, user_id, "delete")?;
        let (org, _) = self.target(principal, user_id).await?;
        let tx = self.store.write().await?;
        tx.repo().lock_org(org.org_id).await?;
        // Read again under the org lock: the admin rule and the tombstone
        // must see the user as they are now.
        let user = reload(&tx, &org, user_id).await?;
        keep_an_admin(&tx, &org, &user, None).await?;
        tx.repo().revoke_invites(user_id, Utc::now()).await?;
        tx.repo()
            .remove_presence(org.org_id, user_id, Utc::now())
            .await?;
        tx.repo()
            .delete_user(org.org_id, &user, Some(principal.user_id()))
            .await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::UserDelete,
            user_id,
            json!({ "before": profile_json(&user) }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn check_etag(user: &User, etag: Option<i64>) -> Result<()> {
    match etag {
        Some(etag) if etag != user.version => Err(stale()),
        _ => Ok(()),
    }
}

fn stale() -> Error {
    Error::Aborted {
        reason: Reason::StaleEtag,
        message: "the user changed since it was read: get it again and retry".into(),
    }
}
