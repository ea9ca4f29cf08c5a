//! One CSV row checked into the user it invites, or the report text of
//! why not: the same checks as an invitation, plus the file-wide ones
//! (duplicates inside the file).

use std::collections::HashMap;

use super::{ImportOptions, ImportRow};
use crate::users::{Catalogue, NewUser, build_user, export};
use crate::{
    auth::{Principal, authorize_grant},
    domain::{
        DisplayName, Email, LoginId, OrgSettings, RoleName, TeamId, User, UserState, permissions_of,
    },
    error::{Error, Reason, Result},
};

/// Checks one row into the user to invite, or the report text of why not.
pub(super) struct RowChecker<'a> {
    pub(super) org: &'a OrgSettings,
    pub(super) principal: &'a Principal,
    pub(super) options: &'a ImportOptions,
    pub(super) catalogue: &'a Catalogue,
    pub(super) team_ids_by_name: &'a HashMap<String, TeamId>,
    pub(super) columns: HashMap<&'static str, usize>,
    /// First line of each email and login id seen in the file.
    pub(super) emails: HashMap<String, u64>,
    pub(super) login_ids: HashMap<String, u64>,
}

impl RowChecker<'_> {
    pub(super) fn check(&mut self, row: &ImportRow) -> Result<User, String> {
        let cells = row.cells.as_ref().map_err(Clone::clone)?;
        let cell = |name: &str| {
            self.columns
                .get(name)
                .and_then(|i| cells.get(*i))
                .map(|c| export::undefuse(c.trim()))
                .unwrap_or("")
        };
        let problem = |column: &str, e: crate::error::ParseError| {
            format!("{column}: {}: {}", e.reason, e.message)
        };
        let login_id = match cell("login_id") {
            "" => None,
            raw => Some(LoginId::parse(raw).map_err(|e| problem("login_id", e))?),
        };
        let email = match (cell("email"), &login_id) {
            ("", Some(login)) => Email::parse(login.as_str()).map_err(|_| {
                format!(
                    "email: {}: required unless the login id is an email",
                    Reason::InvalidEmail
                )
            })?,
            (raw, _) => Email::parse(raw).map_err(|e| problem("email", e))?,
        };
        let (first, last) = (cell("first_name"), cell("last_name"));
        let display_name = DisplayName::parse(format!("{first} {last}").trim()).map_err(|e| {
            // Name the column at fault: the last name when it alone fails.
            let last_at_fault = DisplayName::parse(first).is_ok()
                && !last.is_empty()
                && DisplayName::parse(last).is_err();
            problem(
                if last_at_fault {
                    "last_name"
                } else {
                    "first_name"
                },
                e,
            )
        })?;
        let roles = match split(cell("roles")) {
            names if names.is_empty() => self.options.default_roles.clone(),
            names => names
                .iter()
                .map(|n| RoleName::parse(n))
                .collect::<Result<_, _>>()
                .map_err(|e| problem("roles", e))?,
        };
        let team_ids = match split(cell("teams")) {
            names if names.is_empty() => self.options.default_team_ids.clone(),
            names => names
                .iter()
                .map(|n| {
                    self.team_ids_by_name
                        .get(&n.to_lowercase())
                        .copied()
                        .ok_or_else(|| {
                            format!("teams: {}: no team named {n:?}", Reason::UnknownTeam)
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let mut input = NewUser::new(email, display_name, roles);
        input.login_id = login_id;
        input.team_ids = team_ids;
        let user = build_user(self.org, self.catalogue, input, UserState::Invited).map_err(
            |e| match e {
                Error::InvalidArgument(violations) => violations
                    .iter()
                    .map(|v| {
                        format!(
                            "{}: {}: {}",
                            v.field.trim_start_matches("user."),
                            v.reason,
                            v.description
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            },
        )?;
        authorize_grant(
            self.principal,
            permissions_of(&user.roles, &self.catalogue.custom_roles),
        )
        .map_err(|e| format!("roles: {}: {e}", Reason::PermissionDenied))?;
        if let Some(first) = self.emails.get(user.email.as_str()) {
            return Err(format!(
                "email: {}: also on line {first}",
                Reason::EmailTaken
            ));
        }
        if let Some(login) = &user.login_id
            && let Some(first) = self.login_ids.get(login.as_str())
        {
            return Err(format!(
                "login_id: {}: also on line {first}",
                Reason::LoginIdTaken
            ));
        }
        self.emails
            .insert(user.email.as_str().to_owned(), row.line_no);
        if let Some(login) = &user.login_id {
            self.login_ids
                .insert(login.as_str().to_owned(), row.line_no);
        }
        Ok(user)
    }
}

/// The `;`-separated names of a cell.
pub(super) fn split(cell: &str) -> Vec<&str> {
    cell.split(export::LIST_SEPARATOR)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}
