//! PlatformService: tenants created, read, listed, changed, suspended,
//! reactivated and deleted by platform keys; refused to every org caller;
//! and what suspension and deletion do to the org's sessions, keys,
//! streams and rows.

use std::time::Duration;

use prost_types::FieldMask;
use roster::api::{
    Bearer,
    pb::{
        self, auth_service_client::AuthServiceClient,
        platform_service_client::PlatformServiceClient,
        presence_service_client::PresenceServiceClient, user_service_client::UserServiceClient,
    },
};
use sea_orm::{ConnectionTrait, Database};
use tonic::{Code, transport::Channel};

use crate::helpers::{Platform, TestApp, USER_PASSWORD, bad_fields, reason, spawn_app};

fn bearer(token: &str) -> Bearer {
    Bearer::new(token).expect("header text")
}

fn create_request(slug: &str, admin_email: &str, password: &str) -> pb::CreateOrgRequest {
    pb::CreateOrgRequest {
        slug: slug.into(),
        display_name: format!("{slug} Inc."),
        seat_limit: 0,
        admin: Some(pb::NewOrgAdmin {
            email: admin_email.into(),
            display_name: "First Admin".into(),
        }),
        admin_password: password.into(),
        request_id: String::new(),
    }
}

async fn create(platform: &mut Platform, request: pb::CreateOrgRequest) -> pb::CreateOrgResponse {
    platform
        .create_org(request)
        .await
        .expect("org created")
        .into_inner()
}

async fn login(
    app: &TestApp,
    org: &str,
    login: &str,
    password: &str,
) -> Result<String, tonic::Status> {
    AuthServiceClient::new(app.channel.clone())
        .login(pb::LoginRequest {
            org: org.into(),
            login: login.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner().session_token)
}

/// A platform client, and a new org `slug` whose admin (boss@SLUG.test,
/// with a password) is signed in: their session token.
async fn org_with_admin(app: &TestApp, slug: &str) -> (Platform, pb::Org, String) {
    let mut platform = app.platform_as(&app.platform_key("ops").await);
    let email = format!("boss@{slug}.test");
    let org = create(&mut platform, create_request(slug, &email, USER_PASSWORD))
        .await
        .org
        .expect("org");
    let token = login(app, slug, &email, USER_PASSWORD)
        .await
        .expect("sign in");
    (platform, org, token)
}

/// A key with scope presence.read, made by the session `token`'s admin.
async fn router_key(app: &TestApp, token: &str) -> pb::CreateApiKeyResponse {
    AuthServiceClient::with_interceptor(app.channel.clone(), bearer(token))
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                name: "router".into(),
                scopes: vec!["presence.read".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("key")
        .into_inner()
}

#[tokio::test]
async fn a_platform_key_creates_orgs_whose_admins_sign_in_or_are_invited() {
    let app = spawn_app().await;
    let mut platform = app.platform_as(&app.platform_key("signup").await);

    // With a password: ACTIVE, and signs in to the new org at once.
    let created = create(
        &mut platform,
        create_request("globex", "boss@globex.test", USER_PASSWORD),
    )
    .await;
    let org = created.org.expect("org");
    let admin = created.admin.expect("admin");
    assert_eq!(org.slug, "globex");
    assert_eq!(org.state(), pb::OrgState::Active);
    assert_eq!(org.seats_used, 1);
    assert_eq!(admin.state(), pb::UserState::Active);
    assert_eq!(admin.roles, ["admin"]);
    assert!(created.invite_expires_at.is_none());
    let token = login(&app, "globex", "boss@globex.test", USER_PASSWORD)
        .await
        .expect("the new admin signs in");
    let mut users = UserServiceClient::with_interceptor(app.channel.clone(), bearer(&token));
    let listed = users
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect("the new admin lists their org")
        .into_inner()
        .users;
    assert_eq!(listed.len(), 1, "a new org holds only its admin");

    // Without: INVITED, with a link that expires.
    let mut invited = create_request("initech", "peter@initech.test", "");
    invited.seat_limit = 10;
    let created = create(&mut platform, invited).await;
    assert_eq!(
        created.admin.expect("admin").state(),
        pb::UserState::Invited
    );
    assert!(created.invite_expires_at.is_some());
    assert_eq!(created.org.expect("org").seat_limit, 10);

    // Taken slug, taken email.
    let status = platform
        .create_org(create_request("globex", "other@globex.test", ""))
        .await
        .expect_err("slug taken");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::AlreadyExists, "ORG_SLUG_TAKEN")
    );
    let status = platform
        .create_org(create_request("hooli", "boss@globex.test", ""))
        .await
        .expect_err("email taken");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::AlreadyExists, "EMAIL_TAKEN")
    );
    assert!(
        app.sql_strings("SELECT id FROM orgs WHERE slug = 'hooli'")
            .await
            .is_empty(),
        "a refused CreateOrg leaves no org behind"
    );

    // A retry with the same request id creates nothing new.
    let mut retried = create_request("umbrella", "alice@umbrella.test", "");
    retried.request_id = "signup-42".into();
    let first = create(&mut platform, retried.clone()).await;
    let again = create(&mut platform, retried).await;
    assert_eq!(
        first.org.expect("org").org_id,
        again.org.expect("org").org_id
    );
    assert_eq!(
        first.admin.expect("admin").user_id,
        again.admin.expect("admin").user_id
    );
    assert_eq!(
        app.sql_strings("SELECT id FROM orgs WHERE slug = 'umbrella'")
            .await
            .len(),
        1
    );

    // Bad input: every offending field at once.
    let status = platform
        .create_org(pb::CreateOrgRequest {
            slug: "Not A Slug!".into(),
            display_name: String::new(),
            seat_limit: 2_000_000,
            admin: Some(pb::NewOrgAdmin {
                email: "not-an-email".into(),
                display_name: String::new(),
            }),
            admin_password: "password".into(),
            request_id: "x".repeat(101),
        })
        .await
        .expect_err("bad input");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "admin.display_name",
            "admin.email",
            "admin_password",
            "display_name",
            "request_id",
            "seat_limit",
            "slug"
        ]
    );
    let status = platform
        .create_org(pb::CreateOrgRequest {
            admin: None,
            ..create_request("acme2", "x@acme2.test", "")
        })
        .await
        .expect_err("no admin");
    assert_eq!(bad_fields(&status), ["admin"]);
}

#[tokio::test]
async fn orgs_are_read_listed_and_changed_with_etags() {
    let app = spawn_app().await;
    let mut platform = app.platform_as(&app.platform_key("ops").await);
    for slug in ["beta-one", "beta-two", "beta-three", "gamma"] {
        create(
            &mut platform,
            create_request(slug, &format!("admin@{slug}.test"), ""),
        )
        .await;
    }

    // Paged by slug, filtered by prefix and state.
    let mut slugs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = platform
            .list_orgs(pb::ListOrgsRequest {
                page_size: 2,
                page_token,
                slug_prefix: "beta-".into(),
                state: 0,
            })
            .await
            .expect("list")
            .into_inner();
        slugs.extend(page.orgs.into_iter().map(|o| o.slug));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(slugs, ["beta-one", "beta-three", "beta-two"]);
    let all = platform
        .list_orgs(pb::ListOrgsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .orgs;
    assert_eq!(all.len(), 5, "the bootstrap org and four more");
    let suspended = platform
        .list_orgs(pb::ListOrgsRequest {
            state: pb::OrgState::Suspended.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .orgs;
    assert!(suspended.is_empty());
    let status = platform
        .list_orgs(pb::ListOrgsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");
    let status = platform
        .list_orgs(pb::ListOrgsRequest {
            state: 9,
            slug_prefix: "UPPER CASE".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filters");
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["slug_prefix", "state"]);

    // Get, update with the etag, refuse a stale one.
    let gamma = all
        .iter()
        .find(|o| o.slug == "gamma")
        .expect("gamma")
        .clone();
    let got = platform
        .get_org(pb::GetOrgRequest {
            org_id: gamma.org_id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .org
        .expect("org");
    assert_eq!(got, gamma);
    let update = |etag: &str| pb::UpdateOrgRequest {
        org: Some(pb::Org {
            org_id: gamma.org_id.clone(),
            display_name: "Gamma Corp".into(),
            seat_limit: 25,
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["display_name".into(), "seat_limit".into()],
        }),
    };
    let updated = platform
        .update_org(update(&gamma.etag))
        .await
        .expect("update")
        .into_inner()
        .org
        .expect("org");
    assert_eq!(
        (updated.display_name.as_str(), updated.seat_limit),
        ("Gamma Corp", 25)
    );
    assert_ne!(updated.etag, gamma.etag);
    let status = platform
        .update_org(update(&gamma.etag))
        .await
        .expect_err("stale");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Aborted, "STALE_ETAG")
    );
    let mut bad_mask = update("");
    bad_mask.update_mask = Some(FieldMask {
        paths: vec!["slug".into()],
    });
    let status = platform
        .update_org(bad_mask)
        .await
        .expect_err("slug is not editable");
    assert_eq!(reason(&status), "INVALID_FIELD_MASK");

    // Unknown and malformed ids.
    let status = platform
        .get_org(pb::GetOrgRequest {
            org_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::NotFound, "ORG_NOT_FOUND")
    );
    let status = platform
        .get_org(pb::GetOrgRequest {
            org_id: "nope".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(bad_fields(&status), ["org_id"]);
}

#[tokio::test]
async fn platform_keys_and_org_callers_never_cross() {
    let app = spawn_app().await;
    let secret = app.platform_key("ops").await;
    let mut platform = app.platform_as(&secret);

    // An org's admin session and an org key are refused by PlatformService.
    let org_key = AuthServiceClient::with_interceptor(app.channel.clone(), app.bearer())
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                name: "everything".into(),
                scopes: vec!["users.manage".into(), "settings.manage".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("key")
        .into_inner()
        .secret;
    for token in [app.admin_token.as_str(), org_key.as_str()] {
        let status = app
            .platform_as(token)
            .list_orgs(pb::ListOrgsRequest::default())
            .await
            .expect_err("org callers cannot call PlatformService");
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::PermissionDenied, "WRONG_CALLER_KIND")
        );
    }

    // A platform key is refused by every org service.
    let mut users = UserServiceClient::with_interceptor(app.channel.clone(), bearer(&secret));
    let status = users
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect_err("platform keys call no org RPC");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::PermissionDenied, "WRONG_CALLER_KIND")
    );

    // Credentials that do not work are UNAUTHENTICATED, whatever their kind.
    for token in ["rpk_not-a-real-key", "rs_not-a-session"] {
        let status = app
            .platform_as(token)
            .list_orgs(pb::ListOrgsRequest::default())
            .await
            .expect_err("no such credential");
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }
    // A revoked platform key stops at once.
    platform
        .list_orgs(pb::ListOrgsRequest::default())
        .await
        .expect("the key works");
    let keys = roster::operator::platform_keys(&roster::config::Config::for_tests(
        app.database_url.clone(),
    ))
    .await
    .expect("open");
    keys.revoke_platform_key(
        &roster::domain::ApiKeyName::parse("ops").expect("name"),
        &roster::audit::Origin::default(),
    )
    .await
    .expect("revoked");
    let status = platform
        .list_orgs(pb::ListOrgsRequest::default())
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// Reads the stream until it ends; returns its final status.
async fn end_of(mut stream: tonic::Streaming<pb::WatchPresenceResponse>) -> tonic::Status {
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => return status,
        }
    }
}

#[tokio::test]
async fn suspending_an_org_stops_its_sessions_keys_logins_and_streams_at_once() {
    let app = spawn_app().await;
    let (mut platform, org, token) = org_with_admin(&app, "globex").await;
    let key = router_key(&app, &token).await.secret;
    let mut by_key = PresenceServiceClient::with_interceptor(app.channel.clone(), bearer(&key));
    let mut by_session =
        PresenceServiceClient::with_interceptor(app.channel.clone(), bearer(&token));
    let mut watches = Vec::new();
    for client in [&mut by_key, &mut by_session] {
        let mut stream = client
            .watch_presence(pb::WatchPresenceRequest::default())
            .await
            .expect("watch")
            .into_inner();
        // Through the snapshot, so the watch is open for good.
        while let Some(event) = stream.message().await.expect("snapshot") {
            if event.kind() == pb::PresenceEventKind::SnapshotEnd {
                break;
            }
        }
        watches.push(stream);
    }

    let suspended = platform
        .suspend_org(pb::SuspendOrgRequest {
            org_id: org.org_id.clone(),
            reason: "unpaid invoice".into(),
        })
        .await
        .expect("suspend")
        .into_inner()
        .org
        .expect("org");
    assert_eq!(suspended.state(), pb::OrgState::Suspended);
    assert_eq!(suspended.suspend_reason, "unpaid invoice");
    assert!(suspended.suspended_at.is_some());

    // Streams end well before their periodic re-check (10 s).
    for stream in watches {
        let status = tokio::time::timeout(Duration::from_secs(5), end_of(stream))
            .await
            .expect("the watch ends at once");
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::PermissionDenied, "ORG_SUSPENDED")
        );
    }
    let status = by_key
        .list_presence(pb::ListPresenceRequest::default())
        .await
        .expect_err("the key stops");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::PermissionDenied, "ORG_SUSPENDED")
    );
    let status = by_session
        .list_presence(pb::ListPresenceRequest::default())
        .await
        .expect_err("the session ended");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = login(&app, "globex", "boss@globex.test", USER_PASSWORD)
        .await
        .expect_err("no sign-in");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unauthenticated, "INVALID_CREDENTIALS")
    );
    // Trying meanwhile locks nobody out: more attempts than the threshold.
    for _ in 0..6 {
        login(&app, "globex", "boss@globex.test", USER_PASSWORD)
            .await
            .expect_err("no sign-in");
    }
    // The other org carries on.
    app.login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;

    let status = platform
        .suspend_org(pb::SuspendOrgRequest {
            org_id: org.org_id.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("twice");
    assert_eq!(reason(&status), "ORG_ALREADY_SUSPENDED");
    let status = platform
        .suspend_org(pb::SuspendOrgRequest {
            org_id: org.org_id.clone(),
            reason: "x".repeat(151),
        })
        .await
        .expect_err("reason too long");
    assert_eq!(bad_fields(&status), ["reason"]);

    // Reactivated: keys and sign-ins work again; the ended session stays ended.
    let active = platform
        .reactivate_org(pb::ReactivateOrgRequest {
            org_id: org.org_id.clone(),
        })
        .await
        .expect("reactivate")
        .into_inner()
        .org
        .expect("org");
    assert_eq!(active.state(), pb::OrgState::Active);
    assert!(active.suspended_at.is_none() && active.suspend_reason.is_empty());
    let everyone = by_key
        .list_presence(pb::ListPresenceRequest::default())
        .await
        .expect("the key works again")
        .into_inner()
        .presences;
    assert!(
        everyone
            .iter()
            .all(|p| p.status() == pb::PresenceStatus::Offline),
        "suspension signed everyone out: {everyone:?}"
    );
    by_session
        .list_presence(pb::ListPresenceRequest::default())
        .await
        .expect_err("a session from before stays ended");
    login(&app, "globex", "boss@globex.test", USER_PASSWORD)
        .await
        .expect("signs in again");
    let status = platform
        .reactivate_org(pb::ReactivateOrgRequest {
            org_id: org.org_id.clone(),
        })
        .await
        .expect_err("not suspended");
    assert_eq!(reason(&status), "ORG_NOT_SUSPENDED");
}

/// How many rows of every table of the database (but the platform's own
/// audit log and the migration ledger) mention any of `needles`, by table.
async fn rows_mentioning(app: &TestApp, needles: &[String]) -> Vec<(String, usize)> {
    let db = Database::connect(&app.database_url).await.expect("db");
    let backend = db.get_database_backend();
    let columns_query = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema()"
        }
        _ => {
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table'"
        }
    };
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(backend, columns_query))
        .await
        .expect("columns");
    let mut columns: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for row in rows {
        let table: String = row.try_get_by_index(0).expect("table");
        let column: String = row.try_get_by_index(1).expect("column");
        columns.entry(table).or_default().push(column);
    }
    let mut found = Vec::new();
    for (table, columns) in &columns {
        if table == "platform_audit_events"
            || table == "seaql_migrations"
            || table.starts_with("sqlite_")
        {
            continue;
        }
        let mentions: Vec<String> = columns
            .iter()
            .flat_map(|c| {
                needles
                    .iter()
                    .map(move |n| format!("CAST(\"{c}\" AS TEXT) LIKE '%{n}%'"))
            })
            .collect();
        let query = format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM \"{table}\" WHERE {}",
            mentions.join(" OR ")
        );
        let count: String = db
            .query_one_raw(sea_orm::Statement::from_string(backend, query))
            .await
            .expect("count")
            .expect("a row")
            .try_get_by_index(0)
            .expect("count");
        let count: usize = count.parse().expect("a number");
        if count > 0 {
            found.push((table.clone(), count));
        }
    }
    db.close().await.ok();
    found
}

#[tokio::test]
async fn deleting_a_suspended_org_leaves_no_row_of_it() {
    let app = spawn_app().await;
    let (mut platform, org, token) = org_with_admin(&app, "doomed").await;
    // Something in every corner: users (one deleted, one invited), a team,
    // a custom role, a key, presence and its history, an avatar, an import.
    let channel: Channel = app.channel.clone();
    let mut users = UserServiceClient::with_interceptor(channel.clone(), bearer(&token));
    let mut org_service = roster::api::pb::org_service_client::OrgServiceClient::with_interceptor(
        channel.clone(),
        bearer(&token),
    );
    let team = org_service
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                name: "Doomed team".into(),
                ..Default::default()
            }),
            request_id: "team-1".into(),
        })
        .await
        .expect("team")
        .into_inner()
        .team
        .expect("team")
        .team_id;
    org_service
        .create_role(pb::CreateRoleRequest {
            role: Some(pb::Role {
                name: "doomed-role".into(),
                permissions: vec!["users.read".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("role");
    let mut ids = vec![org.org_id.clone(), team];
    for (i, roles) in [["agent"], ["doomed-role"]].iter().enumerate() {
        let mut request = crate::helpers::create_request(
            &format!("agent{i}@doomed.test"),
            &format!("Agent {i}"),
            roles,
        );
        request.request_id = format!("create-{i}");
        let user = users
            .create_user(request)
            .await
            .expect("user")
            .into_inner()
            .user
            .expect("user");
        ids.push(user.user_id);
    }
    users
        .delete_user(pb::DeleteUserRequest {
            user_id: ids[3].clone(),
        })
        .await
        .expect("a tombstone");
    let invited = users
        .invite_user(pb::InviteUserRequest {
            user: Some(pb::User {
                email: "invitee@doomed.test".into(),
                display_name: "Invitee".into(),
                ..Default::default()
            }),
            request_id: "invite-1".into(),
        })
        .await
        .expect("invite")
        .into_inner()
        .user
        .expect("user");
    ids.push(invited.user_id);
    let admin_id = app
        .sql_strings(&format!(
            "SELECT id FROM users WHERE org_id = '{}' AND email = 'boss@doomed.test'",
            org.org_id
        ))
        .await
        .remove(0);
    users
        .set_avatar(pb::SetAvatarRequest {
            user_id: admin_id.clone(),
            image: b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
        })
        .await
        .expect("avatar");
    ids.push(admin_id);
    let key = router_key(&app, &token).await.api_key.expect("key");
    ids.push(key.api_key_id);
    PresenceServiceClient::with_interceptor(channel.clone(), bearer(&token))
        .set_availability(pb::SetAvailabilityRequest {
            status: pb::PresenceStatus::Available.into(),
            ..Default::default()
        })
        .await
        .expect("presence");
    let job = users
        .import_users(tokio_stream::iter([pb::ImportUsersRequest {
            file_name: "staff.csv".into(),
            chunk: b"first_name,last_name,login_id,email\nAnn,Lee,ann,ann@doomed.test\nbad row\n"
                .to_vec(),
            ..Default::default()
        }]))
        .await
        .expect("import")
        .into_inner()
        .import_job
        .expect("job")
        .import_job_id;
    ids.push(job);
    ids.push("doomed.test".into());
    assert!(!rows_mentioning(&app, &ids).await.is_empty());

    let status = platform
        .delete_org(pb::DeleteOrgRequest {
            org_id: org.org_id.clone(),
        })
        .await
        .expect_err("an active org is not deleted");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::FailedPrecondition, "ORG_NOT_SUSPENDED")
    );
    platform
        .suspend_org(pb::SuspendOrgRequest {
            org_id: org.org_id.clone(),
            reason: "closing".into(),
        })
        .await
        .expect("suspend");
    let deleted = platform
        .delete_org(pb::DeleteOrgRequest {
            org_id: org.org_id.clone(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(
        deleted.users_removed, 4,
        "admin, an agent, the invitee, the import's Ann"
    );
    assert_eq!(rows_mentioning(&app, &ids).await, []);
    let status = platform
        .get_org(pb::GetOrgRequest {
            org_id: org.org_id.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(reason(&status), "ORG_NOT_FOUND");
    let status = platform
        .delete_org(pb::DeleteOrgRequest {
            org_id: org.org_id.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(reason(&status), "ORG_NOT_FOUND");

    // The first org is whole, and the slug and emails are free again.
    app.login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    create(
        &mut platform,
        create_request("doomed", "boss@doomed.test", USER_PASSWORD),
    )
    .await;
}

#[tokio::test]
async fn the_platform_audit_log_records_every_change_and_outlives_the_org() {
    let app = spawn_app().await;
    let mut platform: PlatformServiceClient<_> = app.platform_as(&app.platform_key("ops").await);
    let org = create(
        &mut platform,
        create_request("brief", "boss@brief.test", ""),
    )
    .await
    .org
    .expect("org");
    let org_id = org.org_id.clone();
    platform
        .update_org(pb::UpdateOrgRequest {
            org: Some(pb::Org {
                org_id: org_id.clone(),
                display_name: "Brief Ltd".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("update");
    for _ in 0..2 {
        platform
            .suspend_org(pb::SuspendOrgRequest {
                org_id: org_id.clone(),
                reason: "audit me".into(),
            })
            .await
            .expect("suspend");
        platform
            .reactivate_org(pb::ReactivateOrgRequest {
                org_id: org_id.clone(),
            })
            .await
            .expect("reactivate");
    }
    platform
        .suspend_org(pb::SuspendOrgRequest {
            org_id: org_id.clone(),
            reason: String::new(),
        })
        .await
        .expect("suspend");
    platform
        .delete_org(pb::DeleteOrgRequest {
            org_id: org_id.clone(),
        })
        .await
        .expect("delete");

    let mut actions = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = platform
            .list_platform_audit_events(pb::ListPlatformAuditEventsRequest {
                page_size: 3,
                page_token,
                org_id: org_id.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        for event in &page.events {
            assert_eq!(event.org_slug, "brief");
            assert_eq!(event.actor_kind(), pb::PlatformActorKind::PlatformKey);
            assert!(!event.actor_id.is_empty());
        }
        actions.extend(page.events.into_iter().map(|e| e.action));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        actions,
        [
            "org.delete",
            "org.suspend",
            "org.reactivate",
            "org.suspend",
            "org.reactivate",
            "org.suspend",
            "org.update",
            "org.create"
        ]
    );
    let keys = platform
        .list_platform_audit_events(pb::ListPlatformAuditEventsRequest {
            action: "platform_key.create".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .events;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].actor_kind(), pb::PlatformActorKind::Operator);
    assert!(keys[0].details_json.contains("\"ops\""));
    assert!(!keys[0].details_json.contains("rpk_"), "never the secret");
    let status = platform
        .list_platform_audit_events(pb::ListPlatformAuditEventsRequest {
            action: "user.delete".into(),
            org_id: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filters");
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["action", "org_id"]);
}

/// Replicas share a PostgreSQL database (an SQLite file has one server,
/// whose case is the test above), so this runs on PostgreSQL only: B hears
/// of A's suspension at A's commit, well before its periodic re-check.
#[tokio::test]
async fn a_suspension_through_one_replica_ends_watches_on_another() {
    let database = crate::helpers::TestDatabase::create().await;
    let url = database.url.clone();
    if !url.starts_with("postgres") {
        return;
    }
    let a = crate::helpers::spawn_app_on(database).await;
    let mut config = roster::config::Config::for_tests(url.clone());
    config.bootstrap_org = crate::helpers::ORG.into();
    let (b_addr, _b) = crate::helpers::start(config).await;
    let b = Channel::from_shared(format!("http://{b_addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to B");

    let (mut platform, org, token) = org_with_admin(&a, "globex").await;
    let mut stream = PresenceServiceClient::with_interceptor(b, bearer(&token))
        .watch_presence(pb::WatchPresenceRequest::default())
        .await
        .expect("watch on B")
        .into_inner();
    while let Some(event) = stream.message().await.expect("snapshot") {
        if event.kind() == pb::PresenceEventKind::SnapshotEnd {
            break;
        }
    }
    platform
        .suspend_org(pb::SuspendOrgRequest {
            org_id: org.org_id,
            reason: String::new(),
        })
        .await
        .expect("suspend through A");
    let status = tokio::time::timeout(Duration::from_secs(5), end_of(stream))
        .await
        .expect("B's watch ends");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::PermissionDenied, "ORG_SUSPENDED")
    );
}
