//! User use cases. Each change runs in one transaction with its audit entry,
//! so an error leaves nothing half-written.

use chrono::Utc;
use serde_json::json;

use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{PasswordHasher, Principal, authorize, user_read_scope},
    domain::{
        DisplayName, Email, LoginId, LoginWith, OrgSettings, OrgSlug, Password, Permission,
        ProfileText, RoleName, TeamId, User, UserId, UserState,
    },
    error::{Error, FieldViolation, ParseError, Reason, Result},
    store::{Store, StoreError, UserCriteria, UserFilter, UserPageKey},
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

/// A manual creation with a password.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub user: NewUser,
    /// Checked against the org's policy here, since the policy is the org's.
    pub password: String,
    pub require_password_change: bool,
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
}

const CREATE_USER: &str = "CreateUser";

impl Users {
    pub fn new(store: Store, hasher: PasswordHasher) -> Self {
        Self { store, hasher }
    }

    pub async fn create_user(
        &self,
        principal: &Principal,
        origin: &Origin,
        req: CreateUser,
    ) -> Result<User> {
        authorize(principal, Permission::ManageUsers)?;
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        if let Some(existing) = self.replayed(&org, req.request_id.as_deref()).await? {
            return Ok(existing);
        }
        let password = Password::parse(&req.password, org.password_min_length)
            .map_err(|e| Error::invalid(e.at("password")))?;
        let user = self.new_user(&org, req.user).await?;
        let hash = self.hasher.hash(&password).await?;

        let tx = self.store.write().await?;
        let repo = tx.repo();
        // Taking the org's row lock serialises seat counting across replicas.
        repo.lock_org(org.org_id).await?;
        check_seat(&org, repo.count_seats(org.org_id).await?)?;
        if let Some(request_id) = &req.request_id {
            match repo
                .insert_idempotency(org.org_id, CREATE_USER, request_id, &user.id.to_string())
                .await
            {
                Err(StoreError::Conflict(_)) => {
                    // A concurrent retry won; answer with its user.
                    drop(tx);
                    return self
                        .replayed(&org, Some(request_id))
                        .await?
                        .ok_or_else(Error::user_not_found);
                }
                other => other?,
            }
        }
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
            json!({
                "email": user.email.as_str(),
                "display_name": user.display_name.as_str(),
                "roles": user.roles.iter().map(RoleName::as_str).collect::<Vec<_>>(),
                "team_ids": user.team_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        ))
        .await?;
        let created = repo
            .user(&org, user.id)
            .await?
            .ok_or_else(Error::user_not_found)?;
        tx.commit().await?;
        Ok(created)
    }

    /// The user an earlier call with this request id created, if any.
    async fn replayed(&self, org: &OrgSettings, request_id: Option<&str>) -> Result<Option<User>> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        let read = self.store.read();
        let Some(id) = read
            .idempotent_resource(org.org_id, CREATE_USER, request_id)
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
    async fn new_user(&self, org: &OrgSettings, input: NewUser) -> Result<User> {
        let read = self.store.read();
        let mut roles = if input.roles.is_empty() {
            vec![RoleName::parse(RoleName::AGENT).map_err(Error::internal)?]
        } else {
            input.roles
        };
        roles.sort();
        roles.dedup();
        let custom_names: Vec<RoleName> = roles
            .iter()
            .filter(|r| r.built_in_permissions().is_none())
            .cloned()
            .collect();
        let custom = read.custom_roles(org.org_id, &custom_names).await?;
        let unknown_roles: Vec<String> = custom_names
            .iter()
            .filter(|r| !custom.contains_key(*r))
            .map(ToString::to_string)
            .collect();
        let mut team_ids = input.team_ids;
        team_ids.sort();
        team_ids.dedup();
        let existing = read.existing_teams(org.org_id, &team_ids).await?;
        let unknown_teams: Vec<String> = team_ids
            .iter()
            .filter(|t| !existing.contains(t))
            .map(ToString::to_string)
            .collect();
        let mut violations = Vec::new();
        if !unknown_roles.is_empty() {
            violations.push(unknown(
                "user.roles",
                Reason::UnknownRole,
                "roles",
                &unknown_roles,
            ));
        }
        if !unknown_teams.is_empty() {
            violations.push(unknown(
                "user.team_ids",
                Reason::UnknownTeam,
                "teams",
                &unknown_teams,
            ));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        Ok(User {
            id: UserId::generate(),
            email: input.email,
            login_id: input.login_id,
            display_name: input.display_name,
            public_name: input.public_name,
            state: UserState::Active,
            locked: false,
            roles,
            team_ids,
            max_chats: input.max_chats,
            effective_max_chats: input.max_chats.unwrap_or(org.default_max_chats),
            login_with: input.login_with,
            language: input.language,
            landline_phone: input.landline_phone,
            mobile_phone: input.mobile_phone,
            job_title: input.job_title,
            location: input.location,
            can_view_colleagues_chats: input.can_view_colleagues_chats,
            password_change_required: false,
            version: 1,
            created_at: Utc::now(),
            last_login_at: None,
            last_logout_at: None,
        })
    }

    pub async fn get_user(&self, principal: &Principal, user_id: UserId) -> Result<User> {
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        let user = read
            .user(&org, user_id)
            .await?
            .ok_or_else(Error::user_not_found)?;
        if !user_read_scope(principal).covers(user.id, &user.team_ids) {
            return Err(Error::permission_denied("you may not read this user"));
        }
        Ok(user)
    }

    /// A page of the users the principal may read that match the filter.
    pub async fn list_users(
        &self,
        principal: &Principal,
        criteria: UserCriteria,
        after: Option<UserPageKey>,
        page_size: u64,
    ) -> Result<UserPage> {
        let read = self.store.read();
        let org = read.org(principal.org_id).await?;
        let filter = UserFilter {
            criteria,
            scope: user_read_scope(principal),
        };
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

    /// On an empty database, creates the org and its first admin. Returns
    /// false when there was already an org (also when another replica
    /// bootstrapped at the same moment).
    pub async fn bootstrap(&self, spec: &Bootstrap) -> Result<bool> {
        if self.store.read().org_count().await? > 0 {
            return Ok(false);
        }
        let org = OrgSettings::new(spec.org.clone(), spec.org.as_str().to_owned());
        let admin = User {
            id: UserId::generate(),
            email: spec.admin_email.clone(),
            login_id: None,
            display_name: DisplayName::parse("Administrator").map_err(Error::internal)?,
            public_name: ProfileText::default(),
            state: UserState::Active,
            locked: false,
            roles: vec![RoleName::admin()],
            team_ids: Vec::new(),
            max_chats: None,
            effective_max_chats: org.default_max_chats,
            login_with: None,
            language: ProfileText::default(),
            landline_phone: ProfileText::default(),
            mobile_phone: ProfileText::default(),
            job_title: ProfileText::default(),
            location: ProfileText::default(),
            can_view_colleagues_chats: false,
            password_change_required: false,
            version: 1,
            created_at: Utc::now(),
            last_login_at: None,
            last_logout_at: None,
        };
        let hash = self.hasher.hash(&spec.admin_password).await?;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        if repo.org_count().await? > 0 {
            return Ok(false);
        }
        match repo.insert_org(&org).await {
            Err(StoreError::Conflict(_)) => return Ok(false),
            other => other?,
        }
        repo.insert_user(org.org_id, &admin)
            .await
            .map_err(identity_conflict)?;
        repo.insert_credentials(admin.id, hash, false).await?;
        repo.append_audit(audit::entry(
            org.org_id,
            AuditActor::System,
            Action::OrgBootstrap,
            Some(admin.id),
            &Origin::default(),
            json!({ "org": org.slug.as_str(), "admin_email": admin.email.as_str() }),
        ))
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// One violation naming (the first few of) the entries that do not exist.
fn unknown(field: &str, reason: Reason, what: &str, names: &[String]) -> FieldViolation {
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(3);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    ParseError::new(reason, format!("no such {what} in the org: {shown}{tail}")).at(field)
}

fn check_seat(org: &OrgSettings, used: u64) -> Result<()> {
    match org.seat_limit {
        Some(limit) if used >= u64::from(limit) => Err(Error::ResourceExhausted {
            reason: Reason::SeatLimitReached,
            message: format!("the org's seat limit of {limit} is reached"),
            metadata: vec![("limit", limit.to_string()), ("used", used.to_string())],
        }),
        _ => Ok(()),
    }
}

/// A unique-constraint refusal on insert, told apart by the column it names.
fn identity_conflict(err: StoreError) -> Error {
    match err {
        StoreError::Conflict(detail) if detail.contains("login_id") => Error::AlreadyExists {
            reason: Reason::LoginIdTaken,
            message: "this login id is taken in the org".into(),
        },
        StoreError::Conflict(detail) if detail.contains("email") => Error::AlreadyExists {
            reason: Reason::EmailTaken,
            message: "this email address is taken".into(),
        },
        other => other.into(),
    }
}
