//! Sign-in, sessions and the authentication layer.

use roster::api::pb;
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ORG, USER_PASSWORD, bad_fields, create_request, reason, spawn_app,
};

#[tokio::test]
async fn login_starts_a_session_that_whoami_describes() {
    let app = spawn_app().await;
    let login = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(login.session_token.starts_with("rs_"));
    assert!(login.expires_at.is_some());
    assert!(!login.password_change_required);
    let user = login.user.expect("user");
    assert_eq!(user.email, ADMIN_EMAIL);
    assert!(user.last_login_at.is_some());

    let me = app
        .auth_as(&login.session_token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!(me.org_slug, ORG);
    assert_eq!(me.user.expect("user").user_id, user.user_id);
    assert!(me.permissions.contains(&"users.manage".to_string()));
    assert!(me.session_expires_at.is_some());
}

#[tokio::test]
async fn login_is_case_insensitive_on_email_and_accepts_the_login_id() {
    let app = spawn_app().await;
    let mut req = create_request("Ana@Example.com", "Ana", &["agent"]);
    req.user.as_mut().expect("user").login_id = "ana.s".into();
    app.admin_users().create_user(req).await.expect("created");
    app.login("  ANA@example.COM ", USER_PASSWORD).await;
    let by_id = app.login("ana.s", USER_PASSWORD).await;
    let me = app
        .auth_as(&by_id.session_token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert!(me.permissions.contains(&"chats.handle".to_string()));
    assert!(!me.permissions.contains(&"users.manage".to_string()));
}

#[tokio::test]
async fn every_failed_login_looks_the_same() {
    let app = spawn_app().await;
    let attempts = [
        (ORG, ADMIN_EMAIL, "wrong password!"),
        (ORG, "nobody@example.com", ADMIN_PASSWORD),
        ("no-such-org", ADMIN_EMAIL, ADMIN_PASSWORD),
        ("Not A Slug!", ADMIN_EMAIL, ADMIN_PASSWORD),
        (ORG, "", ""),
        (ORG, &"x".repeat(10_000), "a password of sane length"),
    ];
    let mut messages = Vec::new();
    for (org, login, password) in attempts {
        let status = app
            .auth()
            .login(pb::LoginRequest {
                org: org.into(),
                login: login.into(),
                password: password.into(),
            })
            .await
            .expect_err("login must fail");
        assert_eq!(status.code(), Code::Unauthenticated, "{org} {login}");
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
        messages.push(status.message().to_owned());
    }
    messages.dedup();
    assert_eq!(messages, ["invalid credentials"]);
}

#[tokio::test]
async fn huge_passwords_are_refused_before_hashing() {
    let app = spawn_app().await;
    // No account can have a password over 256 characters, so saying so
    // reveals nothing: the same answer for a real user, a ghost or no org.
    for (org, login) in [
        (ORG, ADMIN_EMAIL),
        (ORG, "ghost@example.com"),
        ("no-such-org", ADMIN_EMAIL),
    ] {
        let status = app
            .auth()
            .login(pb::LoginRequest {
                org: org.into(),
                login: login.into(),
                password: "y".repeat(10_000),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(reason(&status), "WEAK_PASSWORD");
        assert_eq!(bad_fields(&status), ["password"]);
    }
    // 256 characters are still checked like any password.
    let status = app
        .try_login(ADMIN_EMAIL, &"y".repeat(256))
        .await
        .expect_err("wrong password");
    assert_eq!(status.code(), Code::Unauthenticated);
    // Refused before counting as a failed sign-in, too.
    let failures = app
        .sql_strings("SELECT action FROM audit_events WHERE action = 'auth.login_failed'")
        .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
}

#[tokio::test]
async fn failed_logins_are_audited_with_their_reason() {
    let app = spawn_app().await;
    app.try_login(ADMIN_EMAIL, "wrong password!")
        .await
        .expect_err("fails");
    app.try_login("ghost@example.com", "whatever it is")
        .await
        .expect_err("fails");
    let db = Database::connect(&app.database_url).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT details FROM audit_events WHERE action = 'auth.login_failed' ORDER BY id",
        ))
        .await
        .expect("query");
    let details: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "details").expect("details"))
        .collect();
    assert_eq!(details.len(), 2);
    assert!(details[0].contains("wrong password"), "{}", details[0]);
    assert!(details[1].contains("unknown login"), "{}", details[1]);
}

#[tokio::test]
async fn consecutive_failures_lock_the_account() {
    let app = spawn_app().await;
    let user = app
        .create_user("lock@example.com", "Lock Me", &["agent"])
        .await;
    for _ in 0..5 {
        app.try_login("lock@example.com", "not the password")
            .await
            .expect_err("fails");
    }
    let status = app
        .try_login("lock@example.com", USER_PASSWORD)
        .await
        .expect_err("locked account cannot sign in");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid credentials");
    let fetched = app
        .admin_users()
        .get_user(pb::GetUserRequest {
            user_id: user.user_id,
        })
        .await
        .expect("get")
        .into_inner()
        .user
        .expect("user");
    assert!(fetched.locked);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = spawn_app().await;
    app.create_user("reset@example.com", "Reset", &["agent"])
        .await;
    for _ in 0..4 {
        app.try_login("reset@example.com", "not the password")
            .await
            .expect_err("fails");
    }
    app.login("reset@example.com", USER_PASSWORD).await;
    for _ in 0..4 {
        app.try_login("reset@example.com", "not the password")
            .await
            .expect_err("fails");
    }
    app.login("reset@example.com", USER_PASSWORD).await;
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_refused() {
    let app = spawn_app().await;
    let unauthenticated = app
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("no token");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert_eq!(reason(&unauthenticated), "MISSING_CREDENTIALS");

    for token in ["garbage", "rs_AAAA", &"x".repeat(5000)] {
        let status = app
            .auth_as(token)
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .expect_err("bad token");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
        assert_eq!(status.message(), "invalid credentials");
    }

    let mut req = tonic::Request::new(pb::WhoAmIRequest {});
    req.metadata_mut().insert(
        "authorization",
        "Basic YWRtaW46YWRtaW4=".parse().expect("ascii"),
    );
    let status = app.auth().who_am_i(req).await.expect_err("basic auth");
    assert_eq!(reason(&status), "MISSING_CREDENTIALS");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.session_token;
    let mut auth = app.auth_as(&token);
    auth.logout(pb::LogoutRequest {}).await.expect("logout");
    let status = auth
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("ended");
    assert_eq!(status.code(), Code::Unauthenticated);
    // Other sessions of the same user live on.
    app.auth_as(&app.admin_token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("other session");
    let me = app
        .admin_users()
        .list_users(pb::ListUsersRequest {
            query: ADMIN_EMAIL.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(me.users[0].last_logout_at.is_some());
}

#[tokio::test]
async fn session_tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let db = Database::connect(&app.database_url).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM sessions",
        ))
        .await
        .expect("query");
    assert!(!rows.is_empty());
    for row in rows {
        let stored: String = row.try_get("", "token_hash").expect("hash");
        assert_ne!(stored, app.admin_token);
        assert!(!stored.contains(app.admin_token.trim_start_matches("rs_")));
    }
}

#[tokio::test]
async fn a_pending_password_change_blocks_everything_but_whoami_and_logout() {
    let app = spawn_app().await;
    let mut req = create_request("new@example.com", "New Hire", &["admin"]);
    req.require_password_change = true;
    app.admin_users().create_user(req).await.expect("created");
    let login = app.login("new@example.com", USER_PASSWORD).await;
    assert!(login.password_change_required);
    let status = app
        .users_as(&login.session_token)
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect_err("blocked");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "PASSWORD_CHANGE_REQUIRED");
    let me = app
        .auth_as(&login.session_token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami is allowed")
        .into_inner();
    assert!(me.password_change_required);
    app.auth_as(&login.session_token)
        .logout(pb::LogoutRequest {})
        .await
        .expect("logout is allowed");
    assert!(bad_fields(&status).is_empty());
}

#[tokio::test]
async fn an_expired_session_is_refused_and_a_new_one_takes_its_place() {
    let app = spawn_app().await;
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.session_token;
    app.sql("UPDATE sessions SET expires_at = created_at").await;
    let status = app
        .auth_as(&token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "SESSION_EXPIRED");
    let garbage = app
        .auth_as("not-a-session-token")
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("garbage");
    assert_eq!(
        (garbage.code(), reason(&garbage).as_str()),
        (Code::Unauthenticated, "INVALID_CREDENTIALS")
    );
    let fresh = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.session_token;
    app.auth_as(&fresh)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("a new session works");
    // Signing in cleared the user's expired sessions.
    let left = app.sql_strings("SELECT id FROM sessions").await;
    assert_eq!(left.len(), 1);
}
