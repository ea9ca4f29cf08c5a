//! API keys: created and revoked by admins, used by services as bearer tokens
//! with exactly their scopes.

use roster::api::pb;
use tonic::Code;

use crate::helpers::{TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app};

fn key_request(name: &str, scopes: &[&str]) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        api_key: Some(pb::ApiKey {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn create_key(app: &TestApp, name: &str, scopes: &[&str]) -> pb::CreateApiKeyResponse {
    app.auth_as(&app.admin_token)
        .create_api_key(key_request(name, scopes))
        .await
        .expect("key created")
        .into_inner()
}

#[tokio::test]
async fn a_key_acts_with_exactly_its_scopes_until_revoked() {
    let app = spawn_app().await;
    app.create_user("agent@example.com", "Agent", &["agent"])
        .await;
    let created = create_key(&app, "router", &["users.read", "presence.read"]).await;
    assert!(created.secret.starts_with("rk_"));
    let key = created.api_key.expect("key");
    assert!(created.secret.starts_with(&key.secret_prefix));
    assert_eq!(key.scopes, ["users.read", "presence.read"]);

    let me = app
        .auth_as(&created.secret)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert!(me.user.is_none());
    assert_eq!(me.api_key.expect("key").api_key_id, key.api_key_id);
    assert_eq!(me.permissions, ["users.read", "presence.read"]);

    let listed = app
        .users_as(&created.secret)
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect("users.read lists the org")
        .into_inner();
    assert_eq!(listed.users.len(), 2);
    let status = app
        .users_as(&created.secret)
        .create_user(create_request("x@example.com", "X", &["agent"]))
        .await
        .expect_err("no users.manage");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = app
        .auth_as(&created.secret)
        .logout(pb::LogoutRequest {})
        .await
        .expect_err("a key has no session");
    assert_eq!(status.code(), Code::PermissionDenied);

    let revoked = app
        .auth_as(&app.admin_token)
        .revoke_api_key(pb::RevokeApiKeyRequest {
            api_key_id: key.api_key_id.clone(),
        })
        .await
        .expect("revoked")
        .into_inner()
        .api_key
        .expect("key");
    assert!(revoked.revoked_at.is_some());
    let status = app
        .users_as(&created.secret)
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect_err("revoked at once");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn changes_made_with_a_key_are_audited_as_the_key() {
    let app = spawn_app().await;
    let created = create_key(&app, "provisioning", &["users.manage"]).await;
    let key_id = created.api_key.expect("key").api_key_id;
    let user = app
        .users_as(&created.secret)
        .create_user(create_request(
            "svc@example.com",
            "Made By Service",
            &["agent"],
        ))
        .await
        .expect("users.manage creates")
        .into_inner()
        .user
        .expect("user");
    let actors = app
        .sql_strings(&format!(
            "SELECT actor_kind || ':' || actor_id FROM audit_events WHERE target_user_id = '{}'",
            user.user_id
        ))
        .await;
    assert_eq!(actors, [format!("api_key:{key_id}")]);
    let created_events = app
        .sql_strings("SELECT action FROM audit_events WHERE action LIKE 'api_key.%'")
        .await;
    assert_eq!(created_events, ["api_key.create"]);
}

#[tokio::test]
async fn listing_shows_no_secret_and_hides_revoked_keys_unless_asked() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            create_key(&app, &format!("key {i}"), &["users.read"])
                .await
                .api_key
                .expect("key")
                .api_key_id,
        );
    }
    let mut auth = app.auth_as(&app.admin_token);
    auth.revoke_api_key(pb::RevokeApiKeyRequest {
        api_key_id: ids[1].clone(),
    })
    .await
    .expect("revoked");
    let live = auth
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .expect("list")
        .into_inner();
    let names: Vec<_> = live.api_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["key 0", "key 2"]);
    let first = auth
        .list_api_keys(pb::ListApiKeysRequest {
            page_size: 2,
            show_revoked: true,
            ..Default::default()
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.api_keys.len(), 2);
    let second = auth
        .list_api_keys(pb::ListApiKeysRequest {
            page_size: 2,
            show_revoked: true,
            page_token: first.next_page_token,
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.api_keys.len(), 1);
    assert!(second.next_page_token.is_empty());
    let status = auth
        .list_api_keys(pb::ListApiKeysRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("garbage");
    assert_eq!(bad_fields(&status), ["page_token"]);
}

#[tokio::test]
async fn bad_key_requests_are_refused() {
    let app = spawn_app().await;
    let mut auth = app.auth_as(&app.admin_token);
    for (req, field, why) in [
        (
            key_request("k", &["users.fly"]),
            "api_key.scopes",
            "UNKNOWN_SCOPE",
        ),
        (key_request("k", &[]), "api_key.scopes", "UNKNOWN_SCOPE"),
        (
            key_request("", &["users.read"]),
            "api_key.name",
            "INVALID_NAME",
        ),
        (
            pb::CreateApiKeyRequest {
                api_key: None,
                request_id: String::new(),
            },
            "api_key.name",
            "INVALID_ARGUMENT",
        ),
    ] {
        let status = auth.create_api_key(req).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(bad_fields(&status)[0], field);
        if why != "INVALID_ARGUMENT" {
            assert_eq!(reason(&status), why);
        }
    }
    create_key(&app, "taken", &["users.read"]).await;
    let status = auth
        .create_api_key(key_request("taken", &["users.read"]))
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "API_KEY_NAME_TAKEN");
    let status = auth
        .revoke_api_key(pb::RevokeApiKeyRequest {
            api_key_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "API_KEY_NOT_FOUND");
    let status = auth
        .revoke_api_key(pb::RevokeApiKeyRequest {
            api_key_id: "nope".into(),
        })
        .await
        .expect_err("garbage");
    assert_eq!(bad_fields(&status), ["api_key_id"]);

    for token in ["rk_garbage", "rk_", "rk_\u{7f}"] {
        let Ok(bearer) = roster::api::Bearer::new(token) else {
            continue;
        };
        let mut users = roster::api::pb::user_service_client::UserServiceClient::with_interceptor(
            app.channel.clone(),
            bearer,
        );
        let status = users
            .list_users(pb::ListUsersRequest::default())
            .await
            .expect_err("garbage key");
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
    }
}

#[tokio::test]
async fn only_admins_manage_keys_and_replays_create_once() {
    let app = spawn_app().await;
    app.create_user("mgr@example.com", "Manager", &["manager"])
        .await;
    let token = app
        .login("mgr@example.com", USER_PASSWORD)
        .await
        .session_token;
    let status = app
        .auth_as(&token)
        .create_api_key(key_request("nope", &["users.read"]))
        .await
        .expect_err("managers cannot");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = app
        .auth_as(&token)
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .expect_err("managers cannot");
    assert_eq!(status.code(), Code::PermissionDenied);

    let mut req = key_request("once", &["users.read"]);
    req.request_id = "key-req-1".into();
    let mut auth = app.auth_as(&app.admin_token);
    let first = auth
        .create_api_key(req.clone())
        .await
        .expect("first")
        .into_inner();
    let again = auth.create_api_key(req).await.expect("replay").into_inner();
    assert_eq!(
        first.api_key.expect("key").api_key_id,
        again.api_key.expect("key").api_key_id
    );
    assert!(!first.secret.is_empty());
    assert!(again.secret.is_empty(), "the secret is shown once");
}
