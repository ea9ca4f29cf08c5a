//! CreateUser, GetUser and ListUsers: rules, scopes, paging and bad input.

use roster::api::pb;
use tonic::Code;

use crate::helpers::{TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app};

async fn list(app: &TestApp, token: &str, req: pb::ListUsersRequest) -> pb::ListUsersResponse {
    app.users_as(token)
        .list_users(req)
        .await
        .expect("list")
        .into_inner()
}

fn emails(resp: &pb::ListUsersResponse) -> Vec<&str> {
    resp.users.iter().map(|u| u.email.as_str()).collect()
}

#[tokio::test]
async fn create_then_get_round_trips_every_field() {
    let app = spawn_app().await;
    let mut req = create_request(
        "  Maria.Lopez@Example.com ",
        " María López ",
        &["supervisor", "agent"],
    );
    let user = req.user.as_mut().expect("user");
    user.login_id = "mlopez".into();
    user.public_name = "María".into();
    user.max_chats = Some(3);
    user.language = "es".into();
    user.mobile_phone = "+34 600 000 000".into();
    user.job_title = "Team lead".into();
    user.login_with = pb::LoginWith::LoginId as i32;
    user.can_view_colleagues_chats = true;
    user.state = pb::UserState::Suspended as i32; // output only: ignored
    let created = app
        .admin_users()
        .create_user(req)
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(created.email, "maria.lopez@example.com");
    assert_eq!(created.display_name, "María López");
    assert_eq!(created.roles, ["agent", "supervisor"]);
    assert_eq!(created.state, pb::UserState::Active as i32);
    assert_eq!(created.max_chats, Some(3));
    assert_eq!(created.effective_max_chats, 3);
    assert!(!created.etag.is_empty());
    assert!(created.created_at.is_some());

    let fetched = app
        .admin_users()
        .get_user(pb::GetUserRequest {
            user_id: created.user_id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(fetched, created);

    // login_with = LOGIN_ID: the email no longer signs this user in.
    let status = app
        .try_login("maria.lopez@example.com", USER_PASSWORD)
        .await
        .expect_err("email not allowed");
    assert_eq!(status.code(), Code::Unauthenticated);
    app.login("mlopez", USER_PASSWORD).await;
}

#[tokio::test]
async fn defaults_apply_when_roles_and_max_chats_are_unset() {
    let app = spawn_app().await;
    let user = app.create_user("plain@example.com", "Plain", &[]).await;
    assert_eq!(user.roles, ["agent"]);
    assert_eq!(user.max_chats, None);
    assert_eq!(user.effective_max_chats, 6);
}

#[tokio::test]
async fn only_admins_create_users() {
    let app = spawn_app().await;
    for role in ["agent", "supervisor", "manager", "viewer"] {
        let email = format!("{role}@example.com");
        app.create_user(&email, role, &[role]).await;
        let token = app.login(&email, USER_PASSWORD).await.session_token;
        let status = app
            .users_as(&token)
            .create_user(create_request(
                &format!("new-{role}@example.com"),
                "X",
                &["agent"],
            ))
            .await
            .expect_err("denied");
        assert_eq!(status.code(), Code::PermissionDenied, "{role}");
        assert_eq!(reason(&status), "PERMISSION_DENIED");
    }
}

#[tokio::test]
async fn bad_input_names_each_offending_field() {
    let app = spawn_app().await;
    let cases: Vec<(pb::CreateUserRequest, &str, &str)> = vec![
        (
            create_request("", "Ana", &["agent"]),
            "user.email",
            "INVALID_EMAIL",
        ),
        (
            create_request("not-an-email", "Ana", &["agent"]),
            "user.email",
            "INVALID_EMAIL",
        ),
        (
            create_request("a@b@c.com", "Ana", &["agent"]),
            "user.email",
            "INVALID_EMAIL",
        ),
        (
            create_request("ana@example.com", "", &["agent"]),
            "user.display_name",
            "INVALID_NAME",
        ),
        (
            create_request("ana@example.com", &"N".repeat(101), &["agent"]),
            "user.display_name",
            "INVALID_NAME",
        ),
        (
            create_request("ana@example.com", "Ana\u{1}One", &["agent"]),
            "user.display_name",
            "INVALID_NAME",
        ),
        (
            create_request("ana@example.com", "Ana", &["superhero"]),
            "user.roles",
            "UNKNOWN_ROLE",
        ),
        (
            create_request("ana@example.com", "Ana", &["Not A Role!"]),
            "user.roles",
            "UNKNOWN_ROLE",
        ),
        (
            pb::CreateUserRequest {
                password: "short".into(),
                ..create_request("ana@example.com", "Ana", &["agent"])
            },
            "password",
            "WEAK_PASSWORD",
        ),
        (
            pb::CreateUserRequest {
                password: "password123".into(),
                ..create_request("ana@example.com", "Ana", &["agent"])
            },
            "password",
            "WEAK_PASSWORD",
        ),
        (
            pb::CreateUserRequest {
                user: None,
                ..create_request("ana@example.com", "Ana", &["agent"])
            },
            "user",
            "INVALID_ARGUMENT",
        ),
    ];
    let mut users = app.admin_users();
    for (req, field, code) in cases {
        let status = users.create_user(req).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(bad_fields(&status), [field]);
        assert_eq!(reason(&status), code, "{field}");
    }

    for team in ["nope".to_string(), uuid::Uuid::now_v7().to_string()] {
        let mut req = create_request("ana@example.com", "Ana", &["agent"]);
        req.user.as_mut().expect("user").team_ids = vec![team.clone()];
        let status = users.create_user(req).await.expect_err("unknown team");
        assert_eq!(bad_fields(&status), ["user.team_ids"], "{team}");
        assert_eq!(reason(&status), "UNKNOWN_TEAM", "{team}");
    }

    let status = users
        .create_user(create_request("bad", "", &["x y"]))
        .await
        .expect_err("three faults");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        ["user.email", "user.display_name", "user.roles"]
    );

    // Nothing was created by any of that.
    let all = list(&app, &app.admin_token, pb::ListUsersRequest::default()).await;
    assert_eq!(all.users.len(), 1);
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case_and_spacing() {
    let app = spawn_app().await;
    app.create_user("dup@example.com", "First", &["agent"])
        .await;
    for email in ["dup@example.com", "DUP@Example.COM", "  dup@example.com  "] {
        let status = app
            .admin_users()
            .create_user(create_request(email, "Second", &["agent"]))
            .await
            .expect_err("taken");
        assert_eq!(status.code(), Code::AlreadyExists, "{email:?}");
        assert_eq!(reason(&status), "EMAIL_TAKEN");
    }
}

#[tokio::test]
async fn login_ids_are_unique_in_the_org() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    let mut first = create_request("one@example.com", "One", &["agent"]);
    first.user.as_mut().expect("user").login_id = "agent7".into();
    users.create_user(first).await.expect("created");
    let mut second = create_request("two@example.com", "Two", &["agent"]);
    second.user.as_mut().expect("user").login_id = "agent7".into();
    let status = users.create_user(second).await.expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "LOGIN_ID_TAKEN");
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_user() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    let mut req = create_request("retry@example.com", "Retry", &["agent"]);
    req.request_id = "9b0c7e0e-retry".into();
    let first = users
        .create_user(req.clone())
        .await
        .expect("first")
        .into_inner()
        .user;
    let second = users
        .create_user(req)
        .await
        .expect("replay")
        .into_inner()
        .user;
    assert_eq!(first, second);
    let all = list(&app, &app.admin_token, pb::ListUsersRequest::default()).await;
    assert_eq!(all.users.len(), 2);
}

#[tokio::test]
async fn the_seat_limit_refuses_new_users() {
    let app = spawn_app().await;
    app.update_org(
        pb::OrgSettings {
            seat_limit: 2,
            ..Default::default()
        },
        &["seat_limit"],
    )
    .await;
    app.create_user("seat@example.com", "Seat", &["agent"])
        .await;
    let status = app
        .admin_users()
        .create_user(create_request("over@example.com", "Over", &["agent"]))
        .await
        .expect_err("no seat left");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "SEAT_LIMIT_REACHED");
}

#[tokio::test]
async fn get_user_refuses_bad_unknown_and_out_of_scope_ids() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    let status = users
        .get_user(pb::GetUserRequest {
            user_id: "garbage".into(),
        })
        .await
        .expect_err("garbage");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["user_id"]);
    let status = users
        .get_user(pb::GetUserRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "USER_NOT_FOUND");

    let agent = app.create_user("me@example.com", "Me", &["agent"]).await;
    let other = app
        .create_user("other@example.com", "Other", &["agent"])
        .await;
    let token = app
        .login("me@example.com", USER_PASSWORD)
        .await
        .session_token;
    let mut as_agent = app.users_as(&token);
    as_agent
        .get_user(pb::GetUserRequest {
            user_id: agent.user_id,
        })
        .await
        .expect("own profile");
    let status = as_agent
        .get_user(pb::GetUserRequest {
            user_id: other.user_id,
        })
        .await
        .expect_err("a colleague");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn paging_walks_every_user_once_in_a_stable_order() {
    let app = spawn_app().await;
    for (i, name) in [
        "delta", "Alpha", "charlie", "Bravo", "echo", "alpha", "Foxtrot",
    ]
    .into_iter()
    .enumerate()
    {
        app.create_user(&format!("user{i}@example.com"), name, &["agent"])
            .await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(
            &app,
            &app.admin_token,
            pb::ListUsersRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        assert!(page.users.len() <= 3);
        seen.extend(page.users.into_iter().map(|u| u.display_name));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 8);
}

#[tokio::test]
async fn bad_paging_input_is_refused() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    for token in ["garbage", "!!!", "eyJrIjoiYSJ9"] {
        let status = users
            .list_users(pb::ListUsersRequest {
                page_token: token.into(),
                ..Default::default()
            })
            .await
            .expect_err(token);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&status), ["page_token"]);
        assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");
    }
    let status = users
        .list_users(pb::ListUsersRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative");
    assert_eq!(bad_fields(&status), ["page_size"]);

    // A token is only good with the filters it was issued for.
    app.create_user("b@example.com", "B", &["agent"]).await;
    let first = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await;
    let status = users
        .list_users(pb::ListUsersRequest {
            page_size: 1,
            page_token: first.next_page_token,
            role: "agent".into(),
            ..Default::default()
        })
        .await
        .expect_err("other filters");
    assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");

    let status = users
        .list_users(pb::ListUsersRequest {
            state: 42,
            role: "Not a role!".into(),
            team_id: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filters");
    assert_eq!(bad_fields(&status), ["role", "team_id", "state"]);
}

#[tokio::test]
async fn query_matches_name_email_login_id_and_id_literally() {
    let app = spawn_app().await;
    let mut req = create_request("zoe@example.org", "Zoë Quinn", &["agent"]);
    req.user.as_mut().expect("user").login_id = "zq_100%".into();
    let zoe = app
        .admin_users()
        .create_user(req)
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");
    app.create_user("max@example.com", "Max", &["agent"]).await;
    for query in [
        "zoë",
        "ZOË QUINN",
        "EXAMPLE.ORG",
        "zq_100%",
        &zoe.user_id[..13],
    ] {
        let found = list(
            &app,
            &app.admin_token,
            pb::ListUsersRequest {
                query: query.into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(emails(&found), ["zoe@example.org"], "{query}");
    }
    for query in ["%", "_", "nobody"] {
        let found = list(
            &app,
            &app.admin_token,
            pb::ListUsersRequest {
                query: format!("q{query}q"),
                ..Default::default()
            },
        )
        .await;
        assert!(found.users.is_empty(), "{query}");
    }
}

#[tokio::test]
async fn filters_by_role_team_state_and_lock() {
    let app = spawn_app().await;
    let team = app.create_team("Tier 1").await;
    let mut req = create_request("t1@example.com", "In Team", &["agent"]);
    req.user.as_mut().expect("user").team_ids = vec![team.clone()];
    app.admin_users().create_user(req).await.expect("created");
    app.create_user("sup@example.com", "Sup", &["supervisor"])
        .await;

    let by_role = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            role: "supervisor".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(emails(&by_role), ["sup@example.com"]);
    let by_team = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            team_id: team,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(emails(&by_team), ["t1@example.com"]);
    let active = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            state: pb::UserState::Active as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(active.users.len(), 3);
    let invited = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            state: pb::UserState::Invited as i32,
            ..Default::default()
        },
    )
    .await;
    assert!(invited.users.is_empty());

    for _ in 0..5 {
        app.try_login("sup@example.com", "wrong wrong wrong")
            .await
            .expect_err("fails");
    }
    let locked = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            locked: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(emails(&locked), ["sup@example.com"]);
    let unlocked = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            locked: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(unlocked.users.len(), 2);
}

#[tokio::test]
async fn listings_show_only_what_the_caller_may_see() {
    let app = spawn_app().await;
    let team = app.create_team("Billing").await;
    for (email, roles, in_team) in [
        ("lead@example.com", "supervisor", true),
        ("mate@example.com", "agent", true),
        ("solo@example.com", "agent", false),
        ("boss@example.com", "manager", false),
    ] {
        let mut req = create_request(email, email, &[roles]);
        if in_team {
            req.user.as_mut().expect("user").team_ids = vec![team.clone()];
        }
        app.admin_users().create_user(req).await.expect("created");
    }
    let visible = async |email: &str| {
        let token = app.login(email, USER_PASSWORD).await.session_token;
        list(&app, &token, pb::ListUsersRequest::default()).await
    };
    let lead = visible("lead@example.com").await;
    assert_eq!(emails(&lead), ["lead@example.com", "mate@example.com"]);
    let solo = visible("solo@example.com").await;
    assert_eq!(emails(&solo), ["solo@example.com"]);
    let boss = visible("boss@example.com").await;
    assert_eq!(boss.users.len(), 5);
}

#[tokio::test]
async fn hostile_input_never_takes_the_server_down() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    let long = "\u{202e}𝕏".repeat(2_000);
    let mut req = create_request(&long, &long, &[&long]);
    let user = req.user.as_mut().expect("user");
    user.login_id = long.clone();
    user.team_ids = vec![long.clone(); 100];
    user.max_chats = Some(u32::MAX);
    user.login_with = 99;
    req.password = long.clone();
    let status = users.create_user(req).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = users
        .list_users(pb::ListUsersRequest {
            query: long.clone(),
            page_size: i32::MAX,
            page_token: long,
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    // Past the message size limit, the transport refuses before any handler runs.
    let status = users
        .list_users(pb::ListUsersRequest {
            query: "x".repeat(5 * 1024 * 1024),
            ..Default::default()
        })
        .await
        .expect_err("too large");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    let listed = list(
        &app,
        &app.admin_token,
        pb::ListUsersRequest {
            page_size: i32::MAX,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed.users.len(), 1);
}
