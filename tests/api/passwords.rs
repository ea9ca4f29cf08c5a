//! Passwords after creation: ChangePassword, ResetPassword and
//! ForcePasswordChange; the policy and the length limit on every path; and
//! lockout with its lock and unlock audit events.

use std::time::Duration;

use roster::api::pb;
use tonic::{Code, Status};

use crate::{
    helpers::{TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app},
    lifecycle::foreign_user,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

fn assert_invalid(status: &Status, field: &str, expected: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(status), expected, "{status:?}");
    assert_eq!(bad_fields(status), [field], "{status:?}");
}

fn assert_precondition(status: &Status, expected: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), expected, "{status:?}");
}

async fn change(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> Result<pb::ChangePasswordResponse, Status> {
    app.auth_as(token)
        .change_password(pb::ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn reset(
    app: &TestApp,
    token: &str,
    user_id: &str,
    password: &str,
    skip_password_change: bool,
) -> Result<pb::User, Status> {
    app.users_as(token)
        .reset_password(pb::ResetPasswordRequest {
            user_id: user_id.into(),
            new_password: password.into(),
            skip_password_change,
        })
        .await
        .map(|r| r.into_inner().user.expect("user"))
}

async fn force(app: &TestApp, token: &str, user_id: &str) -> Result<pb::User, Status> {
    app.users_as(token)
        .force_password_change(pb::ForcePasswordChangeRequest {
            user_id: user_id.into(),
        })
        .await
        .map(|r| r.into_inner().user.expect("user"))
}

async fn who_am_i(app: &TestApp, token: &str) -> Result<pb::WhoAmIResponse, Status> {
    app.auth_as(token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// `action actor_kind details` of every audit entry about the user, oldest first.
async fn audit_of(app: &TestApp, user_id: &str) -> Vec<String> {
    app.sql_strings(&format!(
        "SELECT action || ' ' || actor_kind || ' ' || details FROM audit_events \
         WHERE target_user_id = '{user_id}' ORDER BY id"
    ))
    .await
}

fn entries<'a>(audit: &'a [String], action: &str) -> Vec<&'a String> {
    let prefix = format!("{action} ");
    audit.iter().filter(|e| e.starts_with(&prefix)).collect()
}

fn assert_ended(result: Result<pb::WhoAmIResponse, Status>) {
    let status = result.expect_err("the session has ended");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn change_password_ends_every_session_and_returns_a_new_one() {
    let app = spawn_app().await;
    let user = app
        .create_user("cp@example.com", "Cee Pee", &["agent"])
        .await;
    let first = app
        .login("cp@example.com", USER_PASSWORD)
        .await
        .session_token;
    let second = app
        .login("cp@example.com", USER_PASSWORD)
        .await
        .session_token;

    let changed = change(&app, &first, USER_PASSWORD, NEW_PASSWORD)
        .await
        .expect("changed");
    assert!(changed.session_token.starts_with("rs_"));
    assert!(changed.expires_at.is_some());
    assert_ended(who_am_i(&app, &first).await);
    assert_ended(who_am_i(&app, &second).await);
    let me = who_am_i(&app, &changed.session_token)
        .await
        .expect("the new session works");
    assert!(!me.password_change_required);

    let old = app
        .try_login("cp@example.com", USER_PASSWORD)
        .await
        .expect_err("the old password is gone");
    assert_eq!(old.code(), Code::Unauthenticated);
    app.login("cp@example.com", NEW_PASSWORD).await;

    let audit = audit_of(&app, &user.user_id).await;
    let changes = entries(&audit, "auth.password_change");
    assert_eq!(changes.len(), 1, "{audit:?}");
    assert!(
        changes[0].starts_with("auth.password_change user "),
        "{audit:?}"
    );
    assert!(changes[0].contains(r#""was_required":false"#), "{audit:?}");
}

#[tokio::test]
async fn change_password_refusals_name_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let user = app
        .create_user("cr@example.com", "Cee Are", &["agent"])
        .await;
    let token = app
        .login("cr@example.com", USER_PASSWORD)
        .await
        .session_token;

    let status = change(&app, &token, "not my password", NEW_PASSWORD)
        .await
        .expect_err("wrong current password");
    assert_invalid(&status, "current_password", "WRONG_PASSWORD");
    for weak in [
        "short",
        "Password123",
        "qwertyuiop",
        USER_PASSWORD,
        &"x".repeat(257),
    ] {
        let status = change(&app, &token, USER_PASSWORD, weak)
            .await
            .expect_err("weak new password");
        assert_invalid(&status, "new_password", "WEAK_PASSWORD");
    }
    let status = change(&app, &token, &"y".repeat(10_000), NEW_PASSWORD)
        .await
        .expect_err("a huge current password is refused before hashing");
    assert_invalid(&status, "current_password", "WEAK_PASSWORD");

    // The policy is the org's: a longer minimum applies at once.
    app.update_org(
        pb::OrgSettings {
            password_min_length: 30,
            ..Default::default()
        },
        &["password_min_length"],
    )
    .await;
    let status = change(&app, &token, USER_PASSWORD, NEW_PASSWORD)
        .await
        .expect_err("shorter than the org's minimum");
    assert_invalid(&status, "new_password", "WEAK_PASSWORD");
    assert!(status.message().contains("at least 30"), "{status:?}");

    // Nothing changed: the session lives, the old password still works.
    who_am_i(&app, &token).await.expect("session still valid");
    app.login("cr@example.com", USER_PASSWORD).await;
    let audit = audit_of(&app, &user.user_id).await;
    assert!(
        entries(&audit, "auth.password_change").is_empty(),
        "{audit:?}"
    );
}

#[tokio::test]
async fn wrong_current_passwords_count_towards_the_lockout() {
    let app = spawn_app().await;
    let user = app
        .create_user("guess@example.com", "Guess", &["agent"])
        .await;
    let token = app
        .login("guess@example.com", USER_PASSWORD)
        .await
        .session_token;
    for _ in 0..5 {
        let status = change(&app, &token, "a guess at it", NEW_PASSWORD)
            .await
            .expect_err("wrong");
        assert_eq!(reason(&status), "WRONG_PASSWORD");
    }
    assert!(app.get_user(&user.user_id).await.expect("user").locked);
    let status = change(&app, &token, USER_PASSWORD, NEW_PASSWORD)
        .await
        .expect_err("locked");
    assert_precondition(&status, "ACCOUNT_LOCKED");
    app.try_login("guess@example.com", USER_PASSWORD)
        .await
        .expect_err("locked accounts cannot sign in");
    let audit = audit_of(&app, &user.user_id).await;
    assert_eq!(entries(&audit, "user.lock").len(), 1, "{audit:?}");
}

#[tokio::test]
async fn a_required_change_unblocks_the_new_session() {
    let app = spawn_app().await;
    let mut req = create_request("fresh@example.com", "Fresh", &["admin"]);
    req.require_password_change = true;
    let user = app
        .admin_users()
        .create_user(req)
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");
    let login = app.login("fresh@example.com", USER_PASSWORD).await;
    assert!(login.password_change_required);
    let blocked = app
        .users_as(&login.session_token)
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect_err("blocked until the change");
    assert_precondition(&blocked, "PASSWORD_CHANGE_REQUIRED");

    let changed = change(&app, &login.session_token, USER_PASSWORD, NEW_PASSWORD)
        .await
        .expect("ChangePassword is allowed");
    app.users_as(&changed.session_token)
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect("no longer blocked");
    assert!(
        !app.get_user(&user.user_id)
            .await
            .expect("user")
            .password_change_required
    );
    let audit = audit_of(&app, &user.user_id).await;
    let changes = entries(&audit, "auth.password_change");
    assert!(changes[0].contains(r#""was_required":true"#), "{audit:?}");
}

#[tokio::test]
async fn reset_password_ends_sessions_and_requires_a_change_by_default() {
    let app = spawn_app().await;
    let before = app
        .create_user("rp@example.com", "Are Pee", &["admin"])
        .await;
    let token = app
        .login("rp@example.com", USER_PASSWORD)
        .await
        .session_token;

    let user = reset(&app, &app.admin_token, &before.user_id, NEW_PASSWORD, false)
        .await
        .expect("reset");
    assert!(user.password_change_required);
    assert_ne!(user.etag, before.etag, "the change shows in the etag");
    assert_ended(who_am_i(&app, &token).await);
    app.try_login("rp@example.com", USER_PASSWORD)
        .await
        .expect_err("the old password is gone");
    let login = app.login("rp@example.com", NEW_PASSWORD).await;
    assert!(login.password_change_required);
    let blocked = app
        .users_as(&login.session_token)
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect_err("must change first");
    assert_precondition(&blocked, "PASSWORD_CHANGE_REQUIRED");

    let user = reset(&app, &app.admin_token, &before.user_id, USER_PASSWORD, true)
        .await
        .expect("reset, no change required");
    assert!(!user.password_change_required);
    assert_ended(who_am_i(&app, &login.session_token).await);
    let login = app.login("rp@example.com", USER_PASSWORD).await;
    assert!(!login.password_change_required);

    let audit = audit_of(&app, &before.user_id).await;
    let resets = entries(&audit, "user.password_reset");
    assert_eq!(resets.len(), 2, "{audit:?}");
    assert!(
        resets[0].starts_with("user.password_reset user "),
        "{audit:?}"
    );
    assert!(
        resets[0].contains(r#""password_change_required":true"#),
        "{audit:?}"
    );
    assert!(
        resets[1].contains(r#""password_change_required":false"#),
        "{audit:?}"
    );
    // No password, not even its hash, goes to the audit log.
    assert!(
        !audit
            .iter()
            .any(|e| e.contains(NEW_PASSWORD) || e.contains("argon2"))
    );
}

#[tokio::test]
async fn force_password_change_confines_open_sessions_at_once() {
    let app = spawn_app().await;
    let user = app
        .create_user("fp@example.com", "Eff Pee", &["agent"])
        .await;
    let token = app
        .login("fp@example.com", USER_PASSWORD)
        .await
        .session_token;
    app.users_as(&token)
        .get_user(pb::GetUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("allowed before");

    let forced = force(&app, &app.admin_token, &user.user_id)
        .await
        .expect("forced");
    assert!(forced.password_change_required);
    let blocked = app
        .users_as(&token)
        .get_user(pb::GetUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect_err("blocked on the very next request");
    assert_precondition(&blocked, "PASSWORD_CHANGE_REQUIRED");
    assert!(
        who_am_i(&app, &token)
            .await
            .expect("whoami still works")
            .password_change_required
    );
    let changed = change(&app, &token, USER_PASSWORD, NEW_PASSWORD)
        .await
        .expect("changed from the same session");
    app.users_as(&changed.session_token)
        .get_user(pb::GetUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("allowed again");

    let audit = audit_of(&app, &user.user_id).await;
    let forced = entries(&audit, "user.force_password_change");
    assert_eq!(forced.len(), 1, "{audit:?}");
    assert!(
        forced[0].contains(r#""after":{"password_change_required":true}"#),
        "{audit:?}"
    );
}

#[tokio::test]
async fn reset_and_force_follow_the_rules_of_the_other_lifecycle_calls() {
    let app = spawn_app().await;
    let target = app.create_user("t@example.com", "Target", &["agent"]).await;
    app.create_user("agent@example.com", "Agent", &["agent"])
        .await;
    let agent = app
        .login("agent@example.com", USER_PASSWORD)
        .await
        .session_token;
    let admin = app.admin_token.clone();

    // Policy and length, on `new_password`.
    for weak in ["short", "password1", &"z".repeat(10_000)] {
        let status = reset(&app, &admin, &target.user_id, weak, false)
            .await
            .expect_err("weak");
        assert_invalid(&status, "new_password", "WEAK_PASSWORD");
    }
    // Admins only.
    for status in [
        reset(&app, &agent, &target.user_id, NEW_PASSWORD, false)
            .await
            .expect_err("agent"),
        force(&app, &agent, &target.user_id)
            .await
            .expect_err("agent"),
    ] {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    // Another org's user is not found, like a user that does not exist.
    let far = foreign_user(&app).await;
    let missing = uuid::Uuid::now_v7().to_string();
    for user_id in [&far, &missing] {
        for status in [
            reset(&app, &admin, user_id, NEW_PASSWORD, false)
                .await
                .expect_err("not found"),
            force(&app, &admin, user_id).await.expect_err("not found"),
        ] {
            assert_eq!(status.code(), Code::NotFound, "{status:?}");
            assert_eq!(reason(&status), "USER_NOT_FOUND");
        }
    }
    // A malformed id names the field.
    for status in [
        reset(&app, &admin, "nope", NEW_PASSWORD, false)
            .await
            .expect_err("bad id"),
        force(&app, &admin, "nope").await.expect_err("bad id"),
    ] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_fields(&status), ["user_id"]);
    }
    // An invited user has no password yet.
    let invited = app
        .admin_users()
        .invite_user(pb::InviteUserRequest {
            user: Some(pb::User {
                email: "inv@example.com".into(),
                display_name: "Invited".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("invited")
        .into_inner()
        .user
        .expect("user");
    for status in [
        reset(&app, &admin, &invited.user_id, NEW_PASSWORD, false)
            .await
            .expect_err("invited"),
        force(&app, &admin, &invited.user_id)
            .await
            .expect_err("invited"),
    ] {
        assert_precondition(&status, "USER_NOT_ACTIVE");
    }
    // Nothing happened to the target.
    app.login("t@example.com", USER_PASSWORD).await;
    let audit = audit_of(&app, &target.user_id).await;
    assert!(
        entries(&audit, "user.password_reset").is_empty(),
        "{audit:?}"
    );
    assert!(
        app.sql_strings(&format!(
            "SELECT action FROM audit_events WHERE target_user_id = '{far}'"
        ))
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn lock_and_admin_unlock_are_audited() {
    let app = spawn_app().await;
    let user = app.create_user("lk@example.com", "Lock", &["agent"]).await;
    for _ in 0..5 {
        app.try_login("lk@example.com", "not the password")
            .await
            .expect_err("fails");
    }
    // More failures while locked do not lock again.
    app.try_login("lk@example.com", "not the password")
        .await
        .expect_err("fails");
    app.admin_users()
        .unlock_user(pb::UnlockUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("unlocked");
    let audit = audit_of(&app, &user.user_id).await;
    let locks = entries(&audit, "user.lock");
    assert_eq!(locks.len(), 1, "{audit:?}");
    assert!(locks[0].starts_with("user.lock system "), "{audit:?}");
    assert!(locks[0].contains(r#""failed_logins":5"#), "{audit:?}");
    let unlocks = entries(&audit, "user.unlock");
    assert_eq!(unlocks.len(), 1, "{audit:?}");
    assert!(unlocks[0].starts_with("user.unlock user "), "{audit:?}");
    assert!(unlocks[0].contains(r#""by":"admin""#), "{audit:?}");
    app.login("lk@example.com", USER_PASSWORD).await;
}

#[tokio::test]
async fn a_lock_ends_by_itself_after_the_orgs_lockout_duration() {
    let app = spawn_app().await;
    app.update_org(
        pb::OrgSettings {
            lockout_duration: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        },
        &["lockout_duration"],
    )
    .await;
    let user = app
        .create_user("exp@example.com", "Expiry", &["agent"])
        .await;
    for _ in 0..5 {
        app.try_login("exp@example.com", "not the password")
            .await
            .expect_err("fails");
    }
    assert!(app.get_user(&user.user_id).await.expect("user").locked);
    app.try_login("exp@example.com", USER_PASSWORD)
        .await
        .expect_err("locked for now");

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(!app.get_user(&user.user_id).await.expect("user").locked);
    // The failure count starts afresh: one more failure does not relock.
    app.try_login("exp@example.com", "not the password")
        .await
        .expect_err("wrong password");
    assert!(!app.get_user(&user.user_id).await.expect("user").locked);
    app.login("exp@example.com", USER_PASSWORD).await;

    let audit = audit_of(&app, &user.user_id).await;
    let unlocks = entries(&audit, "user.unlock");
    assert_eq!(unlocks.len(), 1, "{audit:?}");
    assert!(unlocks[0].starts_with("user.unlock system "), "{audit:?}");
    assert!(unlocks[0].contains(r#""by":"expiry""#), "{audit:?}");
    assert_eq!(entries(&audit, "user.lock").len(), 1, "{audit:?}");
}

#[tokio::test]
async fn a_successful_sign_in_after_expiry_writes_the_unlock() {
    let app = spawn_app().await;
    app.update_org(
        pb::OrgSettings {
            lockout_duration: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        },
        &["lockout_duration"],
    )
    .await;
    let user = app.create_user("ok@example.com", "Okay", &["agent"]).await;
    for _ in 0..5 {
        app.try_login("ok@example.com", "not the password")
            .await
            .expect_err("fails");
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    app.login("ok@example.com", USER_PASSWORD).await;
    let audit = audit_of(&app, &user.user_id).await;
    let unlocks = entries(&audit, "user.unlock");
    assert_eq!(unlocks.len(), 1, "{audit:?}");
    assert!(unlocks[0].contains(r#""by":"expiry""#), "{audit:?}");
    // The unlock comes before the sign-in it allowed.
    let actions: Vec<&str> = audit.iter().filter_map(|e| e.split(' ').next()).collect();
    let unlock = actions.iter().position(|a| *a == "user.unlock");
    let login = actions.iter().rposition(|a| *a == "auth.login");
    assert!(unlock < login, "{actions:?}");
}
