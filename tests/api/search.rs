//! ListUsers' free-text query: a case-insensitive substring of the display
//! name, public name, email, login id or user id, whatever its length or
//! characters, and whichever way the store finds it (trigram index or scan)
//! or the server answers it (from its in-memory index, or, with the cache
//! off, from the database): each case runs both ways. Expected results are
//! worked out here from the unfiltered listing.

use roster::api::pb;
use tonic::Code;

use crate::helpers::{
    TestApp, TestDatabase, create_request, spawn_app, spawn_app_on, spawn_app_with,
};

/// Every page of a listing with `query`, `page_size` users at a time.
async fn all_pages(app: &TestApp, query: &str, page_size: i32) -> Vec<pb::User> {
    let mut users = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .admin_users()
            .list_users(pb::ListUsersRequest {
                query: query.into(),
                page_size,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("list {query:?}: {e:?}"))
            .into_inner();
        assert!(page.users.len() <= page_size as usize);
        users.extend(page.users);
        if page.next_page_token.is_empty() {
            return users;
        }
        page_token = page.next_page_token;
    }
}

/// Two tests of `case`: served from memory, and from the database.
macro_rules! both_ways {
    ($case:ident) => {
        mod $case {
            #[tokio::test]
            async fn from_memory() {
                super::$case(super::spawn_app().await).await;
            }

            #[tokio::test]
            async fn from_the_database() {
                super::$case(super::spawn_app_with(|config| config.cache_capacity = 0).await).await;
            }
        }
    };
}

fn ids(users: &[pb::User]) -> Vec<&str> {
    users.iter().map(|u| u.user_id.as_str()).collect()
}

fn names(users: &[pb::User]) -> Vec<&str> {
    users.iter().map(|u| u.display_name.as_str()).collect()
}

/// What the query means: `everyone` (the unfiltered listing, in its order)
/// narrowed to the users one of whose fields contains `query`, ignoring case.
fn expected<'a>(everyone: &'a [pb::User], query: &str) -> Vec<&'a str> {
    let query = query.trim().to_lowercase();
    everyone
        .iter()
        .filter(|u| {
            [
                &u.display_name,
                &u.public_name,
                &u.email,
                &u.login_id,
                &u.user_id,
            ]
            .iter()
            .any(|field| field.to_lowercase().contains(&query))
        })
        .map(|u| u.user_id.as_str())
        .collect()
}

async fn create(app: &TestApp, email: &str, name: &str, login_id: &str) -> pb::User {
    let mut req = create_request(email, name, &["agent"]);
    req.user.as_mut().expect("user").login_id = login_id.into();
    app.admin_users()
        .create_user(req)
        .await
        .unwrap_or_else(|e| panic!("create {email}: {e:?}"))
        .into_inner()
        .user
        .expect("user")
}

async fn found(app: &TestApp, query: &str) -> Vec<String> {
    all_pages(app, query, 50)
        .await
        .into_iter()
        .map(|u| u.display_name)
        .collect()
}

/// On SQLite, checks that the trigram index holds exactly the users' text
/// (FTS5 compares it with its content table and fails if they differ).
async fn assert_index_in_step(app: &TestApp) {
    if app.database_url.starts_with("sqlite:") {
        app.sql("INSERT INTO users_search(users_search, rank) VALUES ('integrity-check', 1)")
            .await;
    }
}

/// Checks each query's matches (by name, in any order), and that they come
/// in the unfiltered listing's order, two to a page.
async fn check(app: &TestApp, cases: &[(&str, &[&str])]) {
    let everyone = all_pages(app, "", 500).await;
    for (query, want) in cases {
        let listed = all_pages(app, query, 2).await;
        let mut got = names(&listed);
        got.sort_unstable();
        let mut want = want.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{query:?}");
        assert_eq!(ids(&listed), expected(&everyone, query), "{query:?}");
    }
}

both_ways!(queries_of_any_length_ignore_case_beyond_ascii);
async fn queries_of_any_length_ignore_case_beyond_ascii(app: TestApp) {
    let unal = create(&app, "unal@example.com", "Ünal Şahin", "usahin").await;
    let jose = create(&app, "jose@example.com", "José Álvarez", "jalvarez").await;
    create(&app, "zoe@example.com", "Zoë Quinn", "zquinn").await;
    create(&app, "max@example.de", "Max Mustermann", "mmuster").await;
    create(&app, "desk@example.com", "İstanbul Desk", "idesk").await;
    // Another org's user matches too, but is not the admin's to see.
    app.insert_org_with_user("other", "ghost@example.com", "Ghost Ünal")
        .await;
    let jose_id = jose.user_id.to_uppercase();
    check(
        &app,
        &[
            // Three characters and more: the trigram index on SQLite.
            ("ünal", &["Ünal Şahin"]),
            ("ÜNAL", &["Ünal Şahin"]),
            ("ŞAH", &["Ünal Şahin"]),
            ("JOSÉ", &["José Álvarez"]),
            ("osé álv", &["José Álvarez"]),
            ("jose alvarez", &[]),
            ("zoë quinn", &["Zoë Quinn"]),
            ("quinn zoë", &[]),
            ("İSTANBUL", &["İstanbul Desk"]),
            ("ample.de", &["Max Mustermann"]),
            (
                "EXAMPLE",
                &[
                    "José Álvarez",
                    "Max Mustermann",
                    "Zoë Quinn",
                    "Ünal Şahin",
                    "İstanbul Desk",
                ],
            ),
            (&unal.user_id, &["Ünal Şahin"]),
            (&jose_id, &["José Álvarez"]),
            // Under three characters (two of these are three bytes): a scan.
            ("Ün", &["Ünal Şahin"]),
            ("É", &["José Álvarez"]),
            ("ë", &["Zoë Quinn"]),
            ("mu", &["Max Mustermann"]),
        ],
    )
    .await;
}

both_ways!(query_characters_are_taken_literally);
async fn query_characters_are_taken_literally(app: TestApp) {
    let bob: &[&str] = &["Bob O'Brien \"The Boss\""];
    let rate: &[&str] = &["Rate 100%_off\\sale"];
    let wild: &[&str] = &["Wild 1000 card"];
    create(&app, "bob@example.com", bob[0], "bob").await;
    create(&app, "rate@example.com", rate[0], "r_100%").await;
    create(&app, "wild@example.com", wild[0], "wild").await;
    check(
        &app,
        &[
            ("o'brien", bob),
            ("'", bob),
            ("\"the boss\"", bob),
            ("\"", bob),
            ("s\"", bob),
            ("\"\"", &[]),
            ("\"\"\"", &[]),
            ("100%", rate),
            ("0%_o", rate),
            ("%", rate),
            ("_", rate),
            ("\\", rate),
            ("f\\s", rate),
            ("r_1", rate),
            ("\\\\", &[]),
            // LIKE's wildcards and escape, and FTS5's operators, match only
            // themselves.
            ("1%0", &[]),
            ("1_0", &[]),
            ("w%d", &[]),
            ("c_rd", &[]),
            ("%%", &[]),
            ("%%%", &[]),
            ("___", &[]),
            ("\\%", &[]),
            ("*", &[]),
            ("wil*", &[]),
            ("NEAR(wild", &[]),
            ("wild OR card", &[]),
            ("1000 card", wild),
        ],
    )
    .await;
}

both_ways!(queries_follow_renames_updates_and_deletes);
async fn queries_follow_renames_updates_and_deletes(app: TestApp) {
    let user = create(&app, "first@example.com", "Old Name", "oldlogin").await;
    assert_eq!(found(&app, "old name").await, ["Old Name"]);

    let mut users = app.admin_users();
    let update = |user: pb::User, fields: &[&str]| pb::UpdateUserRequest {
        user: Some(user),
        update_mask: Some(prost_types::FieldMask {
            paths: fields.iter().map(|f| f.to_string()).collect(),
        }),
    };
    let renamed = users
        .update_user(update(
            pb::User {
                display_name: "Nova Person".into(),
                login_id: "novalogin".into(),
                ..user.clone()
            },
            &["display_name", "login_id"],
        ))
        .await
        .expect("renamed")
        .into_inner()
        .user
        .expect("user");
    for (query, want) in [
        ("old name", vec![]),
        ("oldlogin", vec![]),
        ("nova person", vec!["Nova Person"]),
        ("NOVALOGIN", vec!["Nova Person"]),
        ("first@", vec!["Nova Person"]),
    ] {
        assert_eq!(found(&app, query).await, want, "{query:?}");
    }
    assert_index_in_step(&app).await;

    // Changes that leave the searched fields alone keep the user findable.
    let updated = users
        .update_user(update(
            pb::User {
                job_title: "Night shift".into(),
                ..renamed
            },
            &["job_title"],
        ))
        .await
        .expect("updated")
        .into_inner()
        .user
        .expect("user");
    users
        .suspend_user(pb::SuspendUserRequest {
            user_id: updated.user_id.clone(),
            ..Default::default()
        })
        .await
        .expect("suspended");
    assert_eq!(found(&app, "nova person").await, ["Nova Person"]);

    users
        .delete_user(pb::DeleteUserRequest {
            user_id: updated.user_id.clone(),
        })
        .await
        .expect("deleted");
    assert!(found(&app, "nova person").await.is_empty());
    assert!(found(&app, &updated.user_id).await.is_empty());

    // A user created after the delete is found by their own text only.
    create(&app, "second@example.com", "Fresh Face", "fresh").await;
    assert_eq!(found(&app, "fresh face").await, ["Fresh Face"]);
    assert!(found(&app, "nova").await.is_empty());
    assert!(found(&app, "first@").await.is_empty());
    assert_index_in_step(&app).await;
}

both_ways!(paging_through_a_query_returns_each_match_once_in_order);
async fn paging_through_a_query_returns_each_match_once_in_order(app: TestApp) {
    // Enough users that a query common to them all has more matches than
    // the trigram index hands over one by one, plus namesakes whose order
    // is decided by id.
    let mut csv = String::from("first_name,last_name,login_id,email,roles,teams\n");
    for i in 0..2_100 {
        csv.push_str(&format!("Bulk,{i:04},,bulk{i:04}@example.com,agent,\n"));
    }
    for i in 0..3 {
        csv.push_str(&format!("Bulk,Twin,,twin{i}@example.net,agent,\n"));
    }
    for i in 0..40 {
        csv.push_str(&format!("Other,{i:04},,other{i:04}@example.org,agent,\n"));
    }
    let job = app
        .admin_users()
        .import_users(tokio_stream::iter([
            pb::ImportUsersRequest {
                file_name: "people.csv".into(),
                ..Default::default()
            },
            pb::ImportUsersRequest {
                chunk: csv.into_bytes(),
                ..Default::default()
            },
        ]))
        .await
        .expect("import")
        .into_inner()
        .import_job
        .expect("job");
    assert_eq!(job.imported_rows, 2_143, "{job:?}");

    assert_index_in_step(&app).await;
    let everyone = all_pages(&app, "", 500).await;
    assert_eq!(everyone.len(), 2_144);
    for (query, page_size) in [
        ("bulk", 500),      // common: every imported user but the others
        ("BULK 1", 97),     // a thousand matches
        ("bulk 00", 7),     // a hundred
        ("bulk 0042", 1),   // one
        ("bulk twin", 2),   // namesakes, ordered by id
        ("@example.", 300), // everyone but the admin
        ("k0", 250),        // two characters: the scan
        ("0", 400),         // one character
        ("none such", 5),
    ] {
        let listed = all_pages(&app, query, page_size).await;
        assert_eq!(ids(&listed), expected(&everyone, query), "{query:?}");
    }
    let twins = all_pages(&app, "twin", 1).await;
    assert_eq!(names(&twins), ["Bulk Twin"; 3]);

    // A page token carries on only the query it was issued for.
    let first = app
        .admin_users()
        .list_users(pb::ListUsersRequest {
            query: "bulk".into(),
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    let status = app
        .admin_users()
        .list_users(pb::ListUsersRequest {
            query: "bulk 1".into(),
            page_size: 10,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("another query");
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// Names sort by their bytes (UTF-8, so code points) on every store and
/// under any database collation: under a locale's, `Éa` would come before `F`.
#[tokio::test]
async fn names_sort_bytewise_whatever_the_database_collation() {
    let database = TestDatabase::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
    )
    .await;
    let app = spawn_app_on(database).await;
    create(&app, "ea@example.com", "Éa", "ea").await;
    create(&app, "f@example.com", "F", "f").await;
    // After the admin, "Admin".
    let everyone = all_pages(&app, "", 10).await;
    assert_eq!(names(&everyone)[1..], ["F", "Éa"]);
    let found = all_pages(&app, "@example.com", 10).await;
    assert_eq!(names(&found), ["F", "Éa"]);
}
