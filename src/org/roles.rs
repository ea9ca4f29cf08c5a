//! Roles: the five built-in ones (code, immutable) and the org's custom ones
//! (rows). Permissions are resolved on every request, so a change reaches
//! holders on their next request.

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Org, check_etag, teams::diff};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize, authorize_grant},
    domain::{ChangeReason, CustomRole, OrgId, Permission, PermissionSet, ProfileText, RoleName},
    error::{Error, Reason, Result},
    store::StoreError,
};

const CREATE_ROLE: &str = "CreateRole";

/// A built-in role's etag: they never change.
const BUILT_IN_VERSION: i64 = 1;

#[derive(Debug, Clone)]
pub struct NewRole {
    pub name: RoleName,
    pub description: ProfileText,
    pub permissions: PermissionSet,
}

/// A change to the fields named in an update mask.
#[derive(Debug, Clone)]
pub struct RoleChange {
    pub name: RoleName,
    pub etag: Option<String>,
    pub description: Option<ProfileText>,
    pub permissions: Option<PermissionSet>,
}

/// A role as listed: built-in or custom.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleView {
    pub name: RoleName,
    pub description: String,
    pub permissions: PermissionSet,
    pub built_in: bool,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct RolePage {
    pub roles: Vec<RoleView>,
    /// The last name of this page; the next starts after it.
    pub next: Option<String>,
}

impl From<CustomRole> for RoleView {
    fn from(role: CustomRole) -> Self {
        Self {
            name: role.name,
            description: role.description.as_str().to_owned(),
            permissions: role.permissions,
            built_in: false,
            version: role.version,
        }
    }
}

fn built_in(name: &RoleName) -> Option<RoleView> {
    let permissions = name.built_in_permissions()?;
    let description = match name.as_str() {
        RoleName::AGENT => "Handles chats; reads and edits their own profile and presence.",
        RoleName::SUPERVISOR => "An agent who also oversees the users and presence of their teams.",
        RoleName::MANAGER => "A supervisor for the whole org, with reports and teams.",
        RoleName::ADMIN => {
            "Everything, including users, roles, settings, API keys and the audit log."
        }
        RoleName::VIEWER => "Read-only dashboards: presence and reports of the whole org.",
        _ => "",
    };
    Some(RoleView {
        name: name.clone(),
        description: description.to_owned(),
        permissions,
        built_in: true,
        version: BUILT_IN_VERSION,
    })
}

impl Org {
    pub async fn create_role(
        &self,
        principal: &Principal,
        origin: &Origin,
        new: NewRole,
        request_id: Option<String>,
    ) -> Result<RoleView> {
        authorize(principal, Permission::ManageRoles)?;
        authorize_grant(principal, new.permissions)?;
        let org_id = principal.org_id;
        if let Some(role) = self.replayed_role(org_id, request_id.as_deref()).await? {
            return Ok(role);
        }
        refuse_built_in(&new.name)?;
        let role = CustomRole {
            name: new.name,
            description: new.description,
            permissions: new.permissions,
            version: 1,
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        if let Some(request_id) = &request_id {
            match repo
                .insert_idempotency(org_id, CREATE_ROLE, request_id, role.name.as_str())
                .await
            {
                Err(StoreError::Conflict(_)) => {
                    // A concurrent retry won; answer with its role.
                    drop(tx);
                    return self
                        .replayed_role(org_id, Some(request_id))
                        .await?
                        .ok_or_else(role_not_found);
                }
                other => other?,
            }
        }
        if repo.custom_role(org_id, &role.name).await?.is_some() {
            return Err(role_taken());
        }
        repo.insert_role(org_id, &role).await.map_err(|e| match e {
            StoreError::Conflict(_) => role_taken(),
            other => other.into(),
        })?;
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::from(principal),
            Action::RoleCreate,
            resource(&role.name),
            origin,
            json!({ "before": null, "after": fields(&role) }),
        ))
        .await?;
        tx.commit().await?;
        Ok(role.into())
    }

    async fn replayed_role(
        &self,
        org_id: OrgId,
        request_id: Option<&str>,
    ) -> Result<Option<RoleView>> {
        let Some(name) = self.replayed(org_id, CREATE_ROLE, request_id).await? else {
            return Ok(None);
        };
        let name = RoleName::parse(&name).map_err(Error::internal)?;
        // Deleted since: the retry has nothing to return.
        self.store
            .read()
            .custom_role(org_id, &name)
            .await?
            .map(|role| Some(role.into()))
            .ok_or_else(role_not_found)
    }

    /// A page of the org's roles, built-in and custom, ordered by name.
    pub async fn list_roles(
        &self,
        principal: &Principal,
        after: Option<String>,
        page_size: u64,
    ) -> Result<RolePage> {
        let custom = self.store.read().all_custom_roles(principal.org_id).await?;
        let mut roles: Vec<RoleView> = RoleName::BUILT_IN
            .iter()
            .filter_map(|name| RoleName::parse(name).ok())
            .filter_map(|name| built_in(&name))
            .chain(custom.into_iter().map(RoleView::from))
            .collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        let start = match &after {
            Some(after) => roles.partition_point(|r| r.name.as_str() <= after.as_str()),
            None => 0,
        };
        let mut page: Vec<RoleView> = roles
            .into_iter()
            .skip(start)
            .take(page_size as usize + 1)
            .collect();
        let next = if page.len() as u64 > page_size {
            page.truncate(page_size as usize);
            page.last().map(|r| r.name.as_str().to_owned())
        } else {
            None
        };
        Ok(RolePage { roles: page, next })
    }

    pub async fn update_role(
        &self,
        principal: &Principal,
        origin: &Origin,
        change: RoleChange,
    ) -> Result<RoleView> {
        authorize(principal, Permission::ManageRoles)?;
        if let Some(permissions) = change.permissions {
            authorize_grant(principal, permissions)?;
        }
        refuse_built_in(&change.name)?;
        let org_id = principal.org_id;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let current = repo
            .custom_role(org_id, &change.name)
            .await?
            .ok_or_else(role_not_found)?;
        check_etag(change.etag.as_deref(), current.version)?;
        let mut next = current.clone();
        if let Some(description) = change.description {
            next.description = description;
        }
        if let Some(permissions) = change.permissions {
            next.permissions = permissions;
        }
        let (before, after) = diff(&fields(&current), &fields(&next));
        if before.is_empty() {
            return Ok(current.into());
        }
        if !repo.update_role(org_id, &next).await? {
            return Err(Error::concurrent_change());
        }
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::from(principal),
            Action::RoleUpdate,
            resource(&current.name),
            origin,
            json!({ "before": before, "after": after }),
        ))
        .await?;
        let updated = repo
            .custom_role(org_id, &current.name)
            .await?
            .ok_or_else(role_not_found)?;
        if updated.permissions != current.permissions {
            let org = repo.org(org_id).await?;
            repo.refresh_presence(&org, None, ChangeReason::RolesChanged, Utc::now())
                .await?;
        }
        tx.commit().await?;
        Ok(updated.into())
    }

    /// Deletes a custom role. While anyone holds it this is refused with the
    /// holder count, unless `detach_holders` says to take it from them.
    pub async fn delete_role(
        &self,
        principal: &Principal,
        origin: &Origin,
        name: RoleName,
        etag: Option<String>,
        detach_holders: bool,
    ) -> Result<()> {
        authorize(principal, Permission::ManageRoles)?;
        refuse_built_in(&name)?;
        let org_id = principal.org_id;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let role = repo
            .custom_role(org_id, &name)
            .await?
            .ok_or_else(role_not_found)?;
        check_etag(etag.as_deref(), role.version)?;
        let holders = repo.role_holder_count(org_id, &name).await?;
        if holders > 0 && !detach_holders {
            return Err(Error::FailedPrecondition {
                reason: Reason::RoleInUse,
                message: format!(
                    "{holders} user(s) hold this role; take it from them first or set detach_holders"
                ),
                metadata: vec![("holders", holders.to_string())],
            });
        }
        repo.delete_role(org_id, &name).await?;
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::from(principal),
            Action::RoleDelete,
            resource(&name),
            origin,
            json!({ "before": fields(&role), "after": null, "detached_holders": holders }),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn refuse_built_in(name: &RoleName) -> Result<()> {
    if name.built_in_permissions().is_some() {
        return Err(Error::failed_precondition(
            Reason::BuiltinRole,
            format!(
                "{name} is a built-in role; built-in roles cannot be created, changed or deleted"
            ),
        ));
    }
    Ok(())
}

fn role_taken() -> Error {
    Error::AlreadyExists {
        reason: Reason::RoleTaken,
        message: "the org already has a role of this name".into(),
    }
}

fn role_not_found() -> Error {
    Error::NotFound {
        reason: Reason::RoleNotFound,
        message: "role not found".into(),
    }
}

fn resource(name: &RoleName) -> String {
    format!("roles/{name}")
}

fn fields(role: &CustomRole) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("description".into(), json!(role.description.as_str()));
    map.insert(
        "permissions".into(),
        json!(
            role.permissions
                .iter()
                .map(Permission::as_str)
                .collect::<Vec<_>>()
        ),
    );
    map
}
