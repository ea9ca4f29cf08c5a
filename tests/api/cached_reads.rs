//! Sessions, users and org settings are served from memory once read, and
//! free-text listings from an in-memory index of the org's users; each test
//! reads twice (so the second read is the cached one), changes through the
//! API, and checks that the very next read sees the change.

use std::time::{Duration, Instant};

use roster::{
    api::{
        Bearer,
        pb::{
            self, auth_service_client::AuthServiceClient, org_service_client::OrgServiceClient,
            user_service_client::UserServiceClient,
        },
    },
    config::Config,
};
use tonic::{Code, transport::Endpoint};

use crate::helpers::{
    ORG, TestApp, USER_PASSWORD, Users, create_request, spawn_app, spawn_app_with, start,
};

/// Reads the user twice as the admin, the second time from the cache.
async fn read_twice(app: &TestApp, user_id: &str) -> pb::User {
    app.get_user(user_id).await.expect("first read");
    app.get_user(user_id).await.expect("second read")
}

/// Signs in as a new agent and uses the session twice.
async fn used_session(app: &TestApp, email: &str) -> (pb::User, String) {
    let user = app.create_user(email, "Ann Agent", &["agent"]).await;
    let token = app.login(email, USER_PASSWORD).await.session_token;
    for _ in 0..2 {
        app.auth_as(&token)
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .expect("session works");
    }
    (user, token)
}

/// The users matching `query`, listed twice (the first listing may build
/// the org's index).
async fn search_twice(users: &mut Users, query: &str) -> Vec<pb::User> {
    let listing = pb::ListUsersRequest {
        query: query.into(),
        ..Default::default()
    };
    users
        .list_users(listing.clone())
        .await
        .expect("first search");
    search(users, listing).await
}

async fn rename(app: &TestApp, user_id: &str, name: &str) {
    app.admin_users()
        .update_user(pb::UpdateUserRequest {
            user: Some(pb::User {
                user_id: user_id.into(),
                display_name: name.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("renamed");
}

async fn search(users: &mut Users, listing: pb::ListUsersRequest) -> Vec<pb::User> {
    users
        .list_users(listing)
        .await
        .expect("search")
        .into_inner()
        .users
}

async fn refused(app: &TestApp, token: &str) -> Code {
    app.auth_as(token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("session ended")
        .code()
}

#[tokio::test]
async fn a_suspension_ends_a_session_that_was_just_used() {
    let app = spawn_app().await;
    let (user, token) = used_session(&app, "ann@example.com").await;
    app.admin_users()
        .suspend_user(pb::SuspendUserRequest {
            user_id: user.user_id,
            ..Default::default()
        })
        .await
        .expect("suspended");
    assert_eq!(refused(&app, &token).await, Code::Unauthenticated);
}

#[tokio::test]
async fn a_logout_ends_a_session_that_was_just_used() {
    let app = spawn_app().await;
    let (_, token) = used_session(&app, "ann@example.com").await;
    app.auth_as(&token)
        .logout(pb::LogoutRequest {})
        .await
        .expect("signed out");
    assert_eq!(refused(&app, &token).await, Code::Unauthenticated);
}

#[tokio::test]
async fn sign_ins_failures_and_locks_show_in_the_next_read() {
    let app = spawn_app().await;
    let (user, _) = used_session(&app, "ann@example.com").await;
    let before = read_twice(&app, &user.user_id).await;
    app.login("ann@example.com", USER_PASSWORD).await;
    let after = app.get_user(&user.user_id).await.expect("read");
    assert_ne!(after.last_login_at, before.last_login_at, "signed in again");

    for _ in 0..5 {
        app.try_login("ann@example.com", "not the password")
            .await
            .expect_err("wrong password");
    }
    assert!(app.get_user(&user.user_id).await.expect("read").locked);
    app.admin_users()
        .unlock_user(pb::UnlockUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("unlocked");
    assert!(!app.get_user(&user.user_id).await.expect("read").locked);
}

#[tokio::test]
async fn an_org_setting_change_shows_in_the_next_read_of_its_users() {
    let app = spawn_app().await;
    let user = app
        .create_user("ann@example.com", "Ann Agent", &["agent"])
        .await;
    let before = read_twice(&app, &user.user_id).await;
    app.update_org(
        pb::OrgSettings {
            default_max_chats: before.effective_max_chats + 3,
            ..Default::default()
        },
        &["default_max_chats"],
    )
    .await;
    let after = app.get_user(&user.user_id).await.expect("read");
    assert_eq!(after.effective_max_chats, before.effective_max_chats + 3);
}

#[tokio::test]
async fn a_search_sees_the_user_changes_just_made() {
    let app = spawn_app().await;
    let (user, _) = used_session(&app, "ann@example.com").await;
    let mut users = app.admin_users();
    let found = search_twice(&mut users, "ann agent").await;
    assert_eq!(found.len(), 1);
    assert!(!found[0].locked);

    for _ in 0..5 {
        app.try_login("ann@example.com", "not the password")
            .await
            .expect_err("wrong password");
    }
    let locked = pb::ListUsersRequest {
        query: "ann agent".into(),
        locked: Some(true),
        ..Default::default()
    };
    assert_eq!(
        ids(&search(&mut users, locked).await),
        [user.user_id.as_str()]
    );

    let invited = app
        .create_user("bob@example.com", "Bob Agent", &["agent"])
        .await;
    let everyone = search(
        &mut users,
        pb::ListUsersRequest {
            query: "agent".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&everyone),
        [user.user_id.as_str(), invited.user_id.as_str()]
    );
}

#[tokio::test]
async fn a_search_sees_the_team_and_org_changes_just_made() {
    let app = spawn_app().await;
    let team = app.create_team("Night").await;
    let mut request = create_request("ann@example.com", "Ann Agent", &["agent"]);
    request.user.as_mut().expect("user").team_ids = vec![team.clone()];
    app.admin_users()
        .create_user(request)
        .await
        .expect("created");
    let mut users = app.admin_users();
    let before = search_twice(&mut users, "ann").await;
    assert_eq!(before[0].team_ids, std::slice::from_ref(&team));

    app.update_org(
        pb::OrgSettings {
            default_max_chats: before[0].effective_max_chats + 3,
            ..Default::default()
        },
        &["default_max_chats"],
    )
    .await;
    let listing = pb::ListUsersRequest {
        query: "ann".into(),
        ..Default::default()
    };
    let after = search(&mut users, listing.clone()).await;
    assert_eq!(
        after[0].effective_max_chats,
        before[0].effective_max_chats + 3
    );

    OrgServiceClient::with_interceptor(app.channel.clone(), app.bearer())
        .delete_team(pb::DeleteTeamRequest {
            team_id: team,
            detach_members: true,
            ..Default::default()
        })
        .await
        .expect("team deleted");
    let after = search(&mut users, listing).await;
    assert!(after[0].team_ids.is_empty());
    assert_ne!(after[0].etag, before[0].etag);
}

fn ids(users: &[pb::User]) -> Vec<&str> {
    users.iter().map(|u| u.user_id.as_str()).collect()
}

#[tokio::test]
async fn without_a_cache_every_read_goes_to_the_database() {
    let app = spawn_app_with(|config| config.cache_capacity = 0).await;
    let (user, token) = used_session(&app, "ann@example.com").await;
    read_twice(&app, &user.user_id).await;
    app.auth_as(&token)
        .logout(pb::LogoutRequest {})
        .await
        .expect("signed out");
    assert_eq!(refused(&app, &token).await, Code::Unauthenticated);
}

/// Replicas share a PostgreSQL database (an SQLite file has one server), so
/// this runs on PostgreSQL only: a change made through one replica reaches
/// the cached reads of another, which PostgreSQL tells at commit.
#[tokio::test]
async fn a_change_through_one_replica_reaches_the_cached_reads_of_another() {
    let app = spawn_app().await;
    if !app.database_url.starts_with("postgres") {
        return;
    }
    let (user, token) = used_session(&app, "ann@example.com").await;
    let (channel, _replica) = second_replica(&app).await;
    let mut users_on_b = UserServiceClient::with_interceptor(channel.clone(), app.bearer());
    let mut agent_on_b =
        AuthServiceClient::with_interceptor(channel, Bearer::new(&token).expect("token"));
    let get = pb::GetUserRequest {
        user_id: user.user_id.clone(),
    };
    // B's listener may still be connecting, in which case B reads the
    // database; either way, the reads after A's changes must see them.
    for _ in 0..2 {
        users_on_b.get_user(get.clone()).await.expect("read on B");
        agent_on_b
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .expect("session works on B");
    }

    rename(&app, &user.user_id, "Ann Renamed").await;
    app.admin_users()
        .suspend_user(pb::SuspendUserRequest {
            user_id: user.user_id.clone(),
            ..Default::default()
        })
        .await
        .expect("suspended through A");

    // The notification travels after A's commit: B sees it within moments.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let read = users_on_b.get_user(get.clone()).await.expect("read on B");
        let renamed = read.into_inner().user.expect("user").display_name == "Ann Renamed";
        let ended = agent_on_b.who_am_i(pb::WhoAmIRequest {}).await.is_err();
        if renamed && ended {
            break;
        }
        assert!(Instant::now() < deadline, "B still serves the old reads");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// As above, for searches: B's index of the org learns of A's changes from
/// the same notification.
#[tokio::test]
async fn a_change_through_one_replica_reaches_the_searches_of_another() {
    let app = spawn_app().await;
    if !app.database_url.starts_with("postgres") {
        return;
    }
    let ann = app
        .create_user("ann@example.com", "Ann Agent", &["agent"])
        .await;
    let (channel, _replica) = second_replica(&app).await;
    let mut users_on_b = UserServiceClient::with_interceptor(channel, app.bearer());
    let names = |users: Vec<pb::User>| -> Vec<String> {
        users.into_iter().map(|u| u.display_name).collect()
    };
    assert!(
        names(search_twice(&mut users_on_b, "example.com").await)
            .contains(&"Ann Agent".to_string())
    );

    rename(&app, &ann.user_id, "Ann Renamed").await;
    app.create_user("bob@example.com", "Bob Agent", &["agent"])
        .await;

    let listing = pb::ListUsersRequest {
        query: "example.com".into(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = names(search(&mut users_on_b, listing.clone()).await);
        let seen = |name: &str| found.iter().any(|n| n == name);
        if seen("Ann Renamed") && seen("Bob Agent") && !seen("Ann Agent") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still searches the old users: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A second server on the app's PostgreSQL database, and a channel to it.
async fn second_replica(app: &TestApp) -> (tonic::transport::Channel, tokio::task::JoinHandle<()>) {
    let mut config = Config::for_tests(app.database_url.clone());
    config.bootstrap_org = ORG.into();
    let (addr, replica) = start(config).await;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (channel, replica)
}
