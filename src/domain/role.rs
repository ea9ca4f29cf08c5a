use std::{collections::HashMap, fmt};

use crate::{
    error::{ParseError, Reason},
    named::named_enum,
};

named_enum! {
    /// The permission catalogue. Roster enforces some of these itself; the
    /// others (chats, calls, numbers, channels, billing) are enforced by
    /// other services, which read them from `WhoAmI`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(u8)]
    pub enum Permission {
        /// Take and answer chats.
        HandleChats => "chats.handle",
        /// See chats handled by colleagues.
        ViewColleaguesChats => "chats.view_colleagues",
        /// Listen to live calls.
        ListenCalls => "calls.listen",
        /// Join live calls.
        JoinCalls => "calls.join",
        /// Buy phone numbers.
        BuyNumbers => "numbers.buy",
        /// Configure contact channels.
        ConfigureChannels => "channels.configure",
        /// Manage billing.
        ManageBilling => "billing.manage",
        /// Edit one's own name, public name, language, phones and avatar.
        EditOwnProfile => "profile.edit_own",
        /// Read the users of one's teams.
        ReadTeamUsers => "users.read_team",
        /// Read every user of the org.
        ReadUsers => "users.read",
        /// Invite, create, edit, suspend and delete users.
        ManageUsers => "users.manage",
        /// Read the presence of one's teams.
        ReadTeamPresence => "presence.read_team",
        /// Set the availability of one's teams' members.
        ManageTeamPresence => "presence.manage_team",
        /// Read the presence of the whole org.
        ReadPresence => "presence.read",
        /// Set the availability of anyone in the org.
        ManagePresence => "presence.manage",
        /// Report agents' open chat counts.
        ReportChatLoad => "presence.report_chat_load",
        /// Read the activity reports of one's teams.
        ReadTeamReports => "reports.read_team",
        /// Read the activity reports of the whole org.
        ReadReports => "reports.read",
        /// Create, edit and delete teams.
        ManageTeams => "teams.manage",
        /// Create, edit and delete custom roles.
        ManageRoles => "roles.manage",
        /// Change the org's settings.
        ManageSettings => "settings.manage",
        /// Create, list and revoke API keys.
        ManageApiKeys => "api_keys.manage",
        /// Read the audit log.
        ReadAudit => "audit.read",
    }
}

impl Permission {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Permission::from_name(s).ok_or_else(|| {
            ParseError::new(
                Reason::InvalidArgument,
                format!("unknown permission {}", crate::error::quoted(s)),
            )
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions, as a bit set: union and membership are one instruction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn of(perms: &[Permission]) -> Self {
        perms.iter().fold(Self::EMPTY, |set, &p| set.with(p))
    }

    pub fn all() -> Self {
        Self::of(Permission::ALL)
    }

    pub fn with(self, p: Permission) -> Self {
        PermissionSet(self.0 | 1 << p as u8)
    }

    pub fn union(self, other: Self) -> Self {
        PermissionSet(self.0 | other.0)
    }

    pub fn intersection(self, other: Self) -> Self {
        PermissionSet(self.0 & other.0)
    }

    /// The permissions that administer the org or its money: only their
    /// holders may grant them (to a user, a role or a key). Everyday ones
    /// (handling chats, reading, presence) may be granted by any user
    /// manager, so a provisioning service can create agents.
    pub fn administrative() -> Self {
        use Permission::*;
        Self::of(&[
            ManageUsers,
            ManageTeams,
            ManageRoles,
            ManageSettings,
            ManageApiKeys,
            ReadAudit,
            BuyNumbers,
            ConfigureChannels,
            ManageBilling,
        ])
    }

    /// Whether every permission of `self` is in `other`.
    pub fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |&p| self.contains(p))
    }
}

/// A role name: a built-in role or an org's custom role. Lower case letters,
/// digits, `_` and `-`, 1 to 50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(String);

/// The permissions of a user holding `roles`: the union of the built-in
/// roles' and, from `custom`, the org's custom roles' permissions.
pub fn permissions_of(
    roles: &[RoleName],
    custom: &HashMap<RoleName, PermissionSet>,
) -> PermissionSet {
    roles.iter().fold(PermissionSet::EMPTY, |set, role| {
        let perms = role
            .built_in_permissions()
            .or_else(|| custom.get(role).copied())
            .unwrap_or_default();
        set.union(perms)
    })
}

impl RoleName {
    pub const MAX_LEN: usize = 50;
    pub const AGENT: &'static str = "agent";
    pub const SUPERVISOR: &'static str = "supervisor";
    pub const MANAGER: &'static str = "manager";
    pub const ADMIN: &'static str = "admin";
    pub const VIEWER: &'static str = "viewer";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_lowercase();
        let valid = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(Self(s))
        } else {
            Err(ParseError::new(
                Reason::UnknownRole,
                format!("{} is not a valid role name", crate::error::quoted(&s)),
            ))
        }
    }

    /// The built-in roles, in name order.
    pub const BUILT_IN: [&'static str; 5] = [
        Self::ADMIN,
        Self::AGENT,
        Self::MANAGER,
        Self::SUPERVISOR,
        Self::VIEWER,
    ];

    /// A name for a new custom role: a valid role name that starts with a
    /// letter (so it never looks like an id or a number in a CSV column).
    pub fn parse_custom(s: &str) -> Result<Self, ParseError> {
        let name = Self::parse(s).map_err(|e| ParseError::new(Reason::InvalidName, e.message))?;
        if !name.0.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(ParseError::new(
                Reason::InvalidName,
                "must start with a lower-case letter",
            ));
        }
        Ok(name)
    }

    pub fn admin() -> Self {
        Self(Self::ADMIN.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The permissions of a built-in role; `None` for a custom role.
    pub fn built_in_permissions(&self) -> Option<PermissionSet> {
        use Permission::*;
        // Everyone may read their own profile, presence and activity and set
        // their own availability; roles grant what goes beyond that.
        let agent = PermissionSet::of(&[HandleChats, ViewColleaguesChats, EditOwnProfile]);
        let supervisor = agent.union(PermissionSet::of(&[
            ReadTeamUsers,
            ReadTeamPresence,
            ManageTeamPresence,
            ReadTeamReports,
            ListenCalls,
            JoinCalls,
        ]));
        let manager = supervisor.union(PermissionSet::of(&[
            ReadUsers,
            ReadPresence,
            ManagePresence,
            ReadReports,
            ManageTeams,
        ]));
        match self.0.as_str() {
            Self::AGENT => Some(agent),
            Self::SUPERVISOR => Some(supervisor),
            Self::MANAGER => Some(manager),
            Self::ADMIN => Some(PermissionSet::all()),
            // Dashboards name the agents whose presence they show, so viewers read users.
            Self::VIEWER => Some(PermissionSet::of(&[ReadPresence, ReadReports, ReadUsers])),
            _ => None,
        }
    }
}

/// An org's own role: a named set of permissions from the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomRole {
    pub name: RoleName,
    pub description: super::ProfileText,
    pub permissions: PermissionSet,
    pub version: i64,
}

impl CustomRole {
    pub const DESCRIPTION_MAX_LEN: usize = 500;
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_round_trip() {
        for &p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()).unwrap(), p);
        }
        assert!(Permission::ALL.len() < 64, "PermissionSet is a u64");
    }

    #[test]
    fn subsets_and_intersections() {
        let a = PermissionSet::of(&[Permission::ReadUsers, Permission::ManageUsers]);
        let b = PermissionSet::of(&[Permission::ReadUsers]);
        assert!(b.is_subset(a));
        assert!(!a.is_subset(b));
        assert_eq!(
            a.intersection(PermissionSet::administrative()),
            PermissionSet::of(&[Permission::ManageUsers])
        );
        assert!(PermissionSet::EMPTY.is_subset(b));
    }

    #[test]
    fn roles_nest() {
        let get = |n| RoleName::parse(n).unwrap().built_in_permissions().unwrap();
        let agent = get("agent");
        let supervisor = get("supervisor");
        assert_eq!(agent.union(supervisor), supervisor);
        assert!(!get("manager").contains(Permission::ManageUsers));
        assert!(get("admin").contains(Permission::ManageUsers));
        assert!(!get("viewer").contains(Permission::HandleChats));
        assert!(
            RoleName::parse("compliance")
                .unwrap()
                .built_in_permissions()
                .is_none()
        );
    }

    #[test]
    fn built_in_list_is_complete_and_sorted() {
        let mut sorted = RoleName::BUILT_IN;
        sorted.sort_unstable();
        assert_eq!(sorted, RoleName::BUILT_IN);
        for name in RoleName::BUILT_IN {
            assert!(
                RoleName::parse(name)
                    .unwrap()
                    .built_in_permissions()
                    .is_some()
            );
        }
        assert!(RoleName::parse_custom("9lives").is_err());
        assert!(RoleName::parse_custom("compliance").is_ok());
    }

    #[test]
    fn role_names_are_checked() {
        assert_eq!(RoleName::parse(" Agent ").unwrap().as_str(), "agent");
        assert!(RoleName::parse("").is_err());
        assert!(RoleName::parse("no spaces").is_err());
    }
}
