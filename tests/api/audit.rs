//! AuditService: what changes leave in the log, newest first, with filters
//! and paging; and that nothing can edit or delete an entry.

use prost::Message;
use roster::api::{
    Bearer,
    pb::{self, audit_service_client::AuditServiceClient},
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

use crate::{
    helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, USER_PASSWORD, bad_fields, reason, spawn_app},
    org::org_as,
};

type AuditClient = AuditServiceClient<InterceptedService<Channel, Bearer>>;

fn audit_as(app: &TestApp, token: &str) -> AuditClient {
    AuditServiceClient::with_interceptor(app.channel.clone(), Bearer::new(token).expect("token"))
}

async fn list(app: &TestApp, req: pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse {
    audit_as(app, &app.admin_token)
        .list_audit_events(req)
        .await
        .expect("list audit events")
        .into_inner()
}

fn actions(resp: &pb::ListAuditEventsResponse) -> Vec<&str> {
    resp.audit_events
        .iter()
        .map(|e| e.action.as_str())
        .collect()
}

fn details(event: &pb::AuditEvent) -> serde_json::Value {
    serde_json::from_str(&event.details_json).expect("details are JSON")
}

/// Makes a team, renames it, makes a role and changes a setting; returns the
/// team id and the admin's user id.
async fn make_changes(app: &TestApp) -> (String, String) {
    let admin_id = app
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .user
        .expect("user")
        .user_id;
    let mut org = org_as(app, &app.admin_token);
    let team = org
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                name: "Support".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("team")
        .into_inner()
        .team
        .expect("team");
    org.update_team(pb::UpdateTeamRequest {
        team: Some(pb::Team {
            team_id: team.team_id.clone(),
            name: "Customer support".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["name".into()],
        }),
    })
    .await
    .expect("renamed");
    org.create_role(pb::CreateRoleRequest {
        role: Some(pb::Role {
            name: "compliance".into(),
            permissions: vec!["audit.read".into()],
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("role");
    org.update_org_settings(pb::UpdateOrgSettingsRequest {
        settings: Some(pb::OrgSettings {
            lockout_threshold: 3,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["lockout_threshold".into()],
        }),
    })
    .await
    .expect("settings");
    (team.team_id, admin_id)
}

#[tokio::test]
async fn changes_appear_newest_first_with_actor_target_and_details() {
    let app = spawn_app().await;
    let (team_id, admin_id) = make_changes(&app).await;
    let resp = list(&app, pb::ListAuditEventsRequest::default()).await;
    assert_eq!(
        actions(&resp)[..5],
        [
            "org.settings_update",
            "role.create",
            "team.update",
            "team.create",
            "auth.login"
        ]
    );
    assert_eq!(
        resp.audit_events.last().expect("first").action,
        "org.bootstrap"
    );
    let settings = &resp.audit_events[0];
    assert_eq!(settings.actor_kind, pb::AuditActorKind::User as i32);
    assert_eq!(settings.actor_id, admin_id);
    assert_eq!(settings.target_resource, "org/settings");
    assert!(settings.time.is_some());
    assert!(!settings.event_id.is_empty());
    assert!(!settings.peer_address.is_empty());
    assert_eq!(
        details(settings),
        serde_json::json!({
            "before": { "lockout_threshold": 5 },
            "after": { "lockout_threshold": 3 },
        })
    );
    let renamed = &resp.audit_events[2];
    assert_eq!(renamed.target_resource, format!("teams/{team_id}"));
    assert!(renamed.target_user_id.is_empty());
    assert_eq!(
        details(renamed),
        serde_json::json!({
            "before": { "name": "Support" },
            "after": { "name": "Customer support" },
        })
    );
    let role = &resp.audit_events[1];
    assert_eq!(role.target_resource, "roles/compliance");
    assert_eq!(
        details(role)["after"]["permissions"],
        serde_json::json!(["audit.read"])
    );
    let bootstrap = resp.audit_events.last().expect("bootstrap");
    assert_eq!(bootstrap.actor_kind, pb::AuditActorKind::System as i32);
    assert!(bootstrap.actor_id.is_empty());
    assert_eq!(bootstrap.target_user_id, admin_id);
}

#[tokio::test]
async fn filters_combine() {
    let app = spawn_app().await;
    let (_, admin_id) = make_changes(&app).await;
    let agent = app
        .create_user("agent@example.com", "Agent", &["agent"])
        .await;
    app.login("agent@example.com", USER_PASSWORD).await;
    app.try_login("agent@example.com", "wrong password!")
        .await
        .expect_err("wrong password");

    let by_target = list(
        &app,
        pb::ListAuditEventsRequest {
            target_user_id: agent.user_id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        actions(&by_target),
        ["auth.login_failed", "auth.login", "user.create"]
    );
    let by_actor = list(
        &app,
        pb::ListAuditEventsRequest {
            actor_id: agent.user_id.clone(),
            action: "auth.login".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&by_actor), ["auth.login"]);
    let prefix = list(
        &app,
        pb::ListAuditEventsRequest {
            action: "team.".into(),
            actor_id: admin_id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&prefix), ["team.update", "team.create"]);
    let system = list(
        &app,
        pb::ListAuditEventsRequest {
            actor_kind: pb::AuditActorKind::System as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&system), ["org.bootstrap"]);
    let none = list(
        &app,
        pb::ListAuditEventsRequest {
            actor_kind: pb::AuditActorKind::ApiKey as i32,
            ..Default::default()
        },
    )
    .await;
    assert!(none.audit_events.is_empty());

    // A time range: from the role's creation (inclusive) to the settings
    // change (exclusive).
    let all = list(&app, pb::ListAuditEventsRequest::default()).await;
    let at = |action: &str| {
        all.audit_events
            .iter()
            .find(|e| e.action == action)
            .and_then(|e| e.time)
            .expect("event time")
    };
    let ranged = list(
        &app,
        pb::ListAuditEventsRequest {
            start_time: Some(at("role.create")),
            end_time: Some(at("org.settings_update")),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&ranged), ["role.create"]);
}

#[tokio::test]
async fn paging_walks_every_event_once_newest_first() {
    let app = spawn_app().await;
    make_changes(&app).await;
    for i in 0..4 {
        app.create_user(&format!("u{i}@example.com"), "U", &[])
            .await;
    }
    let all = list(&app, pb::ListAuditEventsRequest::default()).await;
    assert!(all.next_page_token.is_empty());
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            &app,
            pb::ListAuditEventsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        assert!(page.audit_events.len() <= 3);
        seen.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // Entries appended meanwhile do not shift later pages.
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }
    assert_eq!(seen, all.audit_events);

    let first = list(
        &app,
        pb::ListAuditEventsRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    let err = audit_as(&app, &app.admin_token)
        .list_audit_events(pb::ListAuditEventsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            action: "user.".into(),
            ..Default::default()
        })
        .await
        .expect_err("a token is bound to its filters");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_PAGE_TOKEN");
    for garbage in ["garbage", "eyJrIjoiIiwiaSI6IiIsImYiOiIifQ", "%%%"] {
        let err = audit_as(&app, &app.admin_token)
            .list_audit_events(pb::ListAuditEventsRequest {
                page_token: garbage.into(),
                ..Default::default()
            })
            .await
            .expect_err("garbage token");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), "INVALID_PAGE_TOKEN");
        assert_eq!(bad_fields(&err), ["page_token"]);
    }
}

#[tokio::test]
async fn bad_filters_are_refused_by_field() {
    let app = spawn_app().await;
    let ts = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
    let cases = [
        (
            pb::ListAuditEventsRequest {
                actor_id: "someone".into(),
                ..Default::default()
            },
            "actor_id",
        ),
        (
            pb::ListAuditEventsRequest {
                target_user_id: "someone".into(),
                ..Default::default()
            },
            "target_user_id",
        ),
        (
            pb::ListAuditEventsRequest {
                actor_kind: 99,
                ..Default::default()
            },
            "actor_kind",
        ),
        (
            pb::ListAuditEventsRequest {
                action: "User.Create%".into(),
                ..Default::default()
            },
            "action",
        ),
        (
            pb::ListAuditEventsRequest {
                start_time: Some(ts(2_000)),
                end_time: Some(ts(1_000)),
                ..Default::default()
            },
            "end_time",
        ),
        (
            pb::ListAuditEventsRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "start_time",
        ),
        (
            pb::ListAuditEventsRequest {
                page_size: -5,
                ..Default::default()
            },
            "page_size",
        ),
    ];
    for (req, field) in cases {
        let err = audit_as(&app, &app.admin_token)
            .list_audit_events(req)
            .await
            .expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(bad_fields(&err), [field]);
    }
}

#[tokio::test]
async fn only_audit_readers_read_the_log() {
    let app = spawn_app().await;
    for role in ["agent", "supervisor", "manager", "viewer"] {
        let email = format!("{role}@example.com");
        app.create_user(&email, role, &[role]).await;
        let token = app.login(&email, USER_PASSWORD).await.session_token;
        let err = audit_as(&app, &token)
            .list_audit_events(pb::ListAuditEventsRequest::default())
            .await
            .expect_err("no audit.read");
        assert_eq!(err.code(), Code::PermissionDenied, "{role}");
    }
}

#[test]
fn the_audit_service_has_no_way_to_change_entries() {
    let set =
        prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let methods: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == "AuditService")
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    assert_eq!(methods, ["ListAuditEvents"]);
}

#[tokio::test]
async fn entries_carry_the_callers_request_id_or_one_the_server_made() {
    let app = spawn_app().await;
    let mut org = org_as(&app, &app.admin_token);
    let mut sent = tonic::Request::new(pb::CreateTeamRequest {
        team: Some(pb::Team {
            name: "Traced".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    });
    sent.metadata_mut()
        .insert("x-request-id", "req-42".parse().expect("header"));
    org.create_team(sent).await.expect("team");
    org.create_team(pb::CreateTeamRequest {
        team: Some(pb::Team {
            name: "Untraced".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("team");
    let events = list(
        &app,
        pb::ListAuditEventsRequest {
            action: "team.create".into(),
            ..Default::default()
        },
    )
    .await
    .audit_events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].request_id, "req-42");
    assert!(
        uuid::Uuid::parse_str(&events[0].request_id).is_ok(),
        "a server-made id: {:?}",
        events[0].request_id
    );
}
