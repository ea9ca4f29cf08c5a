//! OrgService: settings, teams and custom roles. Adapters only: parse the
//! request, call [`Org`], convert back.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::{
        Violations, decode_cursor, encode_cursor, etag_of, fingerprint, mask_fields, masked,
        page_size, parse_login_with, parse_request_id, required,
    },
    pb::{self, org_service_server::OrgService},
};
use crate::{
    domain::{
        DisplayName, OrgSettings, Permission, PermissionSet, ProfileText, RoleName, SettingsChange,
        Team, TeamId, TeamName, duration_in, setting_in,
    },
    error::{Error, ParseError, Reason, Result},
    org::{NewRole, NewTeam, Org, RoleChange, TeamChange, TeamPageKey},
};

pub struct OrgApi {
    org: Org,
}

impl OrgApi {
    pub fn new(org: Org) -> Self {
        Self { org }
    }
}

const SETTINGS_FIELDS: &[&str] = &[
    "display_name",
    "seat_limit",
    "default_max_chats",
    "password_min_length",
    "lockout_threshold",
    "lockout_duration",
    "login_with",
    "invite_lifetime",
    "session_lifetime",
    "presence_lease",
];
const TEAM_FIELDS: &[&str] = &["name", "description"];
const ROLE_FIELDS: &[&str] = &["description", "permissions"];

/// Most permissions one role may list (the catalogue is smaller).
const MAX_PERMISSIONS: usize = 64;
/// Longest accepted `request_id`.

#[tonic::async_trait]
impl OrgService for OrgApi {
    #[tracing::instrument(skip_all)]
    async fn get_org_settings(
        &self,
        req: Request<pb::GetOrgSettingsRequest>,
    ) -> Result<Response<pb::GetOrgSettingsResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::GetOrgSettingsRequest {} = req.into_inner();
        let view = self.org.settings(&principal).await?;
        Ok(Response::new(pb::GetOrgSettingsResponse {
            settings: Some(pb::OrgSettings::from(&view)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_org_settings(
        &self,
        req: Request<pb::UpdateOrgSettingsRequest>,
    ) -> Result<Response<pb::UpdateOrgSettingsResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::UpdateOrgSettingsRequest {
            settings,
            update_mask,
        } = req.into_inner();
        let fields = mask_fields(update_mask, "settings", SETTINGS_FIELDS)?;
        let settings = required(settings, "settings")?;
        let (change, etag) = parse_settings_change(settings, &fields)?;
        let view = self
            .org
            .update_settings(&principal, &origin, change, etag)
            .await?;
        Ok(Response::new(pb::UpdateOrgSettingsResponse {
            settings: Some(pb::OrgSettings::from(&view)),
            over_seat_limit: view.over_seat_limit(),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %req.get_ref().request_id))]
    async fn create_team(
        &self,
        req: Request<pb::CreateTeamRequest>,
    ) -> Result<Response<pb::CreateTeamResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::CreateTeamRequest { team, request_id } = req.into_inner();
        let pb::Team {
            team_id: _,
            name,
            description,
            etag: _,
            created_at: _,
        } = required(team, "team")?;
        let mut v = Violations::default();
        let name = v.check("team.name", TeamName::parse(&name));
        let description = v.check(
            "team.description",
            ProfileText::parse(&description, Team::DESCRIPTION_MAX_LEN),
        );
        let request_id = v.check("request_id", parse_request_id(&request_id));
        let (new, request_id) = v.finish(|| {
            Some((
                NewTeam {
                    name: name?,
                    description: description?,
                },
                request_id?,
            ))
        })?;
        let team = self
            .org
            .create_team(&principal, &origin, new, request_id)
            .await?;
        Ok(Response::new(pb::CreateTeamResponse {
            team: Some(pb::Team::from(&team)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_teams(
        &self,
        req: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListTeamsRequest {
            page_size: raw_page_size,
            page_token,
        } = req.into_inner();
        let size = page_size(raw_page_size).map_err(|e| Error::invalid(e.at("page_size")))?;
        let print = fingerprint(&"teams");
        let after = decode_cursor(&page_token, &print)
            .map_err(|e| Error::invalid(e.at("page_token")))?
            .map(|(name_key, team_id)| TeamPageKey { name_key, team_id });
        let page = self.org.list_teams(&principal, after, size).await?;
        Ok(Response::new(pb::ListTeamsResponse {
            teams: page.teams.iter().map(pb::Team::from).collect(),
            next_page_token: page
                .next
                .map(|key| encode_cursor(&key.name_key, &key.team_id, print))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_team(
        &self,
        req: Request<pb::UpdateTeamRequest>,
    ) -> Result<Response<pb::UpdateTeamResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::UpdateTeamRequest { team, update_mask } = req.into_inner();
        let fields = mask_fields(update_mask, "team", TEAM_FIELDS)?;
        let pb::Team {
            team_id,
            name,
            description,
            etag,
            created_at: _,
        } = required(team, "team")?;
        let mut v = Violations::default();
        let id = v.check("team.team_id", TeamId::parse(&team_id));
        let name = masked(&fields, "name")
            .then(|| v.check("team.name", TeamName::parse(&name)))
            .flatten();
        let description = masked(&fields, "description")
            .then(|| {
                v.check(
                    "team.description",
                    ProfileText::parse(&description, Team::DESCRIPTION_MAX_LEN),
                )
            })
            .flatten();
        let change = v.finish(|| {
            Some(TeamChange {
                id: id?,
                etag: etag_of(etag),
                name,
                description,
            })
        })?;
        let team = self.org.update_team(&principal, &origin, change).await?;
        Ok(Response::new(pb::UpdateTeamResponse {
            team: Some(pb::Team::from(&team)),
        }))
    }

    #[tracing::instrument(skip_all, fields(team_id = %req.get_ref().team_id))]
    async fn delete_team(
        &self,
        req: Request<pb::DeleteTeamRequest>,
    ) -> Result<Response<pb::DeleteTeamResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::DeleteTeamRequest {
            team_id,
            etag,
            detach_members,
        } = req.into_inner();
        let id = TeamId::parse(&team_id).map_err(|e| Error::invalid(e.at("team_id")))?;
        self.org
            .delete_team(&principal, &origin, id, etag_of(etag), detach_members)
            .await?;
        Ok(Response::new(pb::DeleteTeamResponse {}))
    }

    #[tracing::instrument(skip_all, fields(request_id = %req.get_ref().request_id))]
    async fn create_role(
        &self,
        req: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::CreateRoleRequest { role, request_id } = req.into_inner();
        let pb::Role {
            name,
            description,
            permissions,
            built_in: _,
            etag: _,
        } = required(role, "role")?;
        let mut v = Violations::default();
        let name = v.check("role.name", RoleName::parse_custom(&name));
        let description = v.check(
            "role.description",
            ProfileText::parse(&description, crate::domain::CustomRole::DESCRIPTION_MAX_LEN),
        );
        let permissions = v.check("role.permissions", parse_permissions(&permissions));
        let request_id = v.check("request_id", parse_request_id(&request_id));
        let (new, request_id) = v.finish(|| {
            Some((
                NewRole {
                    name: name?,
                    description: description?,
                    permissions: permissions?,
                },
                request_id?,
            ))
        })?;
        let role = self
            .org
            .create_role(&principal, &origin, new, request_id)
            .await?;
        Ok(Response::new(pb::CreateRoleResponse {
            role: Some(pb::Role::from(&role)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_roles(
        &self,
        req: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListRolesRequest {
            page_size: raw_page_size,
            page_token,
        } = req.into_inner();
        let size = page_size(raw_page_size).map_err(|e| Error::invalid(e.at("page_size")))?;
        let print = fingerprint(&"roles");
        let after = decode_cursor(&page_token, &print)
            .map_err(|e| Error::invalid(e.at("page_token")))?
            .map(|(name, _)| name);
        let page = self.org.list_roles(&principal, after, size).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: page.roles.iter().map(pb::Role::from).collect(),
            next_page_token: page
                .next
                .map(|name| encode_cursor(&name, "", print))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_role(
        &self,
        req: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::UpdateRoleResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::UpdateRoleRequest { role, update_mask } = req.into_inner();
        let fields = mask_fields(update_mask, "role", ROLE_FIELDS)?;
        let pb::Role {
            name,
            description,
            permissions,
            built_in: _,
            etag,
        } = required(role, "role")?;
        let mut v = Violations::default();
        let name = v.check("role.name", RoleName::parse(&name));
        let description = masked(&fields, "description")
            .then(|| {
                v.check(
                    "role.description",
                    ProfileText::parse(
                        &description,
                        crate::domain::CustomRole::DESCRIPTION_MAX_LEN,
                    ),
                )
            })
            .flatten();
        let permissions = masked(&fields, "permissions")
            .then(|| v.check("role.permissions", parse_permissions(&permissions)))
            .flatten();
        let change = v.finish(|| {
            Some(RoleChange {
                name: name?,
                etag: etag_of(etag),
                description,
                permissions,
            })
        })?;
        let role = self.org.update_role(&principal, &origin, change).await?;
        Ok(Response::new(pb::UpdateRoleResponse {
            role: Some(pb::Role::from(&role)),
        }))
    }

    #[tracing::instrument(skip_all, fields(role = %req.get_ref().name))]
    async fn delete_role(
        &self,
        req: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::DeleteRoleRequest {
            name,
            etag,
            detach_holders,
        } = req.into_inner();
        let name = RoleName::parse(&name).map_err(|e| Error::invalid(e.at("name")))?;
        self.org
            .delete_role(&principal, &origin, name, etag_of(etag), detach_holders)
            .await?;
        Ok(Response::new(pb::DeleteRoleResponse {}))
    }
}

fn parse_permissions(names: &[String]) -> Result<PermissionSet, ParseError> {
    if names.len() > MAX_PERMISSIONS {
        return Err(ParseError::new(
            Reason::InvalidArgument,
            format!("at most {MAX_PERMISSIONS} entries"),
        ));
    }
    let perms = names
        .iter()
        .map(|n| Permission::parse(n.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PermissionSet::of(&perms))
}

/// Reads the masked settings, checking each against its range.
fn parse_settings_change(
    settings: pb::OrgSettings,
    fields: &[&str],
) -> Result<(SettingsChange, Option<String>)> {
    let pb::OrgSettings {
        org_id: _,
        slug: _,
        display_name,
        seat_limit,
        seats_used: _,
        default_max_chats,
        password_min_length,
        lockout_threshold,
        lockout_duration,
        login_with,
        invite_lifetime,
        session_lifetime,
        presence_lease,
        etag,
    } = settings;
    let mut v = Violations::default();
    let mut change = SettingsChange::default();
    let on = |f: &str| masked(fields, f);
    if on("display_name") {
        change.name = v.check(
            "settings.display_name",
            DisplayName::parse(&display_name).map_err(as_setting),
        );
    }
    if on("seat_limit") {
        change.seat_limit = v.check(
            "settings.seat_limit",
            match seat_limit {
                0 => Ok(None),
                n => setting_in(n, 1..=OrgSettings::SEAT_LIMIT_MAX).map(Some),
            },
        );
    }
    if on("default_max_chats") {
        change.default_max_chats = v.check(
            "settings.default_max_chats",
            setting_in(default_max_chats, OrgSettings::DEFAULT_MAX_CHATS),
        );
    }
    if on("password_min_length") {
        change.password_min_length = v.check(
            "settings.password_min_length",
            setting_in(password_min_length, OrgSettings::PASSWORD_MIN_LENGTH),
        );
    }
    if on("lockout_threshold") {
        change.lockout_threshold = v.check(
            "settings.lockout_threshold",
            setting_in(lockout_threshold, OrgSettings::LOCKOUT_THRESHOLD),
        );
    }
    let duration = |v: &mut Violations, name: &str, raw, range| {
        v.check(
            &format!("settings.{name}"),
            parse_duration(raw).and_then(|d| duration_in(d, range)),
        )
    };
    if on("lockout_duration") {
        change.lockout_duration = duration(
            &mut v,
            "lockout_duration",
            lockout_duration,
            OrgSettings::LOCKOUT_DURATION,
        );
    }
    if on("invite_lifetime") {
        change.invite_lifetime = duration(
            &mut v,
            "invite_lifetime",
            invite_lifetime,
            OrgSettings::INVITE_LIFETIME,
        );
    }
    if on("session_lifetime") {
        change.session_lifetime = duration(
            &mut v,
            "session_lifetime",
            session_lifetime,
            OrgSettings::SESSION_LIFETIME,
        );
    }
    if on("presence_lease") {
        change.presence_lease = duration(
            &mut v,
            "presence_lease",
            presence_lease,
            OrgSettings::PRESENCE_LEASE,
        );
    }
    if on("login_with") {
        change.login_with = v.check(
            "settings.login_with",
            parse_login_with(login_with)
                .map_err(as_setting)
                .and_then(|l| {
                    l.ok_or_else(|| {
                        ParseError::new(Reason::InvalidSetting, "must be EMAIL, LOGIN_ID or BOTH")
                    })
                }),
        );
    }
    let change = v.finish(|| Some(change))?;
    Ok((change, etag_of(etag)))
}

fn as_setting(e: ParseError) -> ParseError {
    ParseError::new(Reason::InvalidSetting, e.message)
}

fn parse_duration(raw: Option<prost_types::Duration>) -> Result<Duration, ParseError> {
    let Some(raw) = raw else {
        return Err(ParseError::new(Reason::InvalidSetting, "is required"));
    };
    if raw.seconds < 0 || raw.nanos < 0 {
        return Err(ParseError::new(
            Reason::InvalidSetting,
            "must not be negative",
        ));
    }
    Ok(Duration::new(raw.seconds as u64, raw.nanos as u32))
}
