//! ExportUsers: the CSV contract of docs/csv.md (header, columns, quoting,
//! formula cells), ListUsers' filters and access, streaming of an org bigger
//! than one page, and bad input.

use std::collections::HashMap;

use roster::{
    api::pb::{self, user_service_client::UserServiceClient},
    users::export::{COLUMNS, undefuse},
};
use tonic::{Code, Status};

use crate::helpers::{
    ADMIN_EMAIL, TestApp, USER_PASSWORD, Users, bad_fields, create_request, spawn_app,
};

const HEADER: &str = "first_name,last_name,login_id,email,roles,teams,user_id,display_name,\
                      state,locked,public_name,max_chats,created_at,last_login_at\n";

/// The chunks of one export, as they came.
async fn export_chunks(
    users: &mut Users,
    req: pb::ExportUsersRequest,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut stream = users.export_users(req).await?.into_inner();
    let mut chunks = Vec::new();
    while let Some(message) = stream.message().await? {
        chunks.push(message.chunk);
    }
    Ok(chunks)
}

/// The whole file of one export by `token`.
async fn export_text(app: &TestApp, token: &str, req: pb::ExportUsersRequest) -> String {
    let chunks = export_chunks(&mut app.users_as(token), req)
        .await
        .expect("export");
    String::from_utf8(chunks.concat()).expect("UTF-8")
}

/// The rows of a file, each cell by column name; checks the header first.
fn parse_rows(text: &str) -> Vec<HashMap<String, String>> {
    assert!(text.starts_with(HEADER), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, COLUMNS);
    reader
        .records()
        .map(|record| {
            let record = record.expect("a well-formed row");
            assert_eq!(record.len(), COLUMNS.len());
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn column<'a>(rows: &'a [HashMap<String, String>], name: &str) -> Vec<&'a str> {
    rows.iter().map(|row| row[name].as_str()).collect()
}

fn filter(f: impl FnOnce(&mut pb::ExportUsersRequest)) -> pb::ExportUsersRequest {
    let mut req = pb::ExportUsersRequest::default();
    f(&mut req);
    req
}

async fn create(app: &TestApp, req: pb::CreateUserRequest) -> pb::User {
    app.admin_users()
        .create_user(req)
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user")
}

#[tokio::test]
async fn the_file_has_the_header_then_every_column_of_each_user() {
    let app = spawn_app().await;
    let billing = app.create_team("billing").await;
    let tier2 = app.create_team("Tier 2").await;
    let mut req = create_request(
        "maria@example.com",
        "María del Mar López",
        &["supervisor", "agent"],
    );
    let user = req.user.as_mut().expect("user");
    user.login_id = "mlopez".into();
    user.public_name = "María".into();
    user.max_chats = Some(3);
    user.team_ids = vec![tier2, billing];
    let maria = create(&app, req).await;

    let text = export_text(
        &app,
        &app.admin_token,
        filter(|r| r.query = "maria@".into()),
    )
    .await;
    assert!(!text.contains('\r'), "{text:?}");
    assert!(text.ends_with('\n'), "{text:?}");
    let rows = parse_rows(&text);
    assert_eq!(rows.len(), 1, "{text}");
    let row = &rows[0];
    let created_at = maria.created_at.expect("created_at");
    let expected = [
        ("first_name", "María"),
        ("last_name", "del Mar López"),
        ("login_id", "mlopez"),
        ("email", "maria@example.com"),
        ("roles", "agent;supervisor"),
        ("teams", "billing;Tier 2"),
        ("user_id", &maria.user_id),
        ("display_name", "María del Mar López"),
        ("state", "active"),
        ("locked", "false"),
        ("public_name", "María"),
        ("max_chats", "3"),
        ("last_login_at", ""),
    ];
    for (name, value) in expected {
        assert_eq!(row[name], value, "{name}");
    }
    let exported = chrono::DateTime::parse_from_rfc3339(&row["created_at"]).expect("RFC 3339");
    assert!(row["created_at"].ends_with('Z'), "{}", row["created_at"]);
    assert_eq!(exported.timestamp(), created_at.seconds);

    // After a sign-in; and a user with no login id, no team and the org's
    // default max chats leaves those cells empty.
    app.login("maria@example.com", USER_PASSWORD).await;
    app.create_user("ann@example.com", "Ann", &["agent"]).await;
    let rows = parse_rows(&export_text(&app, &app.admin_token, Default::default()).await);
    assert_eq!(
        column(&rows, "email"),
        ["admin@localhost", "ann@example.com", "maria@example.com"]
    );
    assert!(chrono::DateTime::parse_from_rfc3339(&rows[2]["last_login_at"]).is_ok());
    let ann = &rows[1];
    for name in ["last_name", "login_id", "teams", "public_name", "max_chats"] {
        assert_eq!(ann[name], "", "{name}");
    }
    assert_eq!(ann["first_name"], "Ann");
}

#[tokio::test]
async fn cells_a_spreadsheet_would_run_are_defused() {
    let app = spawn_app().await;
    let names = [
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "+1 Plus",
        "-2",
        "@x Attack",
        "'=quoted",
        "Dash-in-the-middle",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut req = create_request(&format!("f{i}@example.com"), name, &["agent"]);
        req.user.as_mut().expect("user").login_id = format!("@login{i}");
        create(&app, req).await;
    }
    let text = export_text(&app, &app.admin_token, filter(|r| r.role = "agent".into())).await;
    // Quoted for its commas and quotes, with the `'` inside the quotes.
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\""),
        "{text}"
    );
    let rows = parse_rows(&text);
    let by_email: HashMap<&str, &HashMap<String, String>> =
        rows.iter().map(|r| (r["email"].as_str(), r)).collect();
    let expect = [
        ("f0", "'=HYPERLINK(\"http://evil.example\",\"click\")", ""),
        ("f1", "'+1", "Plus"),
        ("f2", "'-2", ""),
        ("f3", "'@x", "Attack"),
        ("f4", "''=quoted", ""),
        ("f5", "Dash-in-the-middle", ""),
    ];
    for (i, (who, first, last)) in expect.into_iter().enumerate() {
        let row = by_email[format!("{who}@example.com").as_str()];
        assert_eq!(row["first_name"], first, "{who}");
        assert_eq!(row["last_name"], last, "{who}");
        assert_eq!(row["login_id"], format!("'@login{i}"), "{who}");
        // The escaping is undone exactly by the rule docs/csv.md gives importers.
        assert_eq!(undefuse(&row["display_name"]), names[i], "{who}");
        assert_eq!(undefuse(&row["login_id"]), format!("@login{i}"), "{who}");
    }
    assert_eq!(by_email["f1@example.com"]["display_name"], "'+1 Plus");
}

#[tokio::test]
async fn commas_and_quotes_in_names_are_quoted() {
    let app = spawn_app().await;
    let team = app.create_team("Sales, \"EMEA\"").await;
    let mut req = create_request("bob@example.com", "Smith, \"Bob\" Jr", &["agent"]);
    let user = req.user.as_mut().expect("user");
    user.public_name = "Bob, the \"builder\"".into();
    user.team_ids = vec![team];
    create(&app, req).await;
    let text = export_text(&app, &app.admin_token, filter(|r| r.query = "bob@".into())).await;
    let line = text.lines().nth(1).expect("a row");
    assert!(
        line.starts_with(
            "\"Smith,\",\"\"\"Bob\"\" Jr\",,bob@example.com,agent,\"Sales, \"\"EMEA\"\"\","
        ),
        "{line}"
    );
    let rows = parse_rows(&text);
    assert_eq!(rows[0]["display_name"], "Smith, \"Bob\" Jr");
    assert_eq!(rows[0]["public_name"], "Bob, the \"builder\"");
    assert_eq!(rows[0]["teams"], "Sales, \"EMEA\"");
}

#[tokio::test]
async fn listing_filters_pick_the_rows() {
    let app = spawn_app().await;
    let team = app.create_team("Tier 1").await;
    let mut req = create_request("member@example.com", "Member", &["agent"]);
    req.user.as_mut().expect("user").team_ids = vec![team.clone()];
    create(&app, req).await;
    app.create_user("sup@example.com", "Sup", &["supervisor"])
        .await;
    app.admin_users()
        .invite_user(pb::InviteUserRequest {
            user: Some(pb::User {
                email: "new@example.com".into(),
                display_name: "Newcomer".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("invited");
    app.login("member@example.com", USER_PASSWORD).await;
    for _ in 0..5 {
        app.try_login("sup@example.com", "wrong wrong wrong")
            .await
            .expect_err("fails");
    }

    let emails = async |req: pb::ExportUsersRequest| -> Vec<String> {
        let rows = parse_rows(&export_text(&app, &app.admin_token, req).await);
        column(&rows, "email")
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let all = emails(Default::default()).await;
    assert_eq!(
        all,
        [
            ADMIN_EMAIL,
            "member@example.com",
            "new@example.com",
            "sup@example.com"
        ]
    );
    assert_eq!(
        emails(filter(|r| r.role = "supervisor".into())).await,
        ["sup@example.com"]
    );
    assert_eq!(
        emails(filter(|r| r.team_id = team.clone())).await,
        ["member@example.com"]
    );
    assert_eq!(
        emails(filter(|r| r.state = pb::UserState::Invited as i32)).await,
        ["new@example.com"]
    );
    assert_eq!(
        emails(filter(|r| r.query = "NEWCOM".into())).await,
        ["new@example.com"]
    );
    assert_eq!(
        emails(filter(|r| r.locked = Some(true))).await,
        ["sup@example.com"]
    );
    assert_eq!(emails(filter(|r| r.locked = Some(false))).await.len(), 3);
    // The admin and the member signed in (UNAVAILABLE); the others never did.
    assert_eq!(
        emails(filter(
            |r| r.presence_status = pb::PresenceStatus::Offline as i32
        ))
        .await,
        ["new@example.com", "sup@example.com"]
    );
    assert_eq!(
        emails(filter(
            |r| r.presence_status = pb::PresenceStatus::Unavailable as i32
        ))
        .await,
        [ADMIN_EMAIL, "member@example.com"]
    );
    // Filters combine; no match is the header alone.
    assert_eq!(
        emails(filter(|r| {
            r.role = "agent".into();
            r.state = pb::UserState::Invited as i32;
        }))
        .await,
        ["new@example.com"]
    );
    let none = export_text(
        &app,
        &app.admin_token,
        filter(|r| r.query = "nobody".into()),
    )
    .await;
    assert_eq!(none, HEADER);

    let invited = parse_rows(
        &export_text(
            &app,
            &app.admin_token,
            filter(|r| r.state = pb::UserState::Invited as i32),
        )
        .await,
    );
    assert_eq!(invited[0]["state"], "invited");
    let locked =
        parse_rows(&export_text(&app, &app.admin_token, filter(|r| r.locked = Some(true))).await);
    assert_eq!(locked[0]["locked"], "true");
}

#[tokio::test]
async fn only_readers_of_the_whole_org_export_and_they_get_everyone() {
    let app = spawn_app().await;
    let team = app.create_team("Alpha").await;
    for (email, role, in_team) in [
        ("lead@example.com", "supervisor", true),
        ("mate@example.com", "agent", true),
        ("solo@example.com", "agent", false),
        ("boss@example.com", "manager", false),
    ] {
        let mut req = create_request(email, email, &[role]);
        if in_team {
            req.user.as_mut().expect("user").team_ids = vec![team.clone()];
        }
        create(&app, req).await;
    }
    // ExportUsers needs users.read (docs/permissions.md): agents and
    // supervisors, who read only themselves or their teams, are refused
    // before anything is read, not handed a partial file.
    for email in ["solo@example.com", "lead@example.com"] {
        let token = app.login(email, USER_PASSWORD).await.session_token;
        let status = export_chunks(&mut app.users_as(&token), Default::default())
            .await
            .expect_err(email);
        assert_eq!(status.code(), Code::PermissionDenied, "{email}");
    }
    let boss = app
        .login("boss@example.com", USER_PASSWORD)
        .await
        .session_token;
    assert_eq!(
        parse_rows(&export_text(&app, &boss, Default::default()).await).len(),
        5
    );

    let key = |scopes: &[&str]| {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let mut auth = app.auth_as(&app.admin_token);
        async move {
            auth.create_api_key(pb::CreateApiKeyRequest {
                api_key: Some(pb::ApiKey {
                    name: format!("export {}", scopes.join(" ")),
                    scopes,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("key created")
            .into_inner()
            .secret
        }
    };
    let reader = key(&["users.read"]).await;
    assert_eq!(
        parse_rows(&export_text(&app, &reader, Default::default()).await).len(),
        5
    );
    let team_reader = key(&["users.read_team"]).await;
    let status = export_chunks(&mut app.users_as(&team_reader), Default::default())
        .await
        .expect_err("users.read_team only");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_org_bigger_than_a_page_streams_every_user_once_in_listing_order() {
    const COUNT: usize = 1_200;
    let app = spawn_app().await;
    // Inserted directly: creating 1,200 users through the API would spend
    // the test's time hashing passwords. Names repeat, so the id breaks ties.
    let ids: Vec<String> = (0..COUNT)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    for batch in ids.chunks(300).enumerate() {
        let (b, ids) = batch;
        let values: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = b * 300 + i;
                let name = format!("Bulk {:03}", (n * 7) % 400);
                let key = name.to_lowercase();
                format!(
                    "('{id}', (SELECT id FROM orgs), 'bulk{n}@example.com', NULL, '{name}', \
                     '{key}', '{key}', '', 'active', NULL, NULL, NULL, '', '', '', '', '', \
                     false, 1, (SELECT created_at FROM orgs), (SELECT created_at FROM orgs), \
                     NULL, NULL, NULL, false)"
                )
            })
            .collect();
        app.sql(&format!(
            "INSERT INTO users (id, org_id, email, login_id, display_name, sort_key, \
             search_text, public_name, state, locked_at, max_chats, login_with, language, \
             landline_phone, mobile_phone, job_title, location, can_view_colleagues_chats, \
             version, created_at, updated_at, last_login_at, last_logout_at, suspend_reason, \
             has_avatar) VALUES {}",
            values.join(", ")
        ))
        .await;
    }
    app.sql(
        "INSERT INTO user_roles (user_id, role_name) \
         SELECT id, 'agent' FROM users WHERE email LIKE 'bulk%'",
    )
    .await;

    let mut users = app.admin_users();
    let chunks = export_chunks(&mut users, filter(|r| r.role = "agent".into()))
        .await
        .expect("export");
    // Several chunks of about 64 KiB, each ending at a row boundary.
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert!(chunk.ends_with(b"\n"));
        assert!(chunk.len() <= 64 * 1024 + 1024, "{}", chunk.len());
    }
    for chunk in &chunks[..chunks.len() - 1] {
        assert!(chunk.len() >= 64 * 1024, "{}", chunk.len());
    }
    let text = String::from_utf8(chunks.concat()).expect("UTF-8");
    let exported: Vec<String> = parse_rows(&text)
        .into_iter()
        .map(|row| row["user_id"].clone())
        .collect();
    assert_eq!(exported.len(), COUNT);
    let mut unique = exported.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), COUNT);

    // The same order as ListUsers, page after page.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = users
            .list_users(pb::ListUsersRequest {
                page_size: 500,
                page_token,
                role: "agent".into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        listed.extend(page.users.into_iter().map(|u| u.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(exported, listed);

    // A client that leaves after the first chunk ends its export; the
    // server goes on serving.
    let mut stream = users
        .export_users(pb::ExportUsersRequest::default())
        .await
        .expect("export")
        .into_inner();
    assert!(stream.message().await.expect("first chunk").is_some());
    drop(stream);
    let again = export_chunks(&mut users, Default::default())
        .await
        .expect("export again");
    assert_eq!(
        parse_rows(&String::from_utf8(again.concat()).expect("UTF-8")).len(),
        COUNT + 1
    );
}

#[tokio::test]
async fn without_credentials_the_export_is_unauthenticated() {
    let app = spawn_app().await;
    let status = UserServiceClient::new(app.channel.clone())
        .export_users(pb::ExportUsersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn bad_filters_are_refused_naming_each_field() {
    let app = spawn_app().await;
    let mut users = app.admin_users();
    let status = export_chunks(
        &mut users,
        pb::ExportUsersRequest {
            query: "q".repeat(201),
            role: "Not a role!".into(),
            team_id: "x".into(),
            state: 42,
            locked: None,
            presence_status: 42,
        },
    )
    .await
    .expect_err("bad filters");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        ["query", "role", "team_id", "state", "presence_status"]
    );
    let status = export_chunks(&mut users, filter(|r| r.role = "NOPE NOPE".into()))
        .await
        .expect_err("bad role");
    assert_eq!(bad_fields(&status), ["role"]);
}
