//! Tenants as a managed resource, for the platform's operators: create,
//! read, list, change, suspend, reactivate and delete orgs. Callers are
//! platform keys (see `auth::platform_keys`); no org's session or key gets
//! here.
//!
//! Each change runs in one transaction with its entry in the platform audit
//! log (and, while the org exists, one in the org's own log), so an error
//! leaves nothing half-written. Suspending ends the org's sessions and signs
//! its users out in that transaction; its keys and the sessions of anyone
//! who signs in meanwhile are refused while it stays suspended (see
//! `auth::Authenticator::authenticate`), and its open watches end as soon as
//! each replica hears of the change. Deleting (only a suspended org) removes
//! every row of the org in one transaction.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{
    audit::{self, Action, AuditActor, Origin, PlatformAction, PlatformActor, platform_entry},
    auth::{PasswordHasher, PlatformCaller},
    domain::{
        ChangeReason, Email, OrgId, OrgSettings, OrgSlug, OrgState, Password,
        PlatformAuditCriteria, PlatformAuditEntry, ProfileText, SettingsChange, User,
    },
    error::{Error, Reason, Result},
    org::{SettingsView, apply, check_etag},
    presence,
    store::{Store, StoreError, WriteTx},
    users::{FirstAdmin, NewUser, Users},
};

/// A new org as CreateOrg asks for it, already parsed.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub slug: OrgSlug,
    pub name: String,
    pub seat_limit: Option<u32>,
    /// The first admin; the `admin` role is added.
    pub admin: NewUser,
    /// Create the admin ACTIVE with this password; else invite them.
    pub admin_password: Option<Password>,
    pub request_id: Option<String>,
}

/// A created org, its first admin and, when invited, their link's expiry.
#[derive(Debug, Clone)]
pub struct CreatedOrg {
    pub org: SettingsView,
    pub admin: Option<User>,
    pub invite_expires_at: Option<DateTime<Utc>>,
}

/// One page of orgs and the slug the next page starts after.
#[derive(Debug, Clone)]
pub struct OrgPage {
    pub orgs: Vec<SettingsView>,
    pub next: Option<OrgSlug>,
}

#[derive(Clone)]
pub struct Platform {
    store: Store,
    users: Users,
    hasher: PasswordHasher,
}

impl Platform {
    pub fn new(store: Store, users: Users, hasher: PasswordHasher) -> Self {
        Self {
            store,
            users,
            hasher,
        }
    }

    pub async fn create_org(
        &self,
        caller: &PlatformCaller,
        origin: &Origin,
        input: NewOrg,
    ) -> Result<CreatedOrg> {
        if let Some(created) = self.replayed(&input).await? {
            return Ok(created);
        }
        let mut org = OrgSettings::new(input.slug.clone(), input.name.clone());
        org.seat_limit = input.seat_limit;
        let first = match &input.admin_password {
            Some(password) => FirstAdmin::Password(self.hasher.hash(password).await?),
            None => FirstAdmin::Invite,
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        match repo.insert_org(&org, input.request_id.as_deref()).await {
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                // A concurrent retry of this very call got there first.
                if let Some(created) = self.replayed(&input).await? {
                    return Ok(created);
                }
                return Err(Error::AlreadyExists {
                    reason: Reason::OrgSlugTaken,
                    message: "an org with this slug exists".into(),
                });
            }
            other => other?,
        }
        let (admin, invitation) = self
            .users
            .add_first_admin(&tx, &org, input.admin, first, Action::OrgCreate, origin)
            .await?;
        let view = view(&tx, org.org_id).await?;
        repo.append_platform_audit(platform_entry(
            PlatformActor::from(caller),
            PlatformAction::OrgCreate,
            Some(&view.settings),
            origin,
            json!({
                "display_name": view.settings.name,
                "seat_limit": view.settings.seat_limit.unwrap_or(0),
                "admin_user_id": admin.id.to_string(),
                "admin_email": admin.email.as_str(),
                "admin_invited": invitation.is_some(),
            }),
        ))
        .await?;
        tx.commit().await?;
        let invite_expires_at = invitation.as_ref().map(|(_, at)| *at);
        if let Some((token, expires_at)) = invitation {
            self.users
                .send_invitation(&view.settings, &admin, &token, expires_at)
                .await;
        }
        Ok(CreatedOrg {
            org: view,
            admin: Some(admin),
            invite_expires_at,
        })
    }

    /// What an earlier CreateOrg with this request id made, if any.
    async fn replayed(&self, input: &NewOrg) -> Result<Option<CreatedOrg>> {
        let Some(request_id) = &input.request_id else {
            return Ok(None);
        };
        let read = self.store.read();
        let Some(org) = read.org_by_create_request(request_id).await? else {
            return Ok(None);
        };
        let admin = read.user_by_email(&org, &input.admin.email).await?;
        let invite_expires_at = admin
            .as_ref()
            .filter(|a| a.state == crate::domain::UserState::Invited)
            .and_then(|a| {
                chrono::Duration::from_std(org.invite_lifetime)
                    .ok()
                    .map(|d| a.created_at + d)
            });
        Ok(Some(CreatedOrg {
            org: SettingsView {
                seats_used: read.count_seats(org.org_id).await?,
                settings: org,
            },
            admin,
            invite_expires_at,
        }))
    }

    pub async fn get_org(&self, org_id: OrgId) -> Result<SettingsView> {
        let read = self.store.read();
        let settings = read
            .find_org(org_id)
            .await?
            .ok_or_else(Error::org_not_found)?;
        Ok(SettingsView {
            seats_used: read.count_seats(org_id).await?,
            settings,
        })
    }

    pub async fn list_orgs(
        &self,
        slug_prefix: &str,
        state: Option<OrgState>,
        after: Option<OrgSlug>,
        page_size: u64,
    ) -> Result<OrgPage> {
        let read = self.store.read();
        let mut orgs = read
            .list_orgs(slug_prefix, state, after.as_ref(), page_size + 1)
            .await?;
        let next = if orgs.len() as u64 > page_size {
            orgs.truncate(page_size as usize);
            orgs.last().map(|o| o.slug.clone())
        } else {
            None
        };
        let mut views = Vec::with_capacity(orgs.len());
        for settings in orgs {
            views.push(SettingsView {
                seats_used: read.count_seats(settings.org_id).await?,
                settings,
            });
        }
        Ok(OrgPage { orgs: views, next })
    }

    /// Applies `change` (name and seat limit) if `etag` (when given) is
    /// still the org's version.
    pub async fn update_org(
        &self,
        caller: &PlatformCaller,
        origin: &Origin,
        org_id: OrgId,
        change: SettingsChange,
        etag: Option<String>,
    ) -> Result<SettingsView> {
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let current = existing(&tx, org_id).await?;
        check_etag(etag.as_deref(), current.version)?;
        let (updated, before, after) = apply(&current, change);
        if before.is_empty() {
            drop(tx);
            return self.get_org(org_id).await;
        }
        if !repo.update_org_settings(&updated).await? {
            return Err(Error::concurrent_change());
        }
        let details = json!({ "before": before, "after": after });
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::System,
            Action::OrgSettingsUpdate,
            "org/settings".into(),
            origin,
            details.clone(),
        ))
        .await?;
        let view = view(&tx, org_id).await?;
        repo.append_platform_audit(platform_entry(
            PlatformActor::from(caller),
            PlatformAction::OrgUpdate,
            Some(&view.settings),
            origin,
            details,
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Suspends an active org: ends its sessions and signs its users out
    /// (OFFLINE, reason ORG_SUSPENDED) in the same transaction.
    pub async fn suspend_org(
        &self,
        caller: &PlatformCaller,
        origin: &Origin,
        org_id: OrgId,
        reason: ProfileText,
    ) -> Result<SettingsView> {
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let current = existing(&tx, org_id).await?;
        if current.state == OrgState::Suspended {
            return Err(Error::failed_precondition(
                Reason::OrgAlreadySuspended,
                "the org is already suspended",
            ));
        }
        let mut next = current.clone();
        next.state = OrgState::Suspended;
        next.suspended_at = Some(Utc::now());
        next.suspend_reason = reason;
        if !repo.update_org_state(&next).await? {
            return Err(Error::concurrent_change());
        }
        repo.delete_org_sessions(org_id).await?;
        let signed_out = presence::sign_out_all(&tx, org_id, None, ChangeReason::OrgSuspended)
            .await?
            .len();
        let details = json!({ "reason": next.suspend_reason.as_str(), "signed_out": signed_out });
        audit_both(
            &tx,
            caller,
            origin,
            &next,
            (Action::OrgSuspend, PlatformAction::OrgSuspend),
            details,
        )
        .await?;
        let view = view(&tx, org_id).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn reactivate_org(
        &self,
        caller: &PlatformCaller,
        origin: &Origin,
        org_id: OrgId,
    ) -> Result<SettingsView> {
        let tx = self.store.write().await?;
        let current = existing(&tx, org_id).await?;
        not_suspended_refused(&current)?;
        let mut next = current.clone();
        next.state = OrgState::Active;
        next.suspended_at = None;
        next.suspend_reason = ProfileText::default();
        if !tx.repo().update_org_state(&next).await? {
            return Err(Error::concurrent_change());
        }
        let details = json!({ "suspended_at": current.suspended_at });
        audit_both(
            &tx,
            caller,
            origin,
            &next,
            (Action::OrgReactivate, PlatformAction::OrgReactivate),
            details,
        )
        .await?;
        let view = view(&tx, org_id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Deletes a suspended org and everything it holds, in one transaction;
    /// returns how many users it had. Only the platform log remembers it.
    pub async fn delete_org(
        &self,
        caller: &PlatformCaller,
        origin: &Origin,
        org_id: OrgId,
    ) -> Result<u64> {
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let org = existing(&tx, org_id).await?;
        not_suspended_refused(&org)?;
        let users_removed = repo.delete_org(org_id).await?;
        repo.append_platform_audit(platform_entry(
            PlatformActor::from(caller),
            PlatformAction::OrgDelete,
            Some(&org),
            origin,
            json!({ "display_name": org.name, "users_removed": users_removed }),
        ))
        .await?;
        tx.commit().await?;
        Ok(users_removed)
    }

    /// Up to `page_size` platform log entries, newest first, after `after`.
    pub async fn list_audit(
        &self,
        criteria: &PlatformAuditCriteria,
        after: Option<(DateTime<Utc>, String)>,
        page_size: u64,
    ) -> Result<(Vec<PlatformAuditEntry>, Option<(DateTime<Utc>, String)>)> {
        let mut entries = self
            .store
            .read()
            .list_platform_audit(criteria, after, page_size + 1)
            .await?;
        let next = if entries.len() as u64 > page_size {
            entries.truncate(page_size as usize);
            entries.last().map(|e| (e.occurred_at, e.id.clone()))
        } else {
            None
        };
        Ok((entries, next))
    }
}

/// The same change in the org's log (by the system) and the platform's.
async fn audit_both(
    tx: &WriteTx,
    caller: &PlatformCaller,
    origin: &Origin,
    org: &OrgSettings,
    (action, platform_action): (Action, PlatformAction),
    details: serde_json::Value,
) -> Result<()> {
    let repo = tx.repo();
    repo.append_audit(audit::resource_entry(
        org.org_id,
        AuditActor::System,
        action,
        "org".into(),
        origin,
        details.clone(),
    ))
    .await?;
    repo.append_platform_audit(platform_entry(
        PlatformActor::from(caller),
        platform_action,
        Some(org),
        origin,
        details,
    ))
    .await?;
    Ok(())
}

/// The org as it is in `tx`, or `NOT_FOUND`.
async fn existing(tx: &WriteTx, org_id: OrgId) -> Result<OrgSettings> {
    tx.repo()
        .find_org(org_id)
        .await?
        .ok_or_else(Error::org_not_found)
}

async fn view(tx: &WriteTx, org_id: OrgId) -> Result<SettingsView> {
    let repo = tx.repo();
    Ok(SettingsView {
        settings: existing(tx, org_id).await?,
        seats_used: repo.count_seats(org_id).await?,
    })
}

fn not_suspended_refused(org: &OrgSettings) -> Result<()> {
    if org.state == OrgState::Suspended {
        Ok(())
    } else {
        Err(Error::failed_precondition(
            Reason::OrgNotSuspended,
            "the org is not suspended: suspend it first",
        ))
    }
}

/// The admin of a new org, as CreateOrg names them: the `admin` role.
pub fn first_admin(email: Email, name: crate::domain::DisplayName) -> NewUser {
    NewUser::new(email, name, vec![crate::domain::RoleName::admin()])
}
