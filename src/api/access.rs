//! The permission table: for every RPC, who may call it and on whom it may
//! act. The authentication layer enforces the "who" part before any handler
//! runs; use cases narrow "on whom" (self, own teams, whole org) with the
//! same permissions. `docs/permissions.md` is generated from this table and a
//! test keeps the two identical.

use crate::domain::{
    Permission::{self, *},
    PermissionSet, RoleName,
};

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    /// Anyone, without credentials.
    Public,
    /// Any signed-in person or API key; the RPC narrows what each may see or do.
    Authenticated,
    /// A person with a session; API keys have no self to act on.
    Person,
    /// Holders of at least one of these permissions (roles or API key scopes).
    AnyOf(&'static [Permission]),
    /// Platform API keys only, which belong to no org; no org's caller.
    Platform,
}

impl Callers {
    /// Whether a caller with these permissions (a person or a key) passes.
    pub fn admit(self, permissions: PermissionSet, is_person: bool) -> bool {
        match self {
            Callers::Public | Callers::Authenticated => true,
            Callers::Person => is_person,
            Callers::AnyOf(needed) => needed.iter().any(|p| permissions.contains(*p)),
            Callers::Platform => false,
        }
    }
}

pub struct Rule {
    /// `package.Service/Method`.
    pub rpc: &'static str,
    pub callers: Callers,
    /// On whom the call may act, as people read it.
    pub on_whom: &'static str,
}

const fn rule(rpc: &'static str, callers: Callers, on_whom: &'static str) -> Rule {
    Rule {
        rpc,
        callers,
        on_whom,
    }
}

const USERS_READERS: Callers = Callers::Authenticated;
const READ_USERS: &str = "self; the caller's teams with users.read_team; the org with users.read";
const READ_PRESENCE: &str =
    "self; the caller's teams with presence.read_team; the org with presence.read";

pub const RULES: &[Rule] = &[
    rule("roster.v1.AuthService/Login", Callers::Public, "—"),
    rule(
        "roster.v1.AuthService/AcceptInvite",
        Callers::Public,
        "the invited user of the token",
    ),
    rule(
        "roster.v1.AuthService/Logout",
        Callers::Person,
        "the caller's session",
    ),
    rule(
        "roster.v1.AuthService/WhoAmI",
        Callers::Authenticated,
        "self",
    ),
    rule(
        "roster.v1.AuthService/ChangePassword",
        Callers::Person,
        "self",
    ),
    rule(
        "roster.v1.AuthService/CreateApiKey",
        Callers::AnyOf(&[ManageApiKeys]),
        "the org",
    ),
    rule(
        "roster.v1.AuthService/ListApiKeys",
        Callers::AnyOf(&[ManageApiKeys]),
        "the org",
    ),
    rule(
        "roster.v1.AuthService/RevokeApiKey",
        Callers::AnyOf(&[ManageApiKeys]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/InviteUser",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/ResendInvite",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/RevokeInvite",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/CreateUser",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule("roster.v1.UserService/GetUser", USERS_READERS, READ_USERS),
    rule("roster.v1.UserService/ListUsers", USERS_READERS, READ_USERS),
    rule(
        "roster.v1.UserService/ListDeletedUsers",
        Callers::AnyOf(&[ReadUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/UpdateUser",
        Callers::AnyOf(&[ManageUsers, EditOwnProfile]),
        "self (names, language, phones) with profile.edit_own; the org with users.manage",
    ),
    rule(
        "roster.v1.UserService/SuspendUser",
        Callers::AnyOf(&[ManageUsers]),
        "the org but self",
    ),
    rule(
        "roster.v1.UserService/ReactivateUser",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/UnlockUser",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/DeleteUser",
        Callers::AnyOf(&[ManageUsers]),
        "the org but self",
    ),
    rule(
        "roster.v1.UserService/ResetPassword",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/ForcePasswordChange",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/SetAvatar",
        Callers::AnyOf(&[ManageUsers, EditOwnProfile]),
        "self with profile.edit_own; the org with users.manage",
    ),
    rule("roster.v1.UserService/GetAvatar", USERS_READERS, READ_USERS),
    rule(
        "roster.v1.UserService/ImportUsers",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/GetImportJob",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/ListImportJobs",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/GetImportReport",
        Callers::AnyOf(&[ManageUsers]),
        "the org",
    ),
    rule(
        "roster.v1.UserService/ExportUsers",
        Callers::AnyOf(&[ReadUsers]),
        "the org",
    ),
    rule(
        "roster.v1.PresenceService/SetAvailability",
        Callers::Authenticated,
        "self (a person); the caller's teams with presence.manage_team; the org with presence.manage",
    ),
    rule(
        "roster.v1.PresenceService/Heartbeat",
        Callers::Person,
        "self",
    ),
    rule(
        "roster.v1.PresenceService/ReportChatLoad",
        Callers::AnyOf(&[ReportChatLoad]),
        "the org",
    ),
    rule(
        "roster.v1.PresenceService/GetPresence",
        Callers::Authenticated,
        READ_PRESENCE,
    ),
    rule(
        "roster.v1.PresenceService/ListPresence",
        Callers::Authenticated,
        READ_PRESENCE,
    ),
    rule(
        "roster.v1.PresenceService/WatchPresence",
        Callers::Authenticated,
        READ_PRESENCE,
    ),
    rule(
        "roster.v1.OrgService/GetOrgSettings",
        Callers::Authenticated,
        "the org",
    ),
    rule(
        "roster.v1.OrgService/UpdateOrgSettings",
        Callers::AnyOf(&[ManageSettings]),
        "the org",
    ),
    rule(
        "roster.v1.OrgService/CreateTeam",
        Callers::AnyOf(&[ManageTeams]),
        "the org",
    ),
    rule(
        "roster.v1.OrgService/ListTeams",
        Callers::Authenticated,
        "the org",
    ),
    rule(
        "roster.v1.OrgService/UpdateTeam",
        Callers::AnyOf(&[ManageTeams]),
        "the org",
    ),
    rule(
        "roster.v1.OrgService/DeleteTeam",
        Callers::AnyOf(&[ManageTeams]),
        "the org",
    ),
    rule(
        "roster.v1.OrgService/CreateRole",
        Callers::AnyOf(&[ManageRoles]),
        "the org",
    ),
    rule(
        "roster.v1.OrgService/ListRoles",
        Callers::Authenticated,
        "the org",
    ),
    rule(
        "roster.v1.OrgService/UpdateRole",
        Callers::AnyOf(&[ManageRoles]),
        "the org",
    ),
    rule(
        "roster.v1.OrgService/DeleteRole",
        Callers::AnyOf(&[ManageRoles]),
        "the org",
    ),
    rule(
        "roster.v1.AuditService/ListAuditEvents",
        Callers::AnyOf(&[ReadAudit]),
        "the org",
    ),
    rule(
        "roster.v1.ReportService/GetActivity",
        Callers::Authenticated,
        "self; the caller's teams with reports.read_team; the org with reports.read",
    ),
    rule(
        "roster.v1.PlatformService/CreateOrg",
        Callers::Platform,
        "a new org and its first admin",
    ),
    rule(
        "roster.v1.PlatformService/GetOrg",
        Callers::Platform,
        "any org",
    ),
    rule(
        "roster.v1.PlatformService/ListOrgs",
        Callers::Platform,
        "every org",
    ),
    rule(
        "roster.v1.PlatformService/UpdateOrg",
        Callers::Platform,
        "any org",
    ),
    rule(
        "roster.v1.PlatformService/SuspendOrg",
        Callers::Platform,
        "any active org",
    ),
    rule(
        "roster.v1.PlatformService/ReactivateOrg",
        Callers::Platform,
        "any suspended org",
    ),
    rule(
        "roster.v1.PlatformService/DeleteOrg",
        Callers::Platform,
        "any suspended org",
    ),
    rule(
        "roster.v1.PlatformService/ListPlatformAuditEvents",
        Callers::Platform,
        "the platform audit log",
    ),
];

/// The rule of a request path (`/package.Service/Method`).
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    let rpc = path.strip_prefix('/')?;
    RULES.iter().find(|r| r.rpc == rpc)
}

const BUILT_IN_ROLES: [&str; 5] = [
    RoleName::AGENT,
    RoleName::SUPERVISOR,
    RoleName::MANAGER,
    RoleName::ADMIN,
    RoleName::VIEWER,
];

/// `docs/permissions.md`, generated from the tables in code.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Permissions\n\n\
         Generated from `src/api/access.rs` and `src/domain/role.rs`; a test keeps this file \
         identical to them (regenerate with `ROSTER_WRITE_DOCS=1 cargo test --lib access`).\n\n\
         A caller's permissions are the union of their roles' permissions, computed on every \
         request (a role change applies at once), or an API key's scopes. The authentication \
         layer refuses a call whose caller cannot pass the **callers** column \
         (`PERMISSION_DENIED`); the RPC then acts only **on whom** the table says, and answers \
         `PERMISSION_DENIED` for anyone else. \"But self\" is a rule of the change, not a \
         permission: suspending or deleting oneself is `FAILED_PRECONDITION` with reason \
         `SELF_ACTION`; suspending, deleting or demoting the org's last active admin is \
         `FAILED_PRECONDITION` with reason `LAST_ADMIN`. Nothing reaches another org: its users, teams and keys are \
         `NOT_FOUND`.\n\n",
    );
    let administrative: Vec<String> = PermissionSet::administrative()
        .iter()
        .map(|p| format!("`{p}`"))
        .collect();
    out.push_str(&format!(
        "Granting: an administrative permission ({}) can be given — through a user's roles, a \
         custom role or an API key's scopes — only by a caller who holds it; everyday \
         permissions can be given by anyone allowed to make the change.\n\n\
         ## Built-in roles\n\n| permission |",
        administrative.join(", ")
    ));
    for role in BUILT_IN_ROLES {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(BUILT_IN_ROLES.len()));
    out.push('\n');
    for &permission in Permission::ALL {
        out.push_str(&format!("| `{permission}` |"));
        for role in BUILT_IN_ROLES {
            let held = role_permissions(role).contains(permission);
            out.push_str(if held { " ✓ |" } else { " |" });
        }
        out.push('\n');
    }
    out.push_str("\n## RPCs\n\n| RPC | callers | on whom |");
    for role in BUILT_IN_ROLES {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n|---|---|---|");
    out.push_str(&"---|".repeat(BUILT_IN_ROLES.len()));
    out.push('\n');
    for rule in RULES {
        let callers = match rule.callers {
            Callers::Public => "anyone".to_owned(),
            Callers::Authenticated => "any person or key".to_owned(),
            Callers::Person => "any person (no key)".to_owned(),
            Callers::AnyOf(perms) => perms
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            Callers::Platform => "platform keys only".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {callers} | {} |",
            rule.rpc, rule.on_whom
        ));
        for role in BUILT_IN_ROLES {
            let admitted = rule.callers.admit(role_permissions(role), true);
            out.push_str(if admitted { " ✓ |" } else { " |" });
        }
        out.push('\n');
    }
    out.push_str(
        "\nAn API key passes the callers column with its scopes, never as a person: it cannot \
         call `Logout`, `ChangePassword` or `Heartbeat`, and has no \"self\".\n\n\
         Platform API keys (`rosterd platform-keys create`) belong to no org: they call \
         `PlatformService` and nothing else, and no org's session or key calls \
         `PlatformService` (`PERMISSION_DENIED`, reason `WRONG_CALLER_KIND`).\n",
    );
    out
}

fn role_permissions(role: &str) -> PermissionSet {
    RoleName::parse(role)
        .ok()
        .and_then(|r| r.built_in_permissions())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::api::pb::FILE_DESCRIPTOR_SET;

    #[test]
    fn every_rpc_of_the_contract_has_exactly_one_rule() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let mut rpcs: Vec<String> = fds
            .file
            .iter()
            .flat_map(|f| {
                f.service.iter().flat_map(move |s| {
                    s.method
                        .iter()
                        .map(move |m| format!("{}.{}/{}", f.package(), s.name(), m.name()))
                })
            })
            .collect();
        rpcs.sort();
        let mut ruled: Vec<String> = RULES.iter().map(|r| r.rpc.to_owned()).collect();
        ruled.sort();
        assert_eq!(rpcs, ruled);
    }

    #[test]
    fn the_document_matches_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/permissions.md");
        let expected = markdown();
        if std::env::var_os("ROSTER_WRITE_DOCS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/permissions.md is out of date: run ROSTER_WRITE_DOCS=1 cargo test --lib access"
        );
    }
}
