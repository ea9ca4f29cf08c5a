//! OrgService: settings, teams and custom roles — rules, permissions, etags,
//! bad input, and that every refused call leaves the database unchanged.

use roster::api::{
    Bearer,
    pb::{self, audit_service_client::AuditServiceClient, org_service_client::OrgServiceClient},
};
use sea_orm::{ConnectionTrait, Database};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::helpers::{TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app};

type OrgClient = OrgServiceClient<InterceptedService<Channel, Bearer>>;

pub fn org_as(app: &TestApp, token: &str) -> OrgClient {
    OrgServiceClient::with_interceptor(
        app.channel.clone(),
        Bearer::new(token).expect("token is header text"),
    )
}

fn admin(app: &TestApp) -> OrgClient {
    org_as(app, &app.admin_token)
}

/// Creates a user with `roles` and signs them in.
async fn token_of(app: &TestApp, email: &str, roles: &[&str]) -> String {
    app.create_user(email, email, roles).await;
    app.login(email, USER_PASSWORD).await.session_token
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn secs(s: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: s,
        nanos: 0,
    })
}

/// The ErrorInfo metadata entry `key` of a status.
fn fact(status: &Status, key: &str) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get(key).cloned())
}

async fn settings(app: &TestApp) -> pb::OrgSettings {
    admin(app)
        .get_org_settings(pb::GetOrgSettingsRequest {})
        .await
        .expect("get settings")
        .into_inner()
        .settings
        .expect("settings")
}

async fn teams(app: &TestApp) -> Vec<pb::Team> {
    admin(app)
        .list_teams(pb::ListTeamsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("list teams")
        .into_inner()
        .teams
}

async fn roles(app: &TestApp) -> Vec<pb::Role> {
    admin(app)
        .list_roles(pb::ListRolesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("list roles")
        .into_inner()
        .roles
}

/// Everything OrgService changes, to compare before and after refused calls.
async fn snapshot(app: &TestApp) -> (pb::OrgSettings, Vec<pb::Team>, Vec<pb::Role>, usize) {
    let events = AuditServiceClient::with_interceptor(app.channel.clone(), app.bearer())
        .list_audit_events(pb::ListAuditEventsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("list audit")
        .into_inner()
        .audit_events
        .len();
    (
        settings(app).await,
        teams(app).await,
        roles(app).await,
        events,
    )
}

async fn create_team(app: &TestApp, name: &str) -> pb::Team {
    admin(app)
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                name: name.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("team created")
        .into_inner()
        .team
        .expect("team")
}

async fn create_role(app: &TestApp, name: &str, permissions: &[&str]) -> pb::Role {
    admin(app)
        .create_role(role_request(name, permissions))
        .await
        .expect("role created")
        .into_inner()
        .role
        .expect("role")
}

fn role_request(name: &str, permissions: &[&str]) -> pb::CreateRoleRequest {
    pb::CreateRoleRequest {
        role: Some(pb::Role {
            name: name.into(),
            description: format!("the {name} role"),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn sql(app: &TestApp, statement: &str) {
    let db = Database::connect(&app.database_url).await.expect("db");
    db.execute_unprepared(statement).await.expect("sql");
    db.close().await.ok();
}

// ---------------------------------------------------------------- settings

#[tokio::test]
async fn anyone_reads_settings_and_admins_change_every_one() {
    let app = spawn_app().await;
    let agent = token_of(&app, "agent@example.com", &["agent"]).await;
    let read = org_as(&app, &agent)
        .get_org_settings(pb::GetOrgSettingsRequest {})
        .await
        .expect("an agent reads settings")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(read.slug, "acme");
    assert_eq!(read.seats_used, 2);
    assert_eq!(read.seat_limit, 0);
    assert_eq!(read.password_min_length, 8);
    assert_eq!(read.lockout_threshold, 5);
    assert_eq!(read.login_with, pb::LoginWith::Both as i32);
    assert_eq!(read.presence_lease, secs(60));

    let wanted = pb::OrgSettings {
        display_name: "Acme Support".into(),
        seat_limit: 50,
        default_max_chats: 4,
        password_min_length: 12,
        lockout_threshold: 3,
        lockout_duration: secs(900),
        login_with: pb::LoginWith::Email as i32,
        invite_lifetime: secs(2 * 86400),
        session_lifetime: secs(3600),
        presence_lease: secs(30),
        etag: read.etag.clone(),
        ..Default::default()
    };
    let updated = admin(&app)
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(wanted.clone()),
            update_mask: mask(&[
                "display_name",
                "settings.seat_limit",
                "default_max_chats",
                "password_min_length",
                "lockout_threshold",
                "lockout_duration",
                "login_with",
                "invite_lifetime",
                "session_lifetime",
                "presence_lease",
            ]),
        })
        .await
        .expect("admin updates settings")
        .into_inner();
    assert!(!updated.over_seat_limit);
    let s = updated.settings.expect("settings");
    assert_ne!(s.etag, read.etag);
    let got = settings(&app).await;
    assert_eq!(got, s);
    assert_eq!(
        pb::OrgSettings {
            org_id: String::new(),
            slug: String::new(),
            seats_used: 0,
            etag: wanted.etag.clone(),
            ..got
        },
        wanted
    );

    // The new password policy applies to passwords set afterwards.
    let mut req = create_request("short@example.com", "Short", &[]);
    req.password = "eleven char".into();
    let err = app
        .admin_users()
        .create_user(req)
        .await
        .expect_err("12 characters is the minimum now");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "WEAK_PASSWORD");
    assert_eq!(bad_fields(&err), ["password"]);
}

#[tokio::test]
async fn only_settings_managers_change_settings() {
    let app = spawn_app().await;
    let manager = token_of(&app, "manager@example.com", &["manager"]).await;
    let before = snapshot(&app).await;
    let err = org_as(&app, &manager)
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(pb::OrgSettings {
                lockout_threshold: 9,
                ..Default::default()
            }),
            update_mask: mask(&["lockout_threshold"]),
        })
        .await
        .expect_err("managers have no settings.manage");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "PERMISSION_DENIED");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn every_bad_setting_is_refused_by_field_and_nothing_changes() {
    let app = spawn_app().await;
    let before = snapshot(&app).await;
    let base = pb::OrgSettings {
        display_name: "Acme".into(),
        default_max_chats: 6,
        password_min_length: 8,
        lockout_threshold: 5,
        lockout_duration: secs(0),
        login_with: pb::LoginWith::Both as i32,
        invite_lifetime: secs(86400),
        session_lifetime: secs(3600),
        presence_lease: secs(60),
        ..Default::default()
    };
    type Edit = fn(&mut pb::OrgSettings);
    let cases: Vec<(&str, Edit)> = vec![
        ("display_name", |s| s.display_name = "  ".into()),
        ("display_name", |s| s.display_name = "x".repeat(101)),
        ("seat_limit", |s| s.seat_limit = 1_000_001),
        ("default_max_chats", |s| s.default_max_chats = 0),
        ("default_max_chats", |s| s.default_max_chats = 1001),
        ("password_min_length", |s| s.password_min_length = 7),
        ("password_min_length", |s| s.password_min_length = 0),
        ("password_min_length", |s| s.password_min_length = 65),
        ("lockout_threshold", |s| s.lockout_threshold = 0),
        ("lockout_threshold", |s| s.lockout_threshold = 101),
        ("lockout_duration", |s| s.lockout_duration = secs(-1)),
        ("lockout_duration", |s| {
            s.lockout_duration = secs(31 * 86400)
        }),
        ("lockout_duration", |s| s.lockout_duration = None),
        ("lockout_duration", |s| {
            s.lockout_duration = Some(prost_types::Duration {
                seconds: 10,
                nanos: 500,
            })
        }),
        ("login_with", |s| s.login_with = 0),
        ("login_with", |s| s.login_with = 42),
        ("invite_lifetime", |s| s.invite_lifetime = secs(3599)),
        ("invite_lifetime", |s| s.invite_lifetime = secs(31 * 86400)),
        ("session_lifetime", |s| s.session_lifetime = secs(299)),
        ("session_lifetime", |s| {
            s.session_lifetime = secs(31 * 86400)
        }),
        ("presence_lease", |s| s.presence_lease = secs(4)),
        ("presence_lease", |s| s.presence_lease = secs(3601)),
    ];
    for (field, edit) in cases {
        let mut settings = base.clone();
        edit(&mut settings);
        let err = admin(&app)
            .update_org_settings(pb::UpdateOrgSettingsRequest {
                settings: Some(settings.clone()),
                update_mask: mask(&[field]),
            })
            .await
            .expect_err(&format!("{field} {settings:?} must be refused"));
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(reason(&err), "INVALID_SETTING", "{field}: {err:?}");
        assert_eq!(bad_fields(&err), [format!("settings.{field}")]);
    }

    // Several at once: each is named.
    let err = admin(&app)
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(pb::OrgSettings {
                password_min_length: 4,
                lockout_threshold: 0,
                ..base.clone()
            }),
            update_mask: mask(&["password_min_length", "lockout_threshold"]),
        })
        .await
        .expect_err("two bad settings");
    assert_eq!(
        bad_fields(&err),
        ["settings.password_min_length", "settings.lockout_threshold"]
    );

    for bad_mask in [
        mask(&[]),
        None,
        mask(&["slug"]),
        mask(&["seats_used"]),
        mask(&["nope"]),
    ] {
        let err = admin(&app)
            .update_org_settings(pb::UpdateOrgSettingsRequest {
                settings: Some(base.clone()),
                update_mask: bad_mask.clone(),
            })
            .await
            .expect_err("bad mask");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), "INVALID_FIELD_MASK", "{bad_mask:?}");
        assert_eq!(bad_fields(&err), ["update_mask"]);
    }
    let err = admin(&app)
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: None,
            update_mask: mask(&["lockout_threshold"]),
        })
        .await
        .expect_err("settings missing");
    assert_eq!(bad_fields(&err), ["settings"]);

    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn a_stale_settings_etag_is_aborted() {
    let app = spawn_app().await;
    let first = settings(&app).await;
    let update = |etag: String, threshold: u32| pb::UpdateOrgSettingsRequest {
        settings: Some(pb::OrgSettings {
            lockout_threshold: threshold,
            etag,
            ..Default::default()
        }),
        update_mask: mask(&["lockout_threshold"]),
    };
    admin(&app)
        .update_org_settings(update(first.etag.clone(), 7))
        .await
        .expect("fresh etag");
    let before = snapshot(&app).await;
    for etag in [first.etag.clone(), "garbage".into()] {
        let err = admin(&app)
            .update_org_settings(update(etag, 9))
            .await
            .expect_err("stale etag");
        assert_eq!(err.code(), Code::Aborted);
        assert_eq!(reason(&err), "STALE_ETAG");
    }
    assert_eq!(snapshot(&app).await, before);
    // An empty etag means "regardless".
    let s = admin(&app)
        .update_org_settings(update(String::new(), 9))
        .await
        .expect("no etag")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(s.lockout_threshold, 9);
}

#[tokio::test]
async fn a_seat_limit_below_use_is_allowed_and_reported() {
    let app = spawn_app().await;
    app.create_user("one@example.com", "One", &[]).await;
    app.create_user("two@example.com", "Two", &[]).await;
    let resp = admin(&app)
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(pb::OrgSettings {
                seat_limit: 2,
                ..Default::default()
            }),
            update_mask: mask(&["seat_limit"]),
        })
        .await
        .expect("a limit below use is allowed")
        .into_inner();
    assert!(resp.over_seat_limit);
    let s = resp.settings.expect("settings");
    assert_eq!((s.seat_limit, s.seats_used), (2, 3));
    let err = app
        .admin_users()
        .create_user(create_request("three@example.com", "Three", &[]))
        .await
        .expect_err("no new seat");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "SEAT_LIMIT_REACHED");
    // 0 lifts the limit.
    let resp = admin(&app)
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(pb::OrgSettings::default()),
            update_mask: mask(&["seat_limit"]),
        })
        .await
        .expect("unlimited")
        .into_inner();
    assert!(!resp.over_seat_limit);
    app.create_user("three@example.com", "Three", &[]).await;
}

// ------------------------------------------------------------------- teams

#[tokio::test]
async fn teams_are_created_listed_updated_and_deleted() {
    let app = spawn_app().await;
    let sales = admin(&app)
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                name: "  Sales ".into(),
                description: "Pre-sales chats".into(),
                team_id: "ignored".into(),
                etag: "ignored".into(),
                created_at: None,
            }),
            request_id: String::new(),
        })
        .await
        .expect("created")
        .into_inner()
        .team
        .expect("team");
    assert_eq!(sales.name, "Sales");
    assert_eq!(sales.description, "Pre-sales chats");
    assert!(sales.created_at.is_some());
    assert_ne!(sales.team_id, "ignored");
    assert_eq!(teams(&app).await, std::slice::from_ref(&sales));

    let renamed = admin(&app)
        .update_team(pb::UpdateTeamRequest {
            team: Some(pb::Team {
                team_id: sales.team_id.clone(),
                name: "Inside sales".into(),
                description: "not masked: unchanged".into(),
                etag: sales.etag.clone(),
                created_at: None,
            }),
            update_mask: mask(&["team.name"]),
        })
        .await
        .expect("renamed")
        .into_inner()
        .team
        .expect("team");
    assert_eq!(renamed.name, "Inside sales");
    assert_eq!(renamed.description, "Pre-sales chats");
    assert_ne!(renamed.etag, sales.etag);
    // Changing only the case of one's own name is fine.
    admin(&app)
        .update_team(pb::UpdateTeamRequest {
            team: Some(pb::Team {
                team_id: sales.team_id.clone(),
                name: "INSIDE SALES".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .expect("recased");

    let before = snapshot(&app).await;
    let err = admin(&app)
        .update_team(pb::UpdateTeamRequest {
            team: Some(pb::Team {
                team_id: sales.team_id.clone(),
                description: "stale".into(),
                etag: sales.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "STALE_ETAG");
    let err = admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: sales.team_id.clone(),
            etag: sales.etag.clone(),
            detach_members: false,
        })
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(snapshot(&app).await, before);

    admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: sales.team_id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    assert!(teams(&app).await.is_empty());
    let err = admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: sales.team_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "TEAM_NOT_FOUND");
}

#[tokio::test]
async fn team_names_are_unique_whatever_their_case() {
    let app = spawn_app().await;
    create_team(&app, "Support").await;
    let other = create_team(&app, "Billing").await;
    let before = snapshot(&app).await;
    for name in ["support", " SUPPORT "] {
        let err = admin(&app)
            .create_team(pb::CreateTeamRequest {
                team: Some(pb::Team {
                    name: name.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect_err("taken");
        assert_eq!(err.code(), Code::AlreadyExists);
        assert_eq!(reason(&err), "TEAM_NAME_TAKEN");
    }
    let err = admin(&app)
        .update_team(pb::UpdateTeamRequest {
            team: Some(pb::Team {
                team_id: other.team_id,
                name: "SupPort".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "TEAM_NAME_TAKEN");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn bad_team_input_is_refused_by_field_and_nothing_changes() {
    let app = spawn_app().await;
    let team = create_team(&app, "Support").await;
    let before = snapshot(&app).await;
    let create = |name: String, description: String| pb::CreateTeamRequest {
        team: Some(pb::Team {
            name,
            description,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    for (req, field, why) in [
        (create("".into(), "".into()), "team.name", "INVALID_NAME"),
        (
            create("x".repeat(101), "".into()),
            "team.name",
            "INVALID_NAME",
        ),
        (
            create("a\u{1}b".into(), "".into()),
            "team.name",
            "INVALID_NAME",
        ),
        (
            create("Ok".into(), "d".repeat(501)),
            "team.description",
            "INVALID_TEXT",
        ),
        (
            pb::CreateTeamRequest {
                team: None,
                request_id: String::new(),
            },
            "team",
            "INVALID_ARGUMENT",
        ),
        (
            pb::CreateTeamRequest {
                request_id: "r".repeat(101),
                ..create("Ok".into(), "".into())
            },
            "request_id",
            "INVALID_ARGUMENT",
        ),
    ] {
        let err = admin(&app).create_team(req).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(reason(&err), why, "{field}");
        assert_eq!(bad_fields(&err), [field]);
    }
    let update = |team_id: &str, paths: &[&str]| pb::UpdateTeamRequest {
        team: Some(pb::Team {
            team_id: team_id.into(),
            name: "New".into(),
            ..Default::default()
        }),
        update_mask: mask(paths),
    };
    for (req, field, why) in [
        (
            update("not-a-uuid", &["name"]),
            "team.team_id",
            "INVALID_ID",
        ),
        (
            update(&team.team_id, &[]),
            "update_mask",
            "INVALID_FIELD_MASK",
        ),
        (
            update(&team.team_id, &["etag"]),
            "update_mask",
            "INVALID_FIELD_MASK",
        ),
        (
            update(&team.team_id, &["team_id"]),
            "update_mask",
            "INVALID_FIELD_MASK",
        ),
    ] {
        let err = admin(&app).update_team(req).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(reason(&err), why);
        assert_eq!(bad_fields(&err), [field]);
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = admin(&app)
        .update_team(update(&unknown, &["name"]))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "TEAM_NOT_FOUND");
    let err = admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad_fields(&err), ["team_id"]);
    let err = admin(&app)
        .list_teams(pb::ListTeamsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_PAGE_TOKEN");
    let err = admin(&app)
        .list_teams(pb::ListTeamsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("bad size");
    assert_eq!(bad_fields(&err), ["page_size"]);
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn managers_manage_teams_and_others_only_list_them() {
    let app = spawn_app().await;
    let manager = token_of(&app, "manager@example.com", &["manager"]).await;
    let team = org_as(&app, &manager)
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                name: "Night shift".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("managers create teams")
        .into_inner()
        .team
        .expect("team");
    for role in ["agent", "supervisor", "viewer"] {
        let token = token_of(&app, &format!("{role}@example.com"), &[role]).await;
        let mut client = org_as(&app, &token);
        let listed = client
            .list_teams(pb::ListTeamsRequest::default())
            .await
            .expect("anyone lists teams")
            .into_inner()
            .teams;
        assert_eq!(listed, std::slice::from_ref(&team));
        let before = snapshot(&app).await;
        let denied = [
            client
                .create_team(pb::CreateTeamRequest {
                    team: Some(pb::Team {
                        name: "Mine".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .map(|_| ()),
            client
                .update_team(pb::UpdateTeamRequest {
                    team: Some(pb::Team {
                        team_id: team.team_id.clone(),
                        name: "Mine".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                })
                .await
                .map(|_| ()),
            client
                .delete_team(pb::DeleteTeamRequest {
                    team_id: team.team_id.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        ];
        for result in denied {
            let err = result.expect_err("no teams.manage");
            assert_eq!(err.code(), Code::PermissionDenied, "{role}");
        }
        assert_eq!(snapshot(&app).await, before);
    }
}

#[tokio::test]
async fn teams_page_by_name_whatever_the_case() {
    let app = spawn_app().await;
    for name in ["delta", "Alpha", "charlie", "Echo", "bravo"] {
        create_team(&app, name).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = admin(&app)
            .list_teams(pb::ListTeamsRequest {
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        names.extend(page.teams.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["Alpha", "bravo", "charlie", "delta", "Echo"]);
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_team_and_role() {
    let app = spawn_app().await;
    let req = pb::CreateTeamRequest {
        team: Some(pb::Team {
            name: "Retry".into(),
            ..Default::default()
        }),
        request_id: "req-1".into(),
    };
    let first = admin(&app).create_team(req.clone()).await.expect("first");
    let second = admin(&app).create_team(req).await.expect("replayed");
    assert_eq!(first.into_inner(), second.into_inner());
    assert_eq!(teams(&app).await.len(), 1);

    let mut req = role_request("retry", &["audit.read"]);
    req.request_id = "req-1".into();
    let first = admin(&app).create_role(req.clone()).await.expect("first");
    let second = admin(&app).create_role(req).await.expect("replayed");
    assert_eq!(first.into_inner(), second.into_inner());
}

#[tokio::test]
async fn deleting_a_team_with_members_needs_detach() {
    let app = spawn_app().await;
    let team = create_team(&app, "Support").await;
    let mut req = create_request("member@example.com", "Member", &["agent"]);
    req.user.as_mut().expect("user").team_ids = vec![team.team_id.clone()];
    let member = app
        .admin_users()
        .create_user(req)
        .await
        .expect("member")
        .into_inner()
        .user
        .expect("user");
    let before = snapshot(&app).await;
    let err = admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: team.team_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "TEAM_IN_USE");
    assert_eq!(fact(&err, "members").as_deref(), Some("1"));
    assert_eq!(snapshot(&app).await, before);

    admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: team.team_id.clone(),
            etag: team.etag.clone(),
            detach_members: true,
        })
        .await
        .expect("detached");
    let after = app
        .admin_users()
        .get_user(pb::GetUserRequest {
            user_id: member.user_id.clone(),
        })
        .await
        .expect("member stays")
        .into_inner()
        .user
        .expect("user");
    assert!(after.team_ids.is_empty());
    assert_ne!(after.etag, member.etag, "the member's team list changed");
}

#[tokio::test]
async fn another_orgs_teams_are_not_found() {
    let app = spawn_app().await;
    let other_org = uuid::Uuid::now_v7().to_string();
    let other_team = uuid::Uuid::now_v7().to_string();
    sql(
        &app,
        &format!(
            "INSERT INTO orgs (id, slug, name, created_at, seat_limit, default_max_chats, \
             password_min_length, lockout_threshold, lockout_duration_secs, login_with, \
             invite_lifetime_secs, session_lifetime_secs, presence_lease_secs, version) \
             SELECT '{other_org}', 'other', 'Other', created_at, NULL, 6, 8, 5, 0, 'both', \
             604800, 43200, 60, 1 FROM orgs WHERE slug = 'acme'"
        ),
    )
    .await;
    sql(
        &app,
        &format!(
            "INSERT INTO teams (id, org_id, name, description, version, created_at) \
             SELECT '{other_team}', '{other_org}', 'Theirs', '', 1, created_at FROM orgs \
             WHERE slug = 'acme'"
        ),
    )
    .await;
    assert!(
        teams(&app).await.is_empty(),
        "another org's team is not listed"
    );
    let err = admin(&app)
        .update_team(pb::UpdateTeamRequest {
            team: Some(pb::Team {
                team_id: other_team.clone(),
                name: "Mine now".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .expect_err("not ours");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "TEAM_NOT_FOUND");
    let err = admin(&app)
        .delete_team(pb::DeleteTeamRequest {
            team_id: other_team.clone(),
            detach_members: true,
            ..Default::default()
        })
        .await
        .expect_err("not ours");
    assert_eq!(err.code(), Code::NotFound);
    // Our own team may take their team's name: uniqueness is per org.
    create_team(&app, "Theirs").await;
}

// ------------------------------------------------------------------- roles

#[tokio::test]
async fn built_in_roles_are_listed_and_immutable() {
    let app = spawn_app().await;
    let listed = roles(&app).await;
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["admin", "agent", "manager", "supervisor", "viewer"]);
    assert!(listed.iter().all(|r| r.built_in));
    let agent = &listed[1];
    assert_eq!(
        agent.permissions,
        ["chats.handle", "chats.view_colleagues", "profile.edit_own"]
    );
    assert!(listed[0].permissions.contains(&"audit.read".to_string()));

    let before = snapshot(&app).await;
    let err = admin(&app)
        .create_role(role_request("admin", &[]))
        .await
        .expect_err("built-in");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "BUILTIN_ROLE");
    let err = admin(&app)
        .update_role(pb::UpdateRoleRequest {
            role: Some(pb::Role {
                name: "agent".into(),
                permissions: vec!["audit.read".into()],
                ..Default::default()
            }),
            update_mask: mask(&["permissions"]),
        })
        .await
        .expect_err("built-in");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "BUILTIN_ROLE");
    let err = admin(&app)
        .delete_role(pb::DeleteRoleRequest {
            name: "viewer".into(),
            detach_holders: true,
            ..Default::default()
        })
        .await
        .expect_err("built-in");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "BUILTIN_ROLE");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn custom_roles_are_created_listed_updated_and_deleted() {
    let app = spawn_app().await;
    let role = create_role(
        &app,
        "compliance",
        &["audit.read", "users.read", "audit.read"],
    )
    .await;
    assert!(!role.built_in);
    assert_eq!(role.description, "the compliance role");
    assert_eq!(role.permissions, ["users.read", "audit.read"]);
    let names: Vec<String> = roles(&app).await.into_iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        [
            "admin",
            "agent",
            "compliance",
            "manager",
            "supervisor",
            "viewer"
        ]
    );
    let paged = admin(&app)
        .list_roles(pb::ListRolesRequest {
            page_size: 4,
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(paged.roles.len(), 4);
    let rest = admin(&app)
        .list_roles(pb::ListRolesRequest {
            page_size: 4,
            page_token: paged.next_page_token,
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(
        rest.roles
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["supervisor", "viewer"]
    );
    assert!(rest.next_page_token.is_empty());

    let updated = admin(&app)
        .update_role(pb::UpdateRoleRequest {
            role: Some(pb::Role {
                name: "compliance".into(),
                description: "Reads the audit log".into(),
                permissions: vec!["audit.read".into()],
                etag: role.etag.clone(),
                built_in: false,
            }),
            update_mask: mask(&["description", "role.permissions"]),
        })
        .await
        .expect("updated")
        .into_inner()
        .role
        .expect("role");
    assert_eq!(updated.description, "Reads the audit log");
    assert_eq!(updated.permissions, ["audit.read"]);
    assert_ne!(updated.etag, role.etag);

    let before = snapshot(&app).await;
    let err = admin(&app)
        .update_role(pb::UpdateRoleRequest {
            role: Some(pb::Role {
                name: "compliance".into(),
                description: "stale".into(),
                etag: role.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "STALE_ETAG");
    let err = admin(&app)
        .create_role(role_request("compliance", &[]))
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "ROLE_TAKEN");
    assert_eq!(snapshot(&app).await, before);

    admin(&app)
        .delete_role(pb::DeleteRoleRequest {
            name: "compliance".into(),
            etag: updated.etag,
            detach_holders: false,
        })
        .await
        .expect("deleted");
    assert_eq!(roles(&app).await.len(), 5);
    let err = admin(&app)
        .delete_role(pb::DeleteRoleRequest {
            name: "compliance".into(),
            ..Default::default()
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "ROLE_NOT_FOUND");
}

#[tokio::test]
async fn bad_role_input_is_refused_by_field_and_nothing_changes() {
    let app = spawn_app().await;
    create_role(&app, "compliance", &[]).await;
    let before = snapshot(&app).await;
    let long = "d".repeat(501);
    for (req, field, why) in [
        (role_request("", &[]), "role.name", "INVALID_NAME"),
        (role_request("Has Space", &[]), "role.name", "INVALID_NAME"),
        (role_request("9lives", &[]), "role.name", "INVALID_NAME"),
        (
            role_request(&"r".repeat(51), &[]),
            "role.name",
            "INVALID_NAME",
        ),
        (
            role_request("ok", &["audit.read", "fly"]),
            "role.permissions",
            "INVALID_ARGUMENT",
        ),
        (
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "ok".into(),
                    description: long.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            "role.description",
            "INVALID_TEXT",
        ),
        (
            pb::CreateRoleRequest {
                role: None,
                request_id: String::new(),
            },
            "role",
            "INVALID_ARGUMENT",
        ),
    ] {
        let err = admin(&app).create_role(req).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(reason(&err), why, "{field}");
        assert_eq!(bad_fields(&err), [field]);
    }
    let update = |name: &str, paths: &[&str], perms: &[&str]| pb::UpdateRoleRequest {
        role: Some(pb::Role {
            name: name.into(),
            permissions: perms.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }),
        update_mask: mask(paths),
    };
    for (req, field, why) in [
        (
            update("compliance", &["name"], &[]),
            "update_mask",
            "INVALID_FIELD_MASK",
        ),
        (
            update("compliance", &[], &[]),
            "update_mask",
            "INVALID_FIELD_MASK",
        ),
        (
            update("compliance", &["permissions"], &["nope"]),
            "role.permissions",
            "INVALID_ARGUMENT",
        ),
        (
            update("no spaces allowed", &["permissions"], &[]),
            "role.name",
            "UNKNOWN_ROLE",
        ),
    ] {
        let err = admin(&app).update_role(req).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(reason(&err), why, "{field}");
        assert_eq!(bad_fields(&err), [field]);
    }
    let err = admin(&app)
        .update_role(update("ghost", &["permissions"], &[]))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "ROLE_NOT_FOUND");

    let manager = token_of(&app, "manager@example.com", &["manager"]).await;
    let before_manager = snapshot(&app).await;
    let err = org_as(&app, &manager)
        .create_role(role_request("mine", &[]))
        .await
        .expect_err("managers have no roles.manage");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = org_as(&app, &manager)
        .delete_role(pb::DeleteRoleRequest {
            name: "compliance".into(),
            ..Default::default()
        })
        .await
        .expect_err("managers have no roles.manage");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(snapshot(&app).await, before_manager);
    assert_eq!(before.1, before_manager.1);
    assert_eq!(before.2, before_manager.2);
}

#[tokio::test]
async fn deleting_a_held_role_needs_detach() {
    let app = spawn_app().await;
    create_role(&app, "compliance", &["audit.read"]).await;
    let holder = app
        .create_user("holder@example.com", "Holder", &["agent", "compliance"])
        .await;
    let before = snapshot(&app).await;
    let err = admin(&app)
        .delete_role(pb::DeleteRoleRequest {
            name: "compliance".into(),
            ..Default::default()
        })
        .await
        .expect_err("held");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ROLE_IN_USE");
    assert_eq!(fact(&err, "holders").as_deref(), Some("1"));
    assert_eq!(snapshot(&app).await, before);

    admin(&app)
        .delete_role(pb::DeleteRoleRequest {
            name: "compliance".into(),
            detach_holders: true,
            ..Default::default()
        })
        .await
        .expect("detached");
    let after = app
        .admin_users()
        .get_user(pb::GetUserRequest {
            user_id: holder.user_id.clone(),
        })
        .await
        .expect("holder stays")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(after.roles, ["agent"]);
    assert_ne!(after.etag, holder.etag);
}

#[tokio::test]
async fn a_role_change_applies_on_the_holders_next_request() {
    let app = spawn_app().await;
    let role = create_role(&app, "auditor", &["audit.read"]).await;
    let token = token_of(&app, "auditor@example.com", &["auditor"]).await;
    let mut audit = AuditServiceClient::with_interceptor(
        app.channel.clone(),
        Bearer::new(&token).expect("token"),
    );
    let list = pb::ListAuditEventsRequest::default();
    audit
        .list_audit_events(list.clone())
        .await
        .expect("the role grants audit.read");

    let revoke = |etag: String, perms: Vec<String>| pb::UpdateRoleRequest {
        role: Some(pb::Role {
            name: "auditor".into(),
            permissions: perms,
            etag,
            ..Default::default()
        }),
        update_mask: mask(&["permissions"]),
    };
    let revoked = admin(&app)
        .update_role(revoke(role.etag, vec![]))
        .await
        .expect("revoked")
        .into_inner()
        .role
        .expect("role");
    let err = audit
        .list_audit_events(list.clone())
        .await
        .expect_err("same session, next request: no longer allowed");
    assert_eq!(err.code(), Code::PermissionDenied);

    admin(&app)
        .update_role(revoke(revoked.etag, vec!["audit.read".into()]))
        .await
        .expect("granted again");
    audit
        .list_audit_events(list)
        .await
        .expect("allowed again without signing in");
}
