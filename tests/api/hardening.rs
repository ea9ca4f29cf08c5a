//! Nobody grants more than they hold, and edge inputs that could cost the
//! server are refused cheaply.

use roster::api::pb::{self, org_service_client::OrgServiceClient};
use tonic::Code;

use crate::helpers::{TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app};

/// Signs in a user holding only a custom role with these permissions.
async fn holder_of(app: &TestApp, role: &str, permissions: &[&str]) -> String {
    OrgServiceClient::with_interceptor(app.channel.clone(), app.bearer())
        .create_role(pb::CreateRoleRequest {
            role: Some(pb::Role {
                name: role.into(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("role created");
    let email = format!("{role}@example.com");
    app.create_user(&email, role, &[role]).await;
    app.login(&email, USER_PASSWORD).await.session_token
}

#[tokio::test]
async fn nobody_grants_more_than_they_hold() {
    let app = spawn_app().await;
    let hr = holder_of(&app, "hr", &["users.manage", "users.read"]).await;
    let status = app
        .users_as(&hr)
        .create_user(create_request("boss@example.com", "Boss", &["admin"]))
        .await
        .expect_err("cannot create an admin");
    assert_eq!(status.code(), Code::PermissionDenied);
    app.users_as(&hr)
        .create_user(create_request("agent@example.com", "Agent", &["agent"]))
        .await
        .expect("everyday roles may be granted by any user manager");
    app.users_as(&hr)
        .create_user(create_request("peer@example.com", "Peer", &["hr"]))
        .await
        .expect("a role within the caller's permissions");
    let me = app
        .auth_as(&hr)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner()
        .user
        .expect("user");
    let status = app
        .users_as(&hr)
        .update_user(pb::UpdateUserRequest {
            user: Some(pb::User {
                user_id: me.user_id,
                roles: vec!["admin".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["roles".into()],
            }),
        })
        .await
        .expect_err("cannot promote oneself");
    assert_eq!(status.code(), Code::PermissionDenied);
    let admin_id = app.admin_id().await;
    let status = app
        .users_as(&hr)
        .reset_password(pb::ResetPasswordRequest {
            user_id: admin_id,
            new_password: "taken over password".into(),
            skip_password_change: true,
        })
        .await
        .expect_err("cannot take over an admin");
    assert_eq!(status.code(), Code::PermissionDenied);

    let keys = holder_of(&app, "keymaster", &["api_keys.manage"]).await;
    let status = app
        .auth_as(&keys)
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                name: "too strong".into(),
                scopes: vec!["users.manage".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("cannot mint a stronger key");
    assert_eq!(status.code(), Code::PermissionDenied);
    app.auth_as(&keys)
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                name: "same strength".into(),
                scopes: vec!["api_keys.manage".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("a key within the caller's permissions");

    let roles = holder_of(&app, "rolesmith", &["roles.manage"]).await;
    let status = OrgServiceClient::with_interceptor(
        app.channel.clone(),
        roster::api::Bearer::new(&roles).expect("token"),
    )
    .update_role(pb::UpdateRoleRequest {
        role: Some(pb::Role {
            name: "rolesmith".into(),
            permissions: vec!["roles.manage".into(), "settings.manage".into()],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["permissions".into()],
        }),
    })
    .await
    .expect_err("cannot widen one's own role");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_unlocked_filter_keeps_users_never_locked_when_locks_expire() {
    let app = spawn_app().await;
    app.update_org(
        pb::OrgSettings {
            lockout_duration: Some(prost_types::Duration {
                seconds: 900,
                nanos: 0,
            }),
            ..Default::default()
        },
        &["lockout_duration"],
    )
    .await;
    app.create_user("never@example.com", "Never Locked", &["agent"])
        .await;
    let unlocked = app
        .admin_users()
        .list_users(pb::ListUsersRequest {
            locked: Some(false),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(unlocked.users.len(), 2);
}

#[tokio::test]
async fn oversized_logins_and_request_ids_are_refused_cheaply() {
    let app = spawn_app().await;
    let before = app.sql_strings("SELECT id FROM audit_events").await.len();
    let status = app
        .try_login(&"x".repeat(100_000), USER_PASSWORD)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid credentials");
    let after = app.sql_strings("SELECT id FROM audit_events").await.len();
    assert_eq!(before, after, "nothing stored for an impossible login");

    let mut req = create_request("rid@example.com", "Rid", &["agent"]);
    req.request_id = "r".repeat(101);
    let status = app
        .admin_users()
        .create_user(req)
        .await
        .expect_err("too long");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["request_id"]);
    assert_eq!(reason(&status), "INVALID_ARGUMENT");
}
