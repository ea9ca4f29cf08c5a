//! The access policy, as pure functions of the principal: no I/O, so every
//! rule is unit-tested here.

use super::Principal;
use crate::{
    domain::{Permission, PermissionSet, UserScope},
    error::{Error, Result},
};

/// Fails with `PERMISSION_DENIED` unless the principal holds every
/// administrative permission it grants (to a key, a role or a user's roles):
/// nobody makes anyone an administrator of more than they administer.
pub fn authorize_grant(principal: &Principal, granted: PermissionSet) -> Result<()> {
    let granted = granted.intersection(PermissionSet::administrative());
    if granted.is_subset(principal.permissions) {
        Ok(())
    } else {
        let missing: Vec<&str> = granted
            .iter()
            .filter(|p| !principal.permissions.contains(*p))
            .map(Permission::as_str)
            .collect();
        Err(Error::permission_denied(format!(
            "you cannot grant administrative permissions you do not hold: {}",
            missing.join(", ")
        )))
    }
}

/// Fails with `PERMISSION_DENIED` unless the principal holds `permission`.
pub fn authorize(principal: &Principal, permission: Permission) -> Result<()> {
    if principal.permissions.contains(permission) {
        Ok(())
    } else {
        Err(Error::permission_denied(format!(
            "this requires the {permission} permission"
        )))
    }
}

pub fn user_read_scope(principal: &Principal) -> UserScope {
    scope_of(principal, Permission::ReadUsers, Permission::ReadTeamUsers)
}

/// Whose activity reports the principal may read.
pub fn report_read_scope(principal: &Principal) -> UserScope {
    scope_of(
        principal,
        Permission::ReadReports,
        Permission::ReadTeamReports,
    )
}

/// The org with `org_wide`, else the caller's teams (and self) with
/// `team_wide`, else oneself.
fn scope_of(principal: &Principal, org_wide: Permission, team_wide: Permission) -> UserScope {
    let me = principal.user_id();
    if principal.permissions.contains(org_wide) {
        UserScope::Org
    } else if principal.permissions.contains(team_wide) {
        UserScope::Teams {
            teams: principal.team_ids.clone(),
            me,
        }
    } else {
        UserScope::Me(me)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{
        auth::Actor,
        domain::{OrgId, RoleName, SessionId, TeamId, UserId},
    };

    fn principal(role: &str, teams: Vec<TeamId>) -> Principal {
        Principal {
            org_id: OrgId::generate(),
            actor: Actor::User {
                user_id: UserId::generate(),
                session_id: SessionId::generate(),
                expires_at: Utc::now(),
            },
            permissions: RoleName::parse(role)
                .unwrap()
                .built_in_permissions()
                .unwrap(),
            team_ids: teams,
            password_change_required: false,
        }
    }

    #[test]
    fn only_admins_manage_users() {
        for role in ["agent", "supervisor", "manager", "viewer"] {
            assert!(authorize(&principal(role, vec![]), Permission::ManageUsers).is_err());
        }
        assert!(authorize(&principal("admin", vec![]), Permission::ManageUsers).is_ok());
    }

    #[test]
    fn read_scopes() {
        let team = TeamId::generate();
        let other = UserId::generate();
        let agent = principal("agent", vec![team]);
        let me = agent.user_id().unwrap();
        assert!(user_read_scope(&agent).covers(me, &[]));
        assert!(!user_read_scope(&agent).covers(other, &[team]));
        let supervisor = principal("supervisor", vec![team]);
        assert!(user_read_scope(&supervisor).covers(other, &[team]));
        assert!(!user_read_scope(&supervisor).covers(other, &[TeamId::generate()]));
        assert_eq!(
            user_read_scope(&principal("manager", vec![])),
            UserScope::Org
        );
    }
}
