//! UpdateUser, SuspendUser, ReactivateUser, UnlockUser, DeleteUser and
//! avatars: the rules, and that a refused call changes nothing.

use prost_types::FieldMask;
use roster::api::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn update(
    app: &TestApp,
    token: &str,
    user: pb::User,
    paths: &[&str],
) -> Result<pb::User, tonic::Status> {
    app.users_as(token)
        .update_user(pb::UpdateUserRequest {
            user: Some(user),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner().user.expect("user"))
}

#[tokio::test]
async fn an_admin_edits_the_masked_fields_only() {
    let app = spawn_app().await;
    let (t1, t2) = (
        app.create_team("Tier 1").await,
        app.create_team("Tier 2").await,
    );
    let mut req = create_request("edit@example.com", "Before", &["agent"]);
    req.user.as_mut().expect("user").max_chats = Some(2);
    let user = app
        .admin_users()
        .create_user(req)
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");

    let changed = update(
        &app,
        &app.admin_token,
        pb::User {
            user_id: user.user_id.clone(),
            etag: user.etag.clone(),
            display_name: "After".into(),
            job_title: "ignored: not in the mask".into(),
            roles: vec!["agent".into(), "supervisor".into()],
            team_ids: vec![t1.clone(), t2.clone()],
            max_chats: None,
            mobile_phone: "+1 555 0100".into(),
            ..Default::default()
        },
        &[
            "display_name",
            "roles",
            "team_ids",
            "max_chats",
            "mobile_phone",
        ],
    )
    .await
    .expect("updated");
    assert_eq!(changed.display_name, "After");
    assert_eq!(changed.job_title, "");
    assert_eq!(changed.roles, ["agent", "supervisor"]);
    let mut teams = vec![t1, t2];
    teams.sort();
    assert_eq!(changed.team_ids, teams);
    assert_eq!(changed.max_chats, None);
    assert_eq!(changed.effective_max_chats, 6, "the org default applies");
    assert_eq!(changed.mobile_phone, "+1 555 0100");
    assert_ne!(changed.etag, user.etag);
    assert_eq!(app.get_user(&user.user_id).await.expect("get"), changed);

    // The old etag is stale now.
    let status = update(
        &app,
        &app.admin_token,
        pb::User {
            user_id: user.user_id.clone(),
            etag: user.etag,
            display_name: "Lost update".into(),
            ..Default::default()
        },
        &["display_name"],
    )
    .await
    .expect_err("stale");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(reason(&status), "STALE_ETAG");
    assert_eq!(app.get_user(&user.user_id).await.expect("get"), changed);
}

/// A refused update: the user sent, the mask, and the expected code,
/// reason and offending fields.
type Case<'a> = (pb::User, &'a [&'a str], Code, &'a str, Vec<&'a str>);

#[tokio::test]
async fn bad_updates_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let user = app
        .create_user("still@example.com", "Still", &["agent"])
        .await;
    app.create_user("other@example.com", "Other", &["agent"])
        .await;
    let mut other_req = create_request("third@example.com", "Third", &["agent"]);
    other_req.user.as_mut().expect("user").login_id = "taken-id".into();
    app.admin_users()
        .create_user(other_req)
        .await
        .expect("created");
    let base = || pb::User {
        user_id: user.user_id.clone(),
        ..Default::default()
    };
    let cases: Vec<Case> = vec![
        (
            base(),
            &["email"],
            Code::InvalidArgument,
            "IMMUTABLE_FIELD",
            vec!["update_mask"],
        ),
        (
            base(),
            &["state"],
            Code::InvalidArgument,
            "INVALID_FIELD_MASK",
            vec!["update_mask"],
        ),
        (
            base(),
            &["nonsense"],
            Code::InvalidArgument,
            "INVALID_FIELD_MASK",
            vec!["update_mask"],
        ),
        (
            base(),
            &[],
            Code::InvalidArgument,
            "INVALID_FIELD_MASK",
            vec!["update_mask"],
        ),
        (
            base(),
            &["display_name"],
            Code::InvalidArgument,
            "INVALID_NAME",
            vec!["user.display_name"],
        ),
        (
            pb::User {
                roles: vec![],
                ..base()
            },
            &["roles"],
            Code::InvalidArgument,
            "UNKNOWN_ROLE",
            vec!["user.roles"],
        ),
        (
            pb::User {
                roles: vec!["wizard".into()],
                ..base()
            },
            &["roles"],
            Code::InvalidArgument,
            "UNKNOWN_ROLE",
            vec!["user.roles"],
        ),
        (
            pb::User {
                team_ids: vec![uuid::Uuid::now_v7().to_string()],
                ..base()
            },
            &["team_ids"],
            Code::InvalidArgument,
            "UNKNOWN_TEAM",
            vec!["user.team_ids"],
        ),
        (
            pb::User {
                max_chats: Some(100_000),
                ..base()
            },
            &["max_chats"],
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            vec!["user.max_chats"],
        ),
        (
            pb::User {
                etag: "not-a-number".into(),
                display_name: "X".into(),
                ..base()
            },
            &["display_name"],
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            vec!["user.etag"],
        ),
        (
            pb::User {
                user_id: "garbage".into(),
                display_name: "X".into(),
                ..base()
            },
            &["display_name"],
            Code::InvalidArgument,
            "INVALID_ID",
            vec!["user.user_id"],
        ),
        (
            pb::User {
                user_id: uuid::Uuid::now_v7().to_string(),
                display_name: "X".into(),
                ..base()
            },
            &["display_name"],
            Code::NotFound,
            "USER_NOT_FOUND",
            vec![],
        ),
        (
            pb::User {
                login_id: "taken-id".into(),
                ..base()
            },
            &["login_id"],
            Code::AlreadyExists,
            "LOGIN_ID_TAKEN",
            vec![],
        ),
    ];
    for (user_msg, paths, code, why, fields) in cases {
        let status = update(&app, &app.admin_token, user_msg, paths)
            .await
            .expect_err(why);
        assert_eq!(status.code(), code, "{paths:?} {why}");
        assert_eq!(reason(&status), why, "{paths:?}");
        assert_eq!(bad_fields(&status), fields, "{paths:?}");
    }
    assert_eq!(app.get_user(&user.user_id).await.expect("get"), user);
}

#[tokio::test]
async fn users_edit_their_own_profile_but_nothing_else() {
    let app = spawn_app().await;
    let me = app.create_user("me@example.com", "Me", &["agent"]).await;
    let other = app.create_user("you@example.com", "You", &["agent"]).await;
    let token = app
        .login("me@example.com", USER_PASSWORD)
        .await
        .session_token;
    let renamed = update(
        &app,
        &token,
        pb::User {
            user_id: me.user_id.clone(),
            display_name: "Me Renamed".into(),
            public_name: "M.".into(),
            language: "pt-BR".into(),
            ..Default::default()
        },
        &["display_name", "public_name", "language"],
    )
    .await
    .expect("own profile");
    assert_eq!(renamed.public_name, "M.");
    for (user_id, paths) in [
        (me.user_id.clone(), &["roles"][..]),
        (me.user_id.clone(), &["max_chats"][..]),
        (other.user_id.clone(), &["display_name"][..]),
    ] {
        let status = update(
            &app,
            &token,
            pb::User {
                user_id,
                display_name: "Nope".into(),
                roles: vec!["admin".into()],
                ..Default::default()
            },
            paths,
        )
        .await
        .expect_err("denied");
        assert_eq!(status.code(), Code::PermissionDenied, "{paths:?}");
    }
}

#[tokio::test]
async fn a_role_change_applies_on_the_next_request_without_a_new_login() {
    let app = spawn_app().await;
    let user = app
        .create_user("promoted@example.com", "Promoted", &["agent"])
        .await;
    let token = app
        .login("promoted@example.com", USER_PASSWORD)
        .await
        .session_token;
    let status = app
        .users_as(&token)
        .create_user(create_request("x@example.com", "X", &["agent"]))
        .await
        .expect_err("agents cannot");
    assert_eq!(status.code(), Code::PermissionDenied);
    update(
        &app,
        &app.admin_token,
        pb::User {
            user_id: user.user_id,
            roles: vec!["admin".into()],
            ..Default::default()
        },
        &["roles"],
    )
    .await
    .expect("promoted");
    app.users_as(&token)
        .create_user(create_request("x@example.com", "X", &["agent"]))
        .await
        .expect("same session, new permissions");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted() {
    let app = spawn_app().await;
    let id = app.admin_id().await;
    let status = update(
        &app,
        &app.admin_token,
        pb::User {
            user_id: id.clone(),
            roles: vec!["agent".into()],
            ..Default::default()
        },
        &["roles"],
    )
    .await
    .expect_err("last admin");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "LAST_ADMIN");
    // With a second admin, the first may step down.
    app.create_user("admin2@example.com", "Admin Two", &["admin"])
        .await;
    update(
        &app,
        &app.admin_token,
        pb::User {
            user_id: id,
            roles: vec!["manager".into()],
            ..Default::default()
        },
        &["roles"],
    )
    .await
    .expect("not the last one now");
}

async fn suspend(app: &TestApp, user_id: &str, why: &str) -> Result<pb::User, tonic::Status> {
    app.admin_users()
        .suspend_user(pb::SuspendUserRequest {
            user_id: user_id.into(),
            reason: why.into(),
            force: false,
        })
        .await
        .map(|r| r.into_inner().user.expect("user"))
}

#[tokio::test]
async fn suspension_ends_sessions_at_once_and_keeps_the_reason() {
    let app = spawn_app().await;
    let user = app.create_user("sus@example.com", "Sus", &["agent"]).await;
    let token = app
        .login("sus@example.com", USER_PASSWORD)
        .await
        .session_token;
    let suspended = suspend(&app, &user.user_id, "Left the team")
        .await
        .expect("suspended");
    assert_eq!(suspended.state, pb::UserState::Suspended as i32);
    assert_eq!(suspended.suspend_reason, "Left the team");
    let status = app
        .auth_as(&token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("session ended");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = app
        .try_login("sus@example.com", USER_PASSWORD)
        .await
        .expect_err("cannot sign in");
    assert_eq!(status.message(), "invalid credentials");

    let status = suspend(&app, &user.user_id, "").await.expect_err("twice");
    assert_eq!(reason(&status), "USER_ALREADY_SUSPENDED");

    let back = app
        .admin_users()
        .reactivate_user(pb::ReactivateUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("reactivated")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(back.state, pb::UserState::Active as i32);
    assert_eq!(back.suspend_reason, "");
    app.login("sus@example.com", USER_PASSWORD).await;
    let status = app
        .admin_users()
        .reactivate_user(pb::ReactivateUserRequest {
            user_id: user.user_id,
        })
        .await
        .expect_err("not suspended");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "USER_NOT_SUSPENDED");
}

#[tokio::test]
async fn suspension_input_and_self_rules() {
    let app = spawn_app().await;
    let user = app
        .create_user("rules@example.com", "Rules", &["agent"])
        .await;
    let status = suspend(&app, &user.user_id, &"r".repeat(151))
        .await
        .expect_err("too long");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["reason"]);
    suspend(&app, &user.user_id, &"r".repeat(150))
        .await
        .expect("150 is fine");

    let status = suspend(&app, &app.admin_id().await, "")
        .await
        .expect_err("self");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "SELF_ACTION");
    let status = app
        .admin_users()
        .delete_user(pb::DeleteUserRequest {
            user_id: app.admin_id().await,
        })
        .await
        .expect_err("self");
    assert_eq!(reason(&status), "SELF_ACTION");
    let status = suspend(&app, &uuid::Uuid::now_v7().to_string(), "")
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = suspend(&app, "nope", "").await.expect_err("garbage");
    assert_eq!(bad_fields(&status), ["user_id"]);

    let agent_token = {
        app.create_user("plain@example.com", "Plain", &["agent"])
            .await;
        app.login("plain@example.com", USER_PASSWORD)
            .await
            .session_token
    };
    let status = app
        .users_as(&agent_token)
        .suspend_user(pb::SuspendUserRequest {
            user_id: user.user_id,
            ..Default::default()
        })
        .await
        .expect_err("not an admin");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn suspended_users_free_their_seat_and_reactivation_needs_one() {
    let app = spawn_app().await;
    let user = app
        .create_user("seat1@example.com", "Seat One", &["agent"])
        .await;
    app.update_org(
        pb::OrgSettings {
            seat_limit: 2,
            ..Default::default()
        },
        &["seat_limit"],
    )
    .await;
    suspend(&app, &user.user_id, "").await.expect("suspended");
    app.create_user("seat2@example.com", "Seat Two", &["agent"])
        .await;
    let status = app
        .admin_users()
        .reactivate_user(pb::ReactivateUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect_err("no seat");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "SEAT_LIMIT_REACHED");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some("2"));
    assert_eq!(info.metadata.get("used").map(String::as_str), Some("2"));
    let still = app.get_user(&user.user_id).await.expect("get");
    assert_eq!(still.state, pb::UserState::Suspended as i32);
}

#[tokio::test]
async fn unlock_lets_a_locked_user_sign_in_again() {
    let app = spawn_app().await;
    let user = app
        .create_user("locked@example.com", "Locked", &["agent"])
        .await;
    for _ in 0..5 {
        app.try_login("locked@example.com", "wrong wrong wrong")
            .await
            .expect_err("fails");
    }
    app.try_login("locked@example.com", USER_PASSWORD)
        .await
        .expect_err("locked");
    let unlocked = app
        .admin_users()
        .unlock_user(pb::UnlockUserRequest {
            user_id: user.user_id,
        })
        .await
        .expect("unlocked")
        .into_inner()
        .user
        .expect("user");
    assert!(!unlocked.locked);
    app.login("locked@example.com", USER_PASSWORD).await;
}

#[tokio::test]
async fn deletion_leaves_a_tombstone_and_the_history_and_frees_the_email() {
    let app = spawn_app().await;
    let user = app
        .create_user("bye@example.com", "Bye Bye", &["agent"])
        .await;
    let token = app
        .login("bye@example.com", USER_PASSWORD)
        .await
        .session_token;
    app.admin_users()
        .delete_user(pb::DeleteUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("deleted");
    let status = app.get_user(&user.user_id).await.expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .auth_as(&token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("session ended");
    assert_eq!(status.code(), Code::Unauthenticated);
    let tombstone = app
        .sql_strings(&format!(
            "SELECT display_name || '|' || email FROM user_tombstones WHERE id = '{}'",
            user.user_id
        ))
        .await;
    assert_eq!(tombstone, ["Bye Bye|bye@example.com"]);
    let history = app
        .sql_strings(&format!(
            "SELECT action FROM audit_events WHERE target_user_id = '{}' ORDER BY id",
            user.user_id
        ))
        .await;
    assert_eq!(history.first().map(String::as_str), Some("user.create"));
    assert_eq!(history.last().map(String::as_str), Some("user.delete"));
    app.create_user("bye@example.com", "Back Again", &["agent"])
        .await;
}

#[tokio::test]
async fn every_change_is_audited_with_before_and_after() {
    let app = spawn_app().await;
    let user = app
        .create_user("audited@example.com", "Audited", &["agent"])
        .await;
    update(
        &app,
        &app.admin_token,
        pb::User {
            user_id: user.user_id.clone(),
            job_title: "Lead".into(),
            ..Default::default()
        },
        &["job_title"],
    )
    .await
    .expect("updated");
    suspend(&app, &user.user_id, "Audit me")
        .await
        .expect("suspended");
    let details = app
        .sql_strings(&format!(
            "SELECT action || ' ' || details FROM audit_events WHERE target_user_id = '{}' ORDER BY id",
            user.user_id
        ))
        .await;
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(details[1].starts_with("user.update "), "{}", details[1]);
    assert!(
        details[1].contains(r#""before":{"job_title":""}"#),
        "{}",
        details[1]
    );
    assert!(
        details[1].contains(r#""after":{"job_title":"Lead"}"#),
        "{}",
        details[1]
    );
    assert!(
        details[2].contains(r#""suspend_reason":"Audit me""#),
        "{}",
        details[2]
    );
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

#[tokio::test]
async fn avatars_are_checked_by_content_and_size() {
    let app = spawn_app().await;
    let user = app
        .create_user("face@example.com", "Face", &["agent"])
        .await;
    let status = app
        .admin_users()
        .get_avatar(pb::GetAvatarRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect_err("none yet");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "AVATAR_NOT_FOUND");

    let token = app
        .login("face@example.com", USER_PASSWORD)
        .await
        .session_token;
    let set = app
        .users_as(&token)
        .set_avatar(pb::SetAvatarRequest {
            user_id: user.user_id.clone(),
            image: PNG.to_vec(),
        })
        .await
        .expect("own avatar")
        .into_inner()
        .user
        .expect("user");
    assert!(set.has_avatar);
    let got = app
        .admin_users()
        .get_avatar(pb::GetAvatarRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("avatar")
        .into_inner();
    assert_eq!(got.image, PNG);
    assert_eq!(got.content_type, "image/png");

    let mut too_big = b"GIF89a".to_vec();
    too_big.resize(1_500 * 1024 + 1, 0);
    for (image, why) in [
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            "UNSUPPORTED_IMAGE",
        ),
        (Vec::new(), "UNSUPPORTED_IMAGE"),
        (too_big, "IMAGE_TOO_LARGE"),
    ] {
        let status = app
            .admin_users()
            .set_avatar(pb::SetAvatarRequest {
                user_id: user.user_id.clone(),
                image,
            })
            .await
            .expect_err(why);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status), why);
        assert_eq!(bad_fields(&status), ["image"]);
    }
    let other = app
        .create_user("other@example.com", "Other", &["agent"])
        .await;
    let status = app
        .users_as(&token)
        .set_avatar(pb::SetAvatarRequest {
            user_id: other.user_id,
            image: PNG.to_vec(),
        })
        .await
        .expect_err("not mine");
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// A user of another org.
pub(crate) async fn foreign_user(app: &TestApp) -> String {
    app.insert_org_with_user("elsewhere", "far@elsewhere.com", "Far")
        .await
}

#[tokio::test]
async fn another_orgs_users_are_not_found() {
    let app = spawn_app().await;
    let far = foreign_user(&app).await;
    let mut users = app.admin_users();
    let not_found = |status: tonic::Status| {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(reason(&status), "USER_NOT_FOUND");
    };
    not_found(app.get_user(&far).await.expect_err("get"));
    not_found(suspend(&app, &far, "").await.expect_err("suspend"));
    not_found(
        users
            .delete_user(pb::DeleteUserRequest {
                user_id: far.clone(),
            })
            .await
            .expect_err("delete"),
    );
    not_found(
        update(
            &app,
            &app.admin_token,
            pb::User {
                user_id: far.clone(),
                display_name: "Mine now".into(),
                ..Default::default()
            },
            &["display_name"],
        )
        .await
        .expect_err("update"),
    );
    let listed = users
        .list_users(pb::ListUsersRequest {
            query: "far".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.users.is_empty());
    let state = app
        .sql_strings(&format!(
            "SELECT display_name || state FROM users WHERE id = '{far}'"
        ))
        .await;
    assert_eq!(state, ["Faractive"]);
}

#[tokio::test]
async fn deleted_users_leave_tombstones_that_users_readers_can_list() {
    let app = spawn_app().await;
    let admin_id = app.admin_id().await;
    let mut deleted = Vec::new();
    for name in ["Ann", "Bea", "Cy"] {
        let email = format!("{}@example.com", name.to_lowercase());
        let user = app.create_user(&email, name, &["agent"]).await;
        app.admin_users()
            .delete_user(pb::DeleteUserRequest {
                user_id: user.user_id.clone(),
            })
            .await
            .expect("deleted");
        deleted.push(user);
    }
    // The email is free again; the tombstone keeps the old user.
    app.create_user("ann@example.com", "Another Ann", &["agent"])
        .await;
    let list = |request: pb::ListDeletedUsersRequest| {
        let mut users = app.admin_users();
        async move {
            users
                .list_deleted_users(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let all = list(pb::ListDeletedUsersRequest::default())
        .await
        .expect("listed");
    assert!(all.next_page_token.is_empty());
    let seen: Vec<[&str; 3]> = all
        .deleted_users
        .iter()
        .map(|t| [&t.user_id, &t.email, &t.display_name].map(String::as_str))
        .collect();
    let expected: Vec<[&str; 3]> = deleted
        .iter()
        .rev()
        .map(|u| [&u.user_id, &u.email, &u.display_name].map(String::as_str))
        .collect();
    assert_eq!(seen, expected, "newest deletion first");
    assert!(
        all.deleted_users
            .iter()
            .all(|t| t.deleted_by == admin_id && t.deleted_at.is_some())
    );
    let status = app
        .get_user(&deleted[0].user_id)
        .await
        .expect_err("gone from GetUser");
    assert_eq!(status.code(), Code::NotFound);

    // By id, and page by page.
    let only = list(pb::ListDeletedUsersRequest {
        user_ids: vec![deleted[1].user_id.clone(), uuid::Uuid::now_v7().to_string()],
        ..Default::default()
    })
    .await
    .expect("listed");
    assert_eq!(only.deleted_users.len(), 1);
    assert_eq!(only.deleted_users[0].user_id, deleted[1].user_id);
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = list(pb::ListDeletedUsersRequest {
            page_size: 1,
            page_token: page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("a page");
        paged.extend(page.deleted_users);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(paged, all.deleted_users);

    // Bad input, each named.
    let first_page = list(pb::ListDeletedUsersRequest {
        page_size: 1,
        ..Default::default()
    })
    .await
    .expect("a page");
    for (request, field, why) in [
        (
            pb::ListDeletedUsersRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
            "INVALID_ARGUMENT",
        ),
        (
            pb::ListDeletedUsersRequest {
                user_ids: vec!["nope".into()],
                ..Default::default()
            },
            "user_ids",
            "INVALID_ID",
        ),
        (
            pb::ListDeletedUsersRequest {
                user_ids: (0..1001)
                    .map(|_| uuid::Uuid::now_v7().to_string())
                    .collect(),
                ..Default::default()
            },
            "user_ids",
            "INVALID_ARGUMENT",
        ),
        (
            pb::ListDeletedUsersRequest {
                page_token: first_page.next_page_token.clone(),
                user_ids: vec![deleted[0].user_id.clone()],
                ..Default::default()
            },
            "page_token",
            "INVALID_PAGE_TOKEN",
        ),
        (
            pb::ListDeletedUsersRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
            "INVALID_PAGE_TOKEN",
        ),
    ] {
        let status = list(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(bad_fields(&status), [field]);
        assert_eq!(reason(&status), why, "{field}");
    }

    // Only those who read the whole org's users.
    app.create_user("agent@example.com", "Agent", &["agent"])
        .await;
    let agent = app
        .login("agent@example.com", USER_PASSWORD)
        .await
        .session_token;
    let status = app
        .users_as(&agent)
        .list_deleted_users(pb::ListDeletedUsersRequest::default())
        .await
        .expect_err("an agent may not");
    assert_eq!(status.code(), Code::PermissionDenied);
}
