//! The checks every new user goes through, whether invited, created or
//! imported: roles and teams the org knows (looked up in a [`Catalogue`]),
//! the `agent` role when none is given, and the user row that results.

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use super::NewUser;
use crate::{
    domain::{OrgSettings, PermissionSet, ProfileText, RoleName, TeamId, User, UserId, UserState},
    error::{Error, FieldViolation, ParseError, Reason, Result},
    store::Store,
};

/// The org's custom roles and teams that checks look names up in: loaded
/// for the names of one request, or whole for an import.
pub(super) struct Catalogue {
    pub(super) custom_roles: HashMap<RoleName, PermissionSet>,
    pub(super) teams: HashSet<TeamId>,
}

impl Catalogue {
    pub(super) async fn load(
        store: &Store,
        org: &OrgSettings,
        roles: &[RoleName],
        team_ids: &[TeamId],
    ) -> Result<Self> {
        let read = store.read();
        let custom: Vec<RoleName> = roles
            .iter()
            .filter(|r| r.built_in_permissions().is_none())
            .cloned()
            .collect();
        Ok(Self {
            custom_roles: read.custom_roles(org.org_id, &custom).await?,
            teams: read
                .existing_teams(org.org_id, team_ids)
                .await?
                .into_iter()
                .collect(),
        })
    }

    /// Sorted, deduplicated roles and teams, all known to the org; else one
    /// violation per field (under `prefix`) naming what does not exist.
    pub(super) fn check(
        &self,
        mut roles: Vec<RoleName>,
        mut team_ids: Vec<TeamId>,
        prefix: &str,
    ) -> Result<(Vec<RoleName>, Vec<TeamId>)> {
        roles.sort();
        roles.dedup();
        team_ids.sort();
        team_ids.dedup();
        let unknown_roles: Vec<String> = roles
            .iter()
            .filter(|r| r.built_in_permissions().is_none() && !self.custom_roles.contains_key(*r))
            .map(ToString::to_string)
            .collect();
        let unknown_teams: Vec<String> = team_ids
            .iter()
            .filter(|t| !self.teams.contains(t))
            .map(ToString::to_string)
            .collect();
        let mut violations = Vec::new();
        if !unknown_roles.is_empty() {
            violations.push(unknown(
                &format!("{prefix}.roles"),
                Reason::UnknownRole,
                "roles",
                &unknown_roles,
            ));
        }
        if !unknown_teams.is_empty() {
            violations.push(unknown(
                &format!("{prefix}.team_ids"),
                Reason::UnknownTeam,
                "teams",
                &unknown_teams,
            ));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        Ok((roles, team_ids))
    }
}

/// The user to insert for `input`, its roles (agent when none) and teams
/// checked against the catalogue: the one path every new user takes.
pub(super) fn build_user(
    org: &OrgSettings,
    catalogue: &Catalogue,
    input: NewUser,
    state: UserState,
) -> Result<User> {
    let roles = if input.roles.is_empty() {
        vec![RoleName::parse(RoleName::AGENT).map_err(Error::internal)?]
    } else {
        input.roles
    };
    let (roles, team_ids) = catalogue.check(roles, input.team_ids, "user")?;
    Ok(User {
        id: UserId::generate(),
        email: input.email,
        login_id: input.login_id,
        display_name: input.display_name,
        public_name: input.public_name,
        state,
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
        suspend_reason: ProfileText::default(),
        has_avatar: false,
    })
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
