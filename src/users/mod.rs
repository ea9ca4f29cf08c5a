//! User use cases. Each change runs in one transaction with its audit entry,
//! so an error leaves nothing half-written.
//!
//! Seat rules: `INVITED` and `ACTIVE` users hold a seat. Every change that
//! takes a seat (create, invite, reactivate) first takes the org row's lock
//! inside its transaction, so two of them never both take the last seat.

mod avatars;
mod catalogue;
pub mod export;
mod import;
mod invites;
mod lifecycle;
mod passwords;

use chrono::{DateTime, Utc};
use serde_json::json;

pub use export::UserExport;
pub use import::{ImportOptions, ImportRow};
pub use invites::Invited;
pub use lifecycle::UserPatch;

use catalogue::{Catalogue, build_user};
use invites::{Committed, PendingInvite};

use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{PasswordHasher, Principal, authorize, authorize_grant, user_read_scope},
    batch::Batcher,
    domain::{
        ChangeReason, DisplayName, Email, LoginId, LoginWith, OrgSettings, OrgSlug, Password,
        Permission, ProfileText, RoleName, TeamId, Tombstone, User, UserCriteria, UserFilter,
        UserId, UserPageKey, UserScope, UserState, permissions_of,
    },
    error::{Error, Reason, Result},
    mail::{Mailer, Welcome},
    store::{Store, StoreError, Unique, WriteTx},
};

/// The input fields of a new user, already parsed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub login_id: Option<LoginId>,
    pub display_name: DisplayName,
    pub public_name: ProfileText,
    /// Empty means the `agent` role.
    pub roles: Vec<RoleName>,
    pub team_ids: Vec<TeamId>,
    pub max_chats: Option<u32>,
    pub login_with: Option<LoginWith>,
    pub language: ProfileText,
    pub landline_phone: ProfileText,
    pub mobile_phone: ProfileText,
    pub job_title: ProfileText,
    pub location: ProfileText,
    pub can_view_colleagues_chats: bool,
}

impl NewUser {
    /// A user with only the required fields set.
    pub fn new(email: Email, display_name: DisplayName, roles: Vec<RoleName>) -> Self {
        Self {
            email,
            login_id: None,
            display_name,
            public_name: ProfileText::default(),
            roles,
            team_ids: Vec::new(),
            max_chats: None,
            login_with: None,
            language: ProfileText::default(),
            landline_phone: ProfileText::default(),
            mobile_phone: ProfileText::default(),
            job_title: ProfileText::default(),
            location: ProfileText::default(),
            can_view_colleagues_chats: false,
        }
    }
}

/// A manual creation with a password.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub user: NewUser,
    /// Checked against the org's policy here, since the policy is the org's.
    pub password: String,
    pub require_password_change: bool,
    /// Email the user a sign-in link (never the password).
    pub send_welcome_email: bool,
    pub request_id: Option<String>,
}

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<UserPageKey>,
}

/// What the first start of an empty database creates.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub org: OrgSlug,
    pub admin_email: Email,
    pub admin_password: Password,
}

#[derive(Clone)]
pub struct Users {
    store: Store,
    hasher: PasswordHasher,
    mailer: Mailer,
    invites: Batcher<PendingInvite, Committed>,
}

const CREATE_USER: &str = "CreateUser";

impl Users {
    pub fn new(store: Store, hasher: PasswordHasher, mailer: Mailer) -> Self {
        Self {
            invites: invites::invite_writer(store.clone()),
            store,
            hasher,
            mailer,
        }
    }

    pub async fn create_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        req: CreateUser,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        let org = self.store.read().org(principal.org_id).await?;
        if let Some(existing) = self
            .replayed(&org, CREATE_USER, req.request_id.as_deref())
            .await?
        {
            return Ok(existing);
        }
        let password = Password::parse(&req.password, org.password_min_length)
            .map_err(|e| Error::invalid(e.at("password")))?;
        let user = self.new_user(&org, req.user, UserState::Active).await?;
        self.authorize_roles(principal, &org, &user.roles).await?;
        let hash = self.hasher.hash(&password).await?;

        let tx = self.store.write().await?;
        take_seat(&tx, &org).await?;
        if let Some(request_id) = &req.request_id
            && !claim_request_id(&tx, &org, CREATE_USER, request_id, user.id).await?
        {
            drop(tx);
            return self
                .replayed(&org, CREATE_USER, Some(request_id))
                .await?
                .ok_or_else(Error::user_not_found);
        }
        let repo = tx.repo();
        repo.insert_user(org.org_id, &user)
            .await
            .map_err(identity_conflict)?;
        repo.insert_credentials(user.id, hash, req.require_password_change)
            .await?;
        repo.append_audit(audit::entry(
            org.org_id,
            AuditActor::from(principal),
            Action::UserCreate,
            Some(user.id),
            origin,
            json!({ "after": profile_json(&user) }),
        ))
        .await?;
        let created = reload(&tx, &org, user.id).await?;
        start_presence(&tx, &org, &[user.id]).await?;
        tx.commit().await?;
        if req.send_welcome_email {
            let welcome = Welcome {
                to: &created.email,
                name: &created.display_name,
                org: &org.name,
                org_slug: org.slug.as_str(),
            };
            // The user exists whatever happens to the email: log, don't fail.
            if let Err(err) = self.mailer.send_welcome(welcome).await {
                tracing::error!(error = %err, user_id = %created.id, "welcome email not delivered");
            }
        }
        Ok(created)
    }

    /// The user an earlier call with this request id created, if any.
    async fn replayed(
        &self,
        org: &OrgSettings,
        operation: &str,
        request_id: Option<&str>,
    ) -> Result<Option<User>> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        let read = self.store.read();
        let Some(id) = read
            .idempotent_resource(org.org_id, operation, request_id)
            .await?
        else {
            return Ok(None);
        };
        let id = UserId::parse(&id).map_err(Error::internal)?;
        read.user(org, id)
            .await?
            .map(Some)
            .ok_or_else(Error::user_not_found)
    }

    /// Checks roles and teams against the org and builds the user to insert.
    async fn new_user(&self, org: &OrgSettings, input: NewUser, state: UserState) -> Result<User> {
        let catalogue = Catalogue::load(&self.store, org, &input.roles, &input.team_ids).await?;
        build_user(org, &catalogue, input, state)
    }

    /// Refuses roles carrying a permission the principal does not hold:
    /// whoever may assign roles still cannot make anyone mightier than
    /// themselves.
    async fn authorize_roles(
        &self,
        principal: &Principal,
        org: &OrgSettings,
        roles: &[RoleName],
    ) -> Result<()> {
        let custom = self.store.read().custom_roles(org.org_id, roles).await?;
        authorize_grant(principal, permissions_of(roles, &custom))
    }

    /// Sorted, deduplicated roles and teams, all known to the org; else one
    /// violation per field (under `prefix`) naming what does not exist.
    async fn check_roles_and_teams(
        &self,
        org: &OrgSettings,
        roles: Vec<RoleName>,
        team_ids: Vec<TeamId>,
        prefix: &str,
    ) -> Result<(Vec<RoleName>, Vec<TeamId>)> {
        Catalogue::load(&self.store, org, &roles, &team_ids)
            .await?
            .check(roles, team_ids, prefix)
    }

    pub async fn get_user(&self, principal: &Principal, user_id: UserId) -> Result<User> {
        let (_, user) = self.readable(principal, user_id).await?;
        Ok(user)
    }

    /// The org and a user of it that the principal may read.
    async fn readable(
        &self,
        principal: &Principal,
        user_id: UserId,
    ) -> Result<(OrgSettings, User)> {
        let (org, user) = self.target(principal, user_id).await?;
        if !user_read_scope(principal).covers(user.id, &user.team_ids) {
            return Err(Error::permission_denied("you may not read this user"));
        }
        Ok((org, user))
    }

    /// The org and a user of it; another org's user is NOT_FOUND, like a
    /// user that does not exist.
    async fn target(&self, principal: &Principal, user_id: UserId) -> Result<(OrgSettings, User)> {
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        let user = read
            .user(&org, user_id)
            .await?
            .ok_or_else(Error::user_not_found)?;
        Ok((org, user))
    }

    /// A page of the users the principal may read that match the filter.
    pub async fn list_users(
        &self,
        principal: &Principal,
        criteria: UserCriteria,
        after: Option<UserPageKey>,
        page_size: u64,
    ) -> Result<UserPage> {
        let scope = user_read_scope(principal);
        // An API key has no self and no teams: only users.read lists anyone.
        if principal.user_id().is_none() && scope != UserScope::Org {
            return Err(Error::permission_denied(format!(
                "this requires the {} permission",
                Permission::ReadUsers
            )));
        }
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        let filter = UserFilter { criteria, scope };
        let mut rows = read
            .list_users(&org, &filter, after.as_ref(), page_size + 1)
            .await?;
        let next = if rows.len() as u64 > page_size {
            rows.truncate(page_size as usize);
            rows.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        Ok(UserPage {
            users: rows.into_iter().map(|(_, user)| user).collect(),
            next,
        })
    }

    /// A page of the org's tombstones, most recently deleted first, for
    /// callers who read the whole org's users (a tombstone has no team);
    /// and the key of the next page.
    pub async fn list_deleted(
        &self,
        principal: &Principal,
        ids: &[UserId],
        after: Option<(DateTime<Utc>, UserId)>,
        page_size: u64,
    ) -> Result<(Vec<Tombstone>, Option<(DateTime<Utc>, UserId)>)> {
        authorize(principal, Permission::ReadUsers)?;
        let mut rows = self
            .store
            .read()
            .tombstones(principal.org_id, ids, after, page_size + 1)
            .await?;
        let next = if rows.len() as u64 > page_size {
            rows.truncate(page_size as usize);
            rows.last().map(|t| (t.deleted_at, t.id))
        } else {
            None
        };
        Ok((rows, next))
    }

    /// On an empty database, creates the org and its first admin. Returns
    /// false when there was already an org (also when another replica
    /// bootstrapped at the same moment).
    pub async fn bootstrap(&self, spec: &Bootstrap) -> Result<bool> {
        if self.store.read().org_count().await? > 0 {
            return Ok(false);
        }
        let org = OrgSettings::new(spec.org.clone(), spec.org.as_str().to_owned());
        let name = DisplayName::parse("Administrator").map_err(Error::internal)?;
        let admin = NewUser::new(spec.admin_email.clone(), name, vec![RoleName::admin()]);
        let first = FirstAdmin::Password(self.hasher.hash(&spec.admin_password).await?);
        let tx = self.store.write().await?;
        let repo = tx.repo();
        if repo.org_count().await? > 0 {
            return Ok(false);
        }
        match repo.insert_org(&org, None).await {
            Err(StoreError::Conflict(_)) => return Ok(false),
            other => other?,
        }
        self.add_first_admin(
            &tx,
            &org,
            admin,
            first,
            Action::OrgBootstrap,
            &Origin::default(),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds the first admin of an org just inserted in `tx`, ACTIVE with a
    /// password or INVITED with a link, and the org's first audit entry
    /// (`action`, by the system). Returns the admin and, for an invitation,
    /// its token and expiry: send it with [`Users::send_invitation`] once
    /// `tx` commits.
    pub async fn add_first_admin(
        &self,
        tx: &WriteTx,
        org: &OrgSettings,
        admin: NewUser,
        first: FirstAdmin,
        action: Action,
        origin: &Origin,
    ) -> Result<(User, Option<(String, DateTime<Utc>)>)> {
        let state = match first {
            FirstAdmin::Password(_) => UserState::Active,
            FirstAdmin::Invite => UserState::Invited,
        };
        let admin = self.new_user(org, admin, state).await?;
        let repo = tx.repo();
        repo.insert_user(org.org_id, &admin)
            .await
            .map_err(identity_conflict)?;
        let invitation = match first {
            FirstAdmin::Password(hash) => {
                repo.insert_credentials(admin.id, hash, false).await?;
                None
            }
            FirstAdmin::Invite => Some(invites::issue(tx, org, admin.id).await?),
        };
        repo.refresh_presence(
            org,
            Some(&[admin.id]),
            ChangeReason::UserActivated,
            Utc::now(),
        )
        .await?;
        repo.append_audit(audit::entry(
            org.org_id,
            AuditActor::System,
            action,
            Some(admin.id),
            origin,
            json!({ "org": org.slug.as_str(), "admin_email": admin.email.as_str() }),
        ))
        .await?;
        let admin = reload(tx, org, admin.id).await?;
        Ok((admin, invitation))
    }
}

/// How an org's first admin gets in.
#[derive(Debug, Clone)]
pub enum FirstAdmin {
    /// With this password hash, ACTIVE at once.
    Password(String),
    /// By an invitation email, INVITED until they accept it.
    Invite,
}

/// Locks the org row for the rest of `tx` and fails unless a seat is free.
async fn take_seat(tx: &WriteTx, org: &OrgSettings) -> Result<()> {
    take_seats(tx, org, 1).await
}

/// Takes `count` seats at once, or none.
async fn take_seats(tx: &WriteTx, org: &OrgSettings, count: u64) -> Result<()> {
    // Without a limit there is nothing to count, and nothing to serialise:
    // users of such an org are created side by side.
    let Some(limit) = org.seat_limit else {
        return Ok(());
    };
    let repo = tx.repo();
    // Taking the org's row lock serialises seat counting across replicas.
    repo.lock_org(org.org_id).await?;
    let used = repo.count_seats(org.org_id).await?;
    if used + count > u64::from(limit) {
        return Err(Error::ResourceExhausted {
            reason: Reason::SeatLimitReached,
            message: format!("the org's seat limit of {limit} is reached"),
            metadata: vec![("limit", limit.to_string()), ("used", used.to_string())],
        });
    }
    Ok(())
}

/// Gives new users their presence rows (an event for those watched).
/// Last before the commit: a watched user's event takes the org's presence
/// sequence lock, which every presence writer of the org waits for, so it
/// is held briefly.
async fn start_presence(tx: &WriteTx, org: &OrgSettings, user_ids: &[UserId]) -> Result<()> {
    tx.repo()
        .start_presence(org, user_ids, ChangeReason::UserActivated, Utc::now())
        .await?;
    Ok(())
}

/// Records that `request_id` created `user_id`; false when a concurrent
/// call with the same id got there first.
async fn claim_request_id(
    tx: &WriteTx,
    org: &OrgSettings,
    operation: &str,
    request_id: &str,
    user_id: UserId,
) -> Result<bool> {
    match tx
        .repo()
        .insert_idempotency(org.org_id, operation, request_id, &user_id.to_string())
        .await
    {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// The user as now stored, inside the transaction that changed them.
async fn reload(tx: &WriteTx, org: &OrgSettings, user_id: UserId) -> Result<User> {
    tx.repo()
        .user(org, user_id)
        .await?
        .ok_or_else(Error::user_not_found)
}

/// The editable fields of a user, as the audit log shows them.
fn profile_json(user: &User) -> serde_json::Map<String, serde_json::Value> {
    let json = json!({
        "email": user.email.as_str(),
        "login_id": user.login_id.as_ref().map(LoginId::as_str),
        "display_name": user.display_name.as_str(),
        "public_name": user.public_name.as_str(),
        "state": user.state.as_str(),
        "roles": user.roles.iter().map(RoleName::as_str).collect::<Vec<_>>(),
        "team_ids": user.team_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "max_chats": user.max_chats,
        "login_with": user.login_with.map(LoginWith::as_str),
        "language": user.language.as_str(),
        "landline_phone": user.landline_phone.as_str(),
        "mobile_phone": user.mobile_phone.as_str(),
        "job_title": user.job_title.as_str(),
        "location": user.location.as_str(),
        "can_view_colleagues_chats": user.can_view_colleagues_chats,
        "suspend_reason": user.suspend_reason.as_str(),
        "has_avatar": user.has_avatar,
    });
    match json {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// `{"before": {...}, "after": {...}}` holding only the fields that differ.
fn changes(before: &User, after: &User) -> serde_json::Value {
    let (old, new) = (profile_json(before), profile_json(after));
    let changed: Vec<&String> = new.keys().filter(|k| old.get(*k) != new.get(*k)).collect();
    let pick = |map: &serde_json::Map<String, serde_json::Value>| -> serde_json::Map<_, _> {
        changed
            .iter()
            .filter_map(|k| map.get(*k).map(|v| ((*k).clone(), v.clone())))
            .collect()
    };
    json!({ "before": pick(&old), "after": pick(&new) })
}

/// A unique-constraint refusal on insert or update, by the rule it broke.
fn identity_conflict(err: StoreError) -> Error {
    match err {
        StoreError::Conflict(Unique::UserLoginId) => Error::AlreadyExists {
            reason: Reason::LoginIdTaken,
            message: "this login id is taken in the org".into(),
        },
        StoreError::Conflict(Unique::UserEmail) => Error::AlreadyExists {
            reason: Reason::EmailTaken,
            message: "this email address is taken".into(),
        },
        other => other.into(),
    }
}
