//! The permission matrix: every RPC of the proto, called as every kind of
//! caller, against an outcome written out by hand from SPEC.md's rules (not
//! computed from `src/api/access.rs`, so this test can disagree with it).
//!
//! One app serves every cell. Requests target real users, teams, keys and
//! roles of the first org, so the use cases' scoping (self, own teams, the
//! org) is exercised and not just the authentication layer; destructive
//! calls act on a target made fresh for the cell. Every mismatch is
//! collected and reported at the end.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Debug,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use prost::Message;
use prost_types::FieldMask;
use roster::api::pb::{
    self, audit_service_client::AuditServiceClient, auth_service_client::AuthServiceClient,
    org_service_client::OrgServiceClient, platform_service_client::PlatformServiceClient,
    presence_service_client::PresenceServiceClient, report_service_client::ReportServiceClient,
    user_service_client::UserServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ORG, TestApp, USER_PASSWORD, spawn_app};

/// The kinds of caller, in the order of the expectation columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// No `authorization` metadata at all.
    Anonymous,
    /// `agent`, member of team Alpha (the target's team).
    Agent,
    /// `supervisor` of team Alpha, which holds the target.
    SupervisorIn,
    /// `supervisor` of team Beta, which does not.
    SupervisorOut,
    Manager,
    /// The bootstrap admin.
    Admin,
    Viewer,
    /// An API key with the scope the row names.
    KeyWith,
    /// An API key with only an unrelated scope (`calls.listen`).
    KeyWithout,
    /// The admin of a second org, acting on the first org's things.
    OtherOrgAdmin,
    /// A platform API key, which belongs to no org.
    PlatformKey,
}

const CALLERS: [Who; 11] = [
    Who::Anonymous,
    Who::Agent,
    Who::SupervisorIn,
    Who::SupervisorOut,
    Who::Manager,
    Who::Admin,
    Who::Viewer,
    Who::KeyWith,
    Who::KeyWithout,
    Who::OtherOrgAdmin,
    Who::PlatformKey,
];

/// The expected outcome of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Anything but UNAUTHENTICATED and PERMISSION_DENIED (OK, NOT_FOUND,
    /// INVALID_ARGUMENT, FAILED_PRECONDITION, UNIMPLEMENTED…).
    Allow,
    /// Allowed, and the answer names the target user.
    Sees,
    /// Allowed, but the answer does not name the target user.
    Hidden,
    /// PERMISSION_DENIED, before any handler runs if need be: strict even
    /// for RPCs not built yet.
    Deny,
    /// PERMISSION_DENIED from the use case's scoping (self, own teams);
    /// UNIMPLEMENTED passes while the RPC is not built, and is reported.
    Scoped,
    /// UNAUTHENTICATED.
    Unauth,
    /// Another org's thing: NOT_FOUND (or INVALID_ARGUMENT for an unknown
    /// id in a request), or an answer with nothing of the first org in it.
    NotFound,
}

use Expect::*;

// One-letter names keep each row of the table on one line.
const U: Expect = Unauth;
const A: Expect = Allow;
const D: Expect = Deny;
const S: Expect = Scoped;
const N: Expect = NotFound;
const Y: Expect = Sees;
const H: Expect = Hidden;

/// What a cell sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Login,
    AcceptInvite,
    Logout,
    WhoAmI,
    ChangePassword,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    InviteUser,
    ResendInvite,
    RevokeInvite,
    CreateUser,
    GetUserTarget,
    GetUserSelf,
    ListUsers,
    UpdateOwnProfile,
    UpdateOwnRoles,
    UpdateTarget,
    SuspendUser,
    ReactivateUser,
    UnlockUser,
    DeleteUser,
    ResetPassword,
    ForcePasswordChange,
    SetOwnAvatar,
    SetTargetAvatar,
    GetAvatar,
    ImportUsers,
    GetImportJob,
    ListImportJobs,
    GetImportReport,
    ExportUsers,
    ListDeletedUsers,
    SetOwnAvailability,
    SetTargetAvailability,
    Heartbeat,
    ReportChatLoad,
    GetPresence,
    ListPresence,
    WatchPresence,
    GetOrgSettings,
    UpdateOrgSettings,
    CreateTeam,
    ListTeams,
    UpdateTeam,
    DeleteTeam,
    CreateRole,
    ListRoles,
    UpdateRole,
    DeleteRole,
    ListAuditEvents,
    GetActivity,
    CreateOrg,
    GetOrg,
    ListOrgs,
    UpdateOrg,
    SuspendOrg,
    ReactivateOrg,
    DeleteOrg,
    ListPlatformAuditEvents,
}

struct Row {
    /// `Service/Method` of `roster.v1`.
    rpc: &'static str,
    /// What the request does, for the report.
    what: &'static str,
    /// The scope of the `KeyWith` caller.
    scope: &'static str,
    case: Case,
    /// Anonymous, agent, supervisor in team, supervisor out of team,
    /// manager, admin, viewer, key with scope, key without, other org's
    /// admin, platform key.
    expect: [Expect; 11],
}

const fn row(
    rpc: &'static str,
    what: &'static str,
    scope: &'static str,
    case: Case,
    expect: [Expect; 11],
) -> Row {
    Row {
        rpc,
        what,
        scope,
        case,
        expect,
    }
}

/// The matrix. "self" rows send a key (which has no self) at the target.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    //                                                                                                 anon agt sIn sOut mgr adm vwr key+ key- org2 plat
    row("AuthService/Login", "target's credentials (org2: own, in org1)", "users.read", Case::Login,     [A, A, A, A, A, A, A, A, A, U, A]),
    row("AuthService/AcceptInvite", "unknown token", "users.read", Case::AcceptInvite,                  [A, A, A, A, A, A, A, A, A, A, A]),
    row("AuthService/Logout", "a fresh session", "users.read", Case::Logout,                            [U, A, A, A, A, A, A, D, D, A, D]),
    row("AuthService/WhoAmI", "", "users.read", Case::WhoAmI,                                           [U, A, A, A, A, A, A, A, A, A, D]),
    row("AuthService/ChangePassword", "too short a new one", "users.read", Case::ChangePassword,        [U, A, A, A, A, A, A, D, D, A, D]),
    row("AuthService/CreateApiKey", "", "api_keys.manage", Case::CreateApiKey,                          [U, D, D, D, D, A, D, A, D, A, D]),
    row("AuthService/ListApiKeys", "", "api_keys.manage", Case::ListApiKeys,                            [U, D, D, D, D, A, D, A, D, N, D]),
    row("AuthService/RevokeApiKey", "a fresh key", "api_keys.manage", Case::RevokeApiKey,               [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/InviteUser", "into team Alpha", "users.manage", Case::InviteUser,                  [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/ResendInvite", "a fresh invitee", "users.manage", Case::ResendInvite,              [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/RevokeInvite", "a fresh invitee", "users.manage", Case::RevokeInvite,              [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/CreateUser", "into team Alpha", "users.manage", Case::CreateUser,                  [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/GetUser", "target (team Alpha)", "users.read", Case::GetUserTarget,                [U, D, A, D, A, A, A, A, D, N, D]),
    row("UserService/GetUser", "self", "users.read", Case::GetUserSelf,                                 [U, A, A, A, A, A, A, A, D, A, D]),
    row("UserService/ListUsers", "query: target's email", "users.read", Case::ListUsers,                [U, H, Y, H, Y, Y, Y, Y, D, N, D]),
    row("UserService/UpdateUser", "own display name", "users.manage", Case::UpdateOwnProfile,           [U, A, A, A, A, A, D, A, D, A, D]),
    row("UserService/UpdateUser", "own roles := admin", "users.manage", Case::UpdateOwnRoles,           [U, D, D, D, D, A, D, A, D, A, D]),
    row("UserService/UpdateUser", "target's display name", "users.manage", Case::UpdateTarget,          [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/SuspendUser", "a fresh user", "users.manage", Case::SuspendUser,                   [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/ReactivateUser", "target", "users.manage", Case::ReactivateUser,                   [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/UnlockUser", "target", "users.manage", Case::UnlockUser,                           [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/DeleteUser", "a fresh user", "users.manage", Case::DeleteUser,                     [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/ResetPassword", "a fresh user", "users.manage", Case::ResetPassword,               [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/ForcePasswordChange", "a fresh user", "users.manage", Case::ForcePasswordChange,   [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/SetAvatar", "own", "users.manage", Case::SetOwnAvatar,                             [U, A, A, A, A, A, D, A, D, A, D]),
    row("UserService/SetAvatar", "target's", "users.manage", Case::SetTargetAvatar,                     [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/GetAvatar", "target's", "users.read", Case::GetAvatar,                             [U, D, A, D, A, A, A, A, D, N, D]),
    row("UserService/ImportUsers", "a one-row CSV", "users.manage", Case::ImportUsers,                  [U, D, D, D, D, A, D, A, D, A, D]),
    row("UserService/GetImportJob", "an unknown id", "users.manage", Case::GetImportJob,                [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/ListImportJobs", "", "users.manage", Case::ListImportJobs,                         [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/GetImportReport", "an unknown id", "users.manage", Case::GetImportReport,          [U, D, D, D, D, A, D, A, D, N, D]),
    row("UserService/ExportUsers", "everyone", "users.read", Case::ExportUsers,                         [U, D, D, D, A, A, A, A, D, N, D]),
    row("UserService/ListDeletedUsers", "the org's tombstones", "users.read", Case::ListDeletedUsers,    [U, D, D, D, A, A, A, A, D, N, D]),
    row("PresenceService/SetAvailability", "self", "presence.manage", Case::SetOwnAvailability,         [U, A, A, A, A, A, S, A, S, A, D]),
    row("PresenceService/SetAvailability", "target", "presence.manage", Case::SetTargetAvailability,    [U, S, A, S, A, A, S, A, S, N, D]),
    row("PresenceService/Heartbeat", "", "presence.read", Case::Heartbeat,                              [U, A, A, A, A, A, A, D, D, A, D]),
    row("PresenceService/ReportChatLoad", "target", "presence.report_chat_load", Case::ReportChatLoad,  [U, D, D, D, D, A, D, A, D, N, D]),
    row("PresenceService/GetPresence", "target", "presence.read", Case::GetPresence,                    [U, S, A, S, A, A, A, A, S, N, D]),
    row("PresenceService/ListPresence", "everyone", "presence.read", Case::ListPresence,                [U, H, Y, H, Y, Y, Y, Y, S, N, D]),
    row("PresenceService/WatchPresence", "the snapshot", "presence.read", Case::WatchPresence,          [U, H, Y, H, Y, Y, Y, Y, S, N, D]),
    row("OrgService/GetOrgSettings", "", "settings.manage", Case::GetOrgSettings,                       [U, A, A, A, A, A, A, A, A, N, D]),
    row("OrgService/UpdateOrgSettings", "display name", "settings.manage", Case::UpdateOrgSettings,     [U, D, D, D, D, A, D, A, D, A, D]),
    row("OrgService/CreateTeam", "", "teams.manage", Case::CreateTeam,                                  [U, D, D, D, A, A, D, A, D, A, D]),
    row("OrgService/ListTeams", "", "teams.manage", Case::ListTeams,                                    [U, A, A, A, A, A, A, A, A, N, D]),
    row("OrgService/UpdateTeam", "team Gamma", "teams.manage", Case::UpdateTeam,                        [U, D, D, D, A, A, D, A, D, N, D]),
    row("OrgService/DeleteTeam", "a fresh team", "teams.manage", Case::DeleteTeam,                      [U, D, D, D, A, A, D, A, D, N, D]),
    row("OrgService/CreateRole", "", "roles.manage", Case::CreateRole,                                  [U, D, D, D, D, A, D, A, D, A, D]),
    row("OrgService/ListRoles", "", "roles.manage", Case::ListRoles,                                    [U, A, A, A, A, A, A, A, A, N, D]),
    row("OrgService/UpdateRole", "role auditor", "roles.manage", Case::UpdateRole,                      [U, D, D, D, D, A, D, A, D, N, D]),
    row("OrgService/DeleteRole", "a fresh role", "roles.manage", Case::DeleteRole,                      [U, D, D, D, D, A, D, A, D, N, D]),
    row("AuditService/ListAuditEvents", "", "audit.read", Case::ListAuditEvents,                        [U, D, D, D, D, A, D, A, D, N, D]),
    row("ReportService/GetActivity", "target", "reports.read", Case::GetActivity,                       [U, S, A, S, A, A, A, A, S, N, D]),
    row("PlatformService/CreateOrg", "a new org", "settings.manage", Case::CreateOrg,                   [U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/GetOrg", "the first org", "settings.manage", Case::GetOrg,                     [U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/ListOrgs", "", "settings.manage", Case::ListOrgs,                              [U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/UpdateOrg", "a fresh org's name", "settings.manage", Case::UpdateOrg,          [U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/SuspendOrg", "a fresh org", "settings.manage", Case::SuspendOrg,               [U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/ReactivateOrg", "a fresh (active) org", "settings.manage", Case::ReactivateOrg,[U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/DeleteOrg", "a fresh suspended org", "settings.manage", Case::DeleteOrg,       [U, D, D, D, D, D, D, D, D, D, A]),
    row("PlatformService/ListPlatformAuditEvents", "", "settings.manage", Case::ListPlatformAuditEvents,[U, D, D, D, D, D, D, D, D, D, A]),
];

/// The scope of `Who::KeyWithout`: a permission no Roster RPC asks for.
const UNRELATED_SCOPE: &str = "calls.listen";

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// Adds the caller's `authorization` metadata, if it has any.
#[derive(Clone)]
struct Creds(Option<MetadataValue<Ascii>>);

impl Interceptor for Creds {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, Creds>;

struct Clients {
    auth: AuthServiceClient<Svc>,
    users: UserServiceClient<Svc>,
    presence: PresenceServiceClient<Svc>,
    org: OrgServiceClient<Svc>,
    audit: AuditServiceClient<Svc>,
    report: ReportServiceClient<Svc>,
    platform: PlatformServiceClient<Svc>,
}

impl Clients {
    fn new(channel: &Channel, token: Option<&str>) -> Self {
        let creds = Creds(token.map(|t| {
            format!("Bearer {t}")
                .parse()
                .expect("a token is header text")
        }));
        Self {
            auth: AuthServiceClient::with_interceptor(channel.clone(), creds.clone()),
            users: UserServiceClient::with_interceptor(channel.clone(), creds.clone()),
            presence: PresenceServiceClient::with_interceptor(channel.clone(), creds.clone()),
            org: OrgServiceClient::with_interceptor(channel.clone(), creds.clone()),
            audit: AuditServiceClient::with_interceptor(channel.clone(), creds.clone()),
            report: ReportServiceClient::with_interceptor(channel.clone(), creds.clone()),
            platform: PlatformServiceClient::with_interceptor(channel.clone(), creds),
        }
    }
}

/// A person who calls.
struct Person {
    user_id: String,
    email: String,
    password: String,
    token: String,
}

struct Fixture {
    app: TestApp,
    people: HashMap<Who, Person>,
    /// Secrets of keys with exactly one scope, by scope.
    keys: HashMap<&'static str, String>,
    target: pb::User,
    team_alpha: String,
    team_gamma: String,
    /// Ids and names of the first org that the second org must never see.
    markers: Vec<String>,
    /// The secret of a platform key.
    platform_key: String,
    org1_id: String,
    counter: AtomicUsize,
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn debug<T: Debug>(result: Result<tonic::Response<T>, Status>) -> Result<String, Status> {
    result.map(|r| format!("{:?}", r.into_inner()))
}

impl Fixture {
    fn admin(&self) -> Clients {
        Clients::new(&self.app.channel, Some(&self.app.admin_token))
    }

    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A new user of the first org, in team Alpha, made by the admin.
    async fn fresh_user(&self) -> String {
        let email = format!("{}@example.com", self.unique("fresh"));
        create_person(&self.admin(), &email, &["agent"], &[&self.team_alpha])
            .await
            .user_id
    }

    async fn fresh_invitee(&self) -> String {
        self.admin()
            .users
            .invite_user(pb::InviteUserRequest {
                user: Some(pb::User {
                    email: format!("{}@example.com", self.unique("invitee")),
                    display_name: "Invitee".into(),
                    roles: vec!["agent".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("invited")
            .into_inner()
            .user
            .expect("user")
            .user_id
    }

    async fn fresh_key(&self) -> String {
        self.admin()
            .auth
            .create_api_key(key_request(&self.unique("fresh-key-"), &["users.read"]))
            .await
            .expect("key created")
            .into_inner()
            .api_key
            .expect("key")
            .api_key_id
    }

    async fn fresh_team(&self) -> String {
        create_team(&self.admin(), &self.unique("Fresh team ")).await
    }

    async fn fresh_role(&self) -> String {
        let name = self.unique("fresh-role-");
        create_role(&self.admin(), &name).await;
        name
    }

    /// A new org, made with the platform key; returns its id.
    async fn fresh_org(&self) -> String {
        let slug = self.unique("fresh-org-");
        Clients::new(&self.app.channel, Some(&self.platform_key))
            .platform
            .create_org(create_org_request(&slug))
            .await
            .expect("org created")
            .into_inner()
            .org
            .expect("org")
            .org_id
    }

    /// The token a caller sends; `None` for the anonymous caller.
    fn token(&self, who: Who, scope: &str) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::KeyWith => Some(self.keys[scope].clone()),
            Who::KeyWithout => Some(self.keys[UNRELATED_SCOPE].clone()),
            Who::PlatformKey => Some(self.platform_key.clone()),
            person => Some(self.people[&person].token.clone()),
        }
    }

    /// The user a "self" row acts on: the caller, or for a key (which has no
    /// self) the target.
    fn me(&self, who: Who) -> String {
        match self.people.get(&who) {
            Some(person) => person.user_id.clone(),
            None => self.target.user_id.clone(),
        }
    }

    /// A session of its own for a cell that ends it.
    async fn fresh_token(&self, who: Who, scope: &str) -> Option<String> {
        match self.people.get(&who) {
            Some(person) => Some(
                login(&self.app, org_of(who), &person.email, &person.password)
                    .await
                    .expect("sign in again"),
            ),
            None => self.token(who, scope),
        }
    }

    async fn perform(&self, row: &Row, who: Who) -> Result<String, Status> {
        let token = match row.case {
            Case::Logout => self.fresh_token(who, row.scope).await,
            _ => self.token(who, row.scope),
        };
        let mut c = Clients::new(&self.app.channel, token.as_deref());
        let target = self.target.user_id.clone();
        match row.case {
            Case::Login => {
                let request = if who == Who::OtherOrgAdmin {
                    // Its own credentials, at the first org's door.
                    let me = &self.people[&who];
                    login_request(ORG, &me.email, &me.password)
                } else {
                    login_request(ORG, &self.target.email, USER_PASSWORD)
                };
                debug(c.auth.login(request).await)
            }
            Case::AcceptInvite => debug(
                c.auth
                    .accept_invite(pb::AcceptInviteRequest {
                        invite_token: "inv_not-a-real-invitation".into(),
                        password: "a new and long password".into(),
                        ..Default::default()
                    })
                    .await,
            ),
            Case::Logout => debug(c.auth.logout(pb::LogoutRequest {}).await),
            Case::WhoAmI => debug(c.auth.who_am_i(pb::WhoAmIRequest {}).await),
            Case::ChangePassword => {
                let current = self
                    .people
                    .get(&who)
                    .map_or(USER_PASSWORD.to_owned(), |p| p.password.clone());
                debug(
                    c.auth
                        .change_password(pb::ChangePasswordRequest {
                            current_password: current,
                            new_password: "short".into(),
                        })
                        .await,
                )
            }
            Case::CreateApiKey => debug(
                c.auth
                    .create_api_key(key_request(&self.unique("key-"), &["presence.read"]))
                    .await,
            ),
            Case::ListApiKeys => debug(
                c.auth
                    .list_api_keys(pb::ListApiKeysRequest {
                        show_revoked: true,
                        ..Default::default()
                    })
                    .await,
            ),
            Case::RevokeApiKey => {
                let api_key_id = self.fresh_key().await;
                debug(
                    c.auth
                        .revoke_api_key(pb::RevokeApiKeyRequest { api_key_id })
                        .await,
                )
            }
            Case::InviteUser => debug(
                c.users
                    .invite_user(pb::InviteUserRequest {
                        user: Some(pb::User {
                            email: format!("{}@example.com", self.unique("invited")),
                            display_name: "Invited".into(),
                            roles: vec!["agent".into()],
                            team_ids: vec![self.team_alpha.clone()],
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await,
            ),
            Case::ResendInvite => {
                let user_id = self.fresh_invitee().await;
                debug(
                    c.users
                        .resend_invite(pb::ResendInviteRequest { user_id })
                        .await,
                )
            }
            Case::RevokeInvite => {
                let user_id = self.fresh_invitee().await;
                debug(
                    c.users
                        .revoke_invite(pb::RevokeInviteRequest { user_id })
                        .await,
                )
            }
            Case::CreateUser => debug(
                c.users
                    .create_user(create_user_request(
                        &format!("{}@example.com", self.unique("created")),
                        &["agent"],
                        &[&self.team_alpha],
                    ))
                    .await,
            ),
            Case::GetUserTarget => debug(
                c.users
                    .get_user(pb::GetUserRequest { user_id: target })
                    .await,
            ),
            Case::GetUserSelf => debug(
                c.users
                    .get_user(pb::GetUserRequest {
                        user_id: self.me(who),
                    })
                    .await,
            ),
            Case::ListUsers => debug(
                c.users
                    .list_users(pb::ListUsersRequest {
                        query: self.target.email.clone(),
                        ..Default::default()
                    })
                    .await,
            ),
            Case::UpdateOwnProfile => debug(
                c.users
                    .update_user(pb::UpdateUserRequest {
                        user: Some(pb::User {
                            user_id: self.me(who),
                            display_name: self.unique("Renamed "),
                            ..Default::default()
                        }),
                        update_mask: mask(&["display_name"]),
                    })
                    .await,
            ),
            Case::UpdateOwnRoles => {
                let roles = if self.people.contains_key(&who) {
                    vec!["admin".into()]
                } else {
                    vec!["agent".into()]
                };
                debug(
                    c.users
                        .update_user(pb::UpdateUserRequest {
                            user: Some(pb::User {
                                user_id: self.me(who),
                                roles,
                                ..Default::default()
                            }),
                            update_mask: mask(&["roles"]),
                        })
                        .await,
                )
            }
            Case::UpdateTarget => debug(
                c.users
                    .update_user(pb::UpdateUserRequest {
                        user: Some(pb::User {
                            user_id: target,
                            display_name: self.unique("Target "),
                            ..Default::default()
                        }),
                        update_mask: mask(&["display_name"]),
                    })
                    .await,
            ),
            Case::SuspendUser => {
                let user_id = self.fresh_user().await;
                debug(
                    c.users
                        .suspend_user(pb::SuspendUserRequest {
                            user_id,
                            ..Default::default()
                        })
                        .await,
                )
            }
            Case::ReactivateUser => debug(
                c.users
                    .reactivate_user(pb::ReactivateUserRequest { user_id: target })
                    .await,
            ),
            Case::UnlockUser => debug(
                c.users
                    .unlock_user(pb::UnlockUserRequest { user_id: target })
                    .await,
            ),
            Case::DeleteUser => {
                let user_id = self.fresh_user().await;
                debug(c.users.delete_user(pb::DeleteUserRequest { user_id }).await)
            }
            Case::ResetPassword => {
                let user_id = self.fresh_user().await;
                debug(
                    c.users
                        .reset_password(pb::ResetPasswordRequest {
                            user_id,
                            new_password: "another long password".into(),
                            ..Default::default()
                        })
                        .await,
                )
            }
            Case::ForcePasswordChange => {
                let user_id = self.fresh_user().await;
                debug(
                    c.users
                        .force_password_change(pb::ForcePasswordChangeRequest { user_id })
                        .await,
                )
            }
            Case::SetOwnAvatar => debug(
                c.users
                    .set_avatar(pb::SetAvatarRequest {
                        user_id: self.me(who),
                        image: PNG.to_vec(),
                    })
                    .await,
            ),
            Case::SetTargetAvatar => debug(
                c.users
                    .set_avatar(pb::SetAvatarRequest {
                        user_id: target,
                        image: PNG.to_vec(),
                    })
                    .await,
            ),
            Case::GetAvatar => debug(
                c.users
                    .get_avatar(pb::GetAvatarRequest { user_id: target })
                    .await,
            ),
            Case::ImportUsers => {
                let csv = format!(
                    "first_name,last_name,login_id,email\nImp,Orted,,{}@example.com\n",
                    self.unique("imported")
                );
                let upload = tokio_stream::iter(vec![pb::ImportUsersRequest {
                    file_name: "users.csv".into(),
                    chunk: csv.into_bytes(),
                    ..Default::default()
                }]);
                debug(c.users.import_users(upload).await)
            }
            Case::GetImportJob => debug(
                c.users
                    .get_import_job(pb::GetImportJobRequest {
                        import_job_id: uuid::Uuid::now_v7().to_string(),
                    })
                    .await,
            ),
            Case::ListImportJobs => debug(
                c.users
                    .list_import_jobs(pb::ListImportJobsRequest::default())
                    .await,
            ),
            Case::GetImportReport => debug(
                c.users
                    .get_import_report(pb::GetImportReportRequest {
                        import_job_id: uuid::Uuid::now_v7().to_string(),
                    })
                    .await,
            ),
            Case::ExportUsers => {
                let mut stream = c
                    .users
                    .export_users(pb::ExportUsersRequest::default())
                    .await?
                    .into_inner();
                let mut csv = Vec::new();
                while let Some(message) = stream.message().await? {
                    csv.extend(message.chunk);
                }
                Ok(String::from_utf8_lossy(&csv).into_owned())
            }
            Case::ListDeletedUsers => debug(
                c.users
                    .list_deleted_users(pb::ListDeletedUsersRequest::default())
                    .await,
            ),
            Case::SetOwnAvailability | Case::SetTargetAvailability => {
                let user_id =
                    if row.case == Case::SetOwnAvailability && self.people.contains_key(&who) {
                        String::new()
                    } else {
                        target
                    };
                debug(
                    c.presence
                        .set_availability(pb::SetAvailabilityRequest {
                            user_id,
                            status: pb::PresenceStatus::Available.into(),
                        })
                        .await,
                )
            }
            Case::Heartbeat => debug(c.presence.heartbeat(pb::HeartbeatRequest {}).await),
            Case::ReportChatLoad => debug(
                c.presence
                    .report_chat_load(pb::ReportChatLoadRequest {
                        user_id: target,
                        active_chats: 1,
                    })
                    .await,
            ),
            Case::GetPresence => debug(
                c.presence
                    .get_presence(pb::GetPresenceRequest {
                        user_ids: vec![target],
                    })
                    .await,
            ),
            Case::ListPresence => debug(
                c.presence
                    .list_presence(pb::ListPresenceRequest::default())
                    .await,
            ),
            Case::WatchPresence => {
                let mut stream = c
                    .presence
                    .watch_presence(pb::WatchPresenceRequest::default())
                    .await?
                    .into_inner();
                // The snapshot, up to its end marker (or a quiet second).
                let mut events = Vec::new();
                while let Ok(next) =
                    tokio::time::timeout(Duration::from_secs(1), stream.message()).await
                {
                    match next? {
                        Some(event) => {
                            let text = format!("{event:?}");
                            let done =
                                text.contains("SnapshotEnd") || text.contains("snapshot_end");
                            events.push(text);
                            if done {
                                break;
                            }
                        }
                        None => break,
                    }
                }
                Ok(events.join("\n"))
            }
            Case::GetOrgSettings => {
                debug(c.org.get_org_settings(pb::GetOrgSettingsRequest {}).await)
            }
            Case::UpdateOrgSettings => debug(
                c.org
                    .update_org_settings(pb::UpdateOrgSettingsRequest {
                        settings: Some(pb::OrgSettings {
                            display_name: self.unique("Renamed org "),
                            ..Default::default()
                        }),
                        update_mask: mask(&["display_name"]),
                    })
                    .await,
            ),
            Case::CreateTeam => debug(
                c.org
                    .create_team(pb::CreateTeamRequest {
                        team: Some(pb::Team {
                            name: self.unique("Team "),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await,
            ),
            Case::ListTeams => debug(c.org.list_teams(pb::ListTeamsRequest::default()).await),
            Case::UpdateTeam => debug(
                c.org
                    .update_team(pb::UpdateTeamRequest {
                        team: Some(pb::Team {
                            team_id: self.team_gamma.clone(),
                            description: self.unique("described "),
                            ..Default::default()
                        }),
                        update_mask: mask(&["description"]),
                    })
                    .await,
            ),
            Case::DeleteTeam => {
                let team_id = self.fresh_team().await;
                debug(
                    c.org
                        .delete_team(pb::DeleteTeamRequest {
                            team_id,
                            ..Default::default()
                        })
                        .await,
                )
            }
            Case::CreateRole => debug(
                c.org
                    .create_role(pb::CreateRoleRequest {
                        role: Some(pb::Role {
                            name: self.unique("role-"),
                            permissions: vec!["reports.read".into()],
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await,
            ),
            Case::ListRoles => debug(c.org.list_roles(pb::ListRolesRequest::default()).await),
            Case::UpdateRole => debug(
                c.org
                    .update_role(pb::UpdateRoleRequest {
                        role: Some(pb::Role {
                            name: "auditor".into(),
                            description: self.unique("described "),
                            ..Default::default()
                        }),
                        update_mask: mask(&["description"]),
                    })
                    .await,
            ),
            Case::DeleteRole => {
                let name = self.fresh_role().await;
                debug(
                    c.org
                        .delete_role(pb::DeleteRoleRequest {
                            name,
                            ..Default::default()
                        })
                        .await,
                )
            }
            Case::ListAuditEvents => debug(
                c.audit
                    .list_audit_events(pb::ListAuditEventsRequest::default())
                    .await,
            ),
            Case::CreateOrg => debug(
                c.platform
                    .create_org(create_org_request(&self.unique("new-org-")))
                    .await,
            ),
            Case::GetOrg => debug(
                c.platform
                    .get_org(pb::GetOrgRequest {
                        org_id: self.org1_id.clone(),
                    })
                    .await,
            ),
            Case::ListOrgs => debug(c.platform.list_orgs(pb::ListOrgsRequest::default()).await),
            Case::UpdateOrg => {
                let org_id = self.fresh_org().await;
                debug(
                    c.platform
                        .update_org(pb::UpdateOrgRequest {
                            org: Some(pb::Org {
                                org_id,
                                display_name: "Renamed".into(),
                                ..Default::default()
                            }),
                            update_mask: mask(&["display_name"]),
                        })
                        .await,
                )
            }
            Case::SuspendOrg => {
                let org_id = self.fresh_org().await;
                debug(
                    c.platform
                        .suspend_org(pb::SuspendOrgRequest {
                            org_id,
                            reason: String::new(),
                        })
                        .await,
                )
            }
            Case::ReactivateOrg => {
                let org_id = self.fresh_org().await;
                debug(
                    c.platform
                        .reactivate_org(pb::ReactivateOrgRequest { org_id })
                        .await,
                )
            }
            Case::DeleteOrg => {
                let org_id = self.fresh_org().await;
                Clients::new(&self.app.channel, Some(&self.platform_key))
                    .platform
                    .suspend_org(pb::SuspendOrgRequest {
                        org_id: org_id.clone(),
                        reason: String::new(),
                    })
                    .await
                    .expect("suspended");
                debug(c.platform.delete_org(pb::DeleteOrgRequest { org_id }).await)
            }
            Case::ListPlatformAuditEvents => debug(
                c.platform
                    .list_platform_audit_events(pb::ListPlatformAuditEventsRequest::default())
                    .await,
            ),
            Case::GetActivity => {
                let now = chrono::Utc::now().timestamp();
                debug(
                    c.report
                        .get_activity(pb::GetActivityRequest {
                            user_ids: vec![target],
                            start_time: Some(prost_types::Timestamp {
                                seconds: now - 3_600,
                                nanos: 0,
                            }),
                            end_time: Some(prost_types::Timestamp {
                                seconds: now,
                                nanos: 0,
                            }),
                            ..Default::default()
                        })
                        .await,
                )
            }
        }
    }
}

fn org_of(who: Who) -> &'static str {
    if who == Who::OtherOrgAdmin {
        OTHER_ORG
    } else {
        ORG
    }
}

const OTHER_ORG: &str = "elsewhere";

fn login_request(org: &str, login: &str, password: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        org: org.into(),
        login: login.into(),
        password: password.into(),
    }
}

async fn login(app: &TestApp, org: &str, email: &str, password: &str) -> Result<String, Status> {
    Clients::new(&app.channel, None)
        .auth
        .login(login_request(org, email, password))
        .await
        .map(|r| r.into_inner().session_token)
}

fn key_request(name: &str, scopes: &[&str]) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        api_key: Some(pb::ApiKey {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn create_user_request(email: &str, roles: &[&str], teams: &[&str]) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        user: Some(pb::User {
            email: email.into(),
            display_name: email.split('@').next().unwrap_or("someone").into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            team_ids: teams.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }),
        password: USER_PASSWORD.into(),
        ..Default::default()
    }
}

async fn create_person(admin: &Clients, email: &str, roles: &[&str], teams: &[&str]) -> pb::User {
    admin
        .users
        .clone()
        .create_user(create_user_request(email, roles, teams))
        .await
        .expect("user created")
        .into_inner()
        .user
        .expect("user")
}

async fn create_team(admin: &Clients, name: &str) -> String {
    admin
        .org
        .clone()
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("team created")
        .into_inner()
        .team
        .expect("team")
        .team_id
}

async fn create_role(admin: &Clients, name: &str) {
    admin
        .org
        .clone()
        .create_role(pb::CreateRoleRequest {
            role: Some(pb::Role {
                name: name.into(),
                permissions: vec!["audit.read".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("role created");
}

/// A CreateOrg request for `slug`, whose admin is invited.
fn create_org_request(slug: &str) -> pb::CreateOrgRequest {
    pb::CreateOrgRequest {
        slug: slug.into(),
        display_name: slug.into(),
        admin: Some(pb::NewOrgAdmin {
            email: format!("admin@{slug}.example"),
            display_name: "Admin".into(),
        }),
        ..Default::default()
    }
}

async fn setup() -> Fixture {
    let app = spawn_app().await;
    let admin = Clients::new(&app.channel, Some(&app.admin_token));
    let team_alpha = create_team(&admin, "Alpha").await;
    let team_beta = create_team(&admin, "Beta").await;
    let team_gamma = create_team(&admin, "Gamma").await;
    create_role(&admin, "auditor").await;

    let mut people = HashMap::new();
    for (who, email, role, teams) in [
        (
            Who::Agent,
            "agent@example.com",
            "agent",
            vec![team_alpha.as_str()],
        ),
        (
            Who::SupervisorIn,
            "sup-in@example.com",
            "supervisor",
            vec![&team_alpha],
        ),
        (
            Who::SupervisorOut,
            "sup-out@example.com",
            "supervisor",
            vec![&team_beta],
        ),
        (Who::Manager, "manager@example.com", "manager", vec![]),
        (Who::Viewer, "viewer@example.com", "viewer", vec![]),
    ] {
        let user = create_person(&admin, email, &[role], &teams).await;
        let token = login(&app, ORG, email, USER_PASSWORD)
            .await
            .expect("sign in");
        people.insert(
            who,
            Person {
                user_id: user.user_id,
                email: email.into(),
                password: USER_PASSWORD.into(),
                token,
            },
        );
    }
    let admin_id = admin
        .auth
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    let org1_id = admin_id.org_id.clone();
    let markers_org1_id = org1_id.clone();
    people.insert(
        Who::Admin,
        Person {
            user_id: admin_id.user.expect("user").user_id,
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
            token: app.admin_token.clone(),
        },
    );

    let target = create_person(&admin, "target@example.com", &["agent"], &[&team_alpha]).await;
    admin
        .users
        .clone()
        .set_avatar(pb::SetAvatarRequest {
            user_id: target.user_id.clone(),
            image: PNG.to_vec(),
        })
        .await
        .expect("avatar set");

    let mut keys = HashMap::new();
    let mut key_ids = Vec::new();
    let scopes: BTreeSet<&'static str> = ROWS
        .iter()
        .map(|r| r.scope)
        .chain([UNRELATED_SCOPE])
        .collect();
    for scope in scopes {
        let created = admin
            .auth
            .clone()
            .create_api_key(key_request(&format!("key {scope}"), &[scope]))
            .await
            .expect("key created")
            .into_inner();
        key_ids.push(created.api_key.expect("key").api_key_id);
        keys.insert(scope, created.secret);
    }

    let boss_email = "boss@elsewhere.example";
    let boss_id = app
        .insert_org_admin(OTHER_ORG, boss_email, "Boss", &target.user_id)
        .await;
    let boss_token = login(&app, OTHER_ORG, boss_email, USER_PASSWORD)
        .await
        .expect("the other org's admin signs in");
    people.insert(
        Who::OtherOrgAdmin,
        Person {
            user_id: boss_id,
            email: boss_email.into(),
            password: USER_PASSWORD.into(),
            token: boss_token,
        },
    );

    let mut markers: Vec<String> = people
        .iter()
        .filter(|(who, _)| **who != Who::OtherOrgAdmin)
        .flat_map(|(_, p)| [p.user_id.clone(), p.email.clone()])
        .collect();
    markers.extend([
        org1_id,
        target.user_id.clone(),
        target.email.clone(),
        team_alpha.clone(),
        team_beta,
        team_gamma.clone(),
        "auditor".into(),
    ]);
    markers.extend(key_ids);

    let platform_key = app.platform_key("matrix").await;
    Fixture {
        app,
        people,
        keys,
        platform_key,
        org1_id: markers_org1_id,
        target,
        team_alpha,
        team_gamma,
        markers,
        counter: AtomicUsize::new(0),
    }
}

/// Whether a result matches an expectation; `Err` carries why not. `Ok(true)`
/// means it passed only because the RPC is not built yet.
fn check(fx: &Fixture, expect: Expect, got: &Result<String, Status>) -> Result<bool, String> {
    let code = got.as_ref().err().map_or(Code::Ok, Status::code);
    let unimplemented = code == Code::Unimplemented;
    let names_target = got
        .as_ref()
        .is_ok_and(|text| text.contains(&fx.target.user_id));
    let leak = got
        .as_ref()
        .ok()
        .and_then(|text| fx.markers.iter().find(|m| text.contains(m.as_str())));
    let allowed = !matches!(code, Code::Unauthenticated | Code::PermissionDenied);
    let verdict = match expect {
        Allow => allowed,
        Sees => code == Code::Ok && names_target || unimplemented,
        Hidden => code == Code::Ok && !names_target || unimplemented,
        Deny => code == Code::PermissionDenied,
        Scoped => code == Code::PermissionDenied || unimplemented,
        Unauth => code == Code::Unauthenticated,
        NotFound => {
            matches!(
                code,
                Code::NotFound | Code::InvalidArgument | Code::Unimplemented
            ) || code == Code::Ok && leak.is_none()
        }
    };
    if !verdict {
        return Err(match (code, leak) {
            (Code::Ok, Some(marker)) => format!("OK, with the first org's {marker}"),
            (Code::Ok, None) if matches!(expect, Sees | Hidden) => format!(
                "OK, {} the target",
                if names_target { "naming" } else { "not naming" }
            ),
            (Code::Ok, None) => "OK".into(),
            (_, _) => {
                let status = got.as_ref().expect_err("not OK");
                format!("{:?}: {}", status.code(), status.message())
            }
        });
    }
    Ok(unimplemented && expect != Allow)
}

#[tokio::test]
async fn every_rpc_as_every_caller() {
    let started = std::time::Instant::now();
    let fx = setup().await;

    // Every RPC of the proto has a row, and every row names a real RPC.
    let descriptors =
        prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let rpcs: BTreeSet<String> = descriptors
        .file
        .iter()
        .filter(|f| f.package() == "roster.v1")
        .flat_map(|f| {
            f.service.iter().flat_map(|s| {
                s.method
                    .iter()
                    .map(move |m| format!("{}/{}", s.name(), m.name()))
            })
        })
        .collect();
    let covered: BTreeSet<String> = ROWS.iter().map(|r| r.rpc.to_owned()).collect();
    let missing: Vec<_> = rpcs.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&rpcs).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "the matrix must cover the proto exactly: no row for {missing:?}; rows for unknown RPCs {unknown:?}"
    );

    let mut mismatches = Vec::new();
    let mut pending = Vec::new();
    let mut cells = 0;
    for row in ROWS {
        for (who, &expect) in CALLERS.iter().zip(&row.expect) {
            cells += 1;
            let got = fx.perform(row, *who).await;
            match check(&fx, expect, &got) {
                Ok(false) => {}
                Ok(true) => pending.push(format!("{} ({}) as {who:?}", row.rpc, row.what)),
                Err(got) => mismatches.push(format!(
                    "{:<36} {:<28} {:<14} expected {:<9} got {got}",
                    row.rpc,
                    row.what,
                    format!("{who:?}"),
                    format!("{expect:?}"),
                )),
            }
        }
    }
    println!(
        "{cells} cells ({} rows × {} callers, {} RPCs) in {:.1?}",
        ROWS.len(),
        CALLERS.len(),
        rpcs.len(),
        started.elapsed()
    );
    if !pending.is_empty() {
        println!(
            "{} cells answered UNIMPLEMENTED where a scoped answer is expected once the RPC is built:\n  {}",
            pending.len(),
            pending.join("\n  ")
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} of {cells} cells disagree with the matrix:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
