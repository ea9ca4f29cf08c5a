//! The standard services, the contract's surface, bootstrap and shutdown.

use std::time::Duration;

use prost::Message;
use roster::{api::pb, app::App, config::Config};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ORG, RawCodec, Rosterd, Stoppable, TestDatabase, reason,
    spawn_app, spawn_app_on, start,
};

const SERVICES: [&str; 7] = [
    "roster.v1.AuthService",
    "roster.v1.UserService",
    "roster.v1.PresenceService",
    "roster.v1.OrgService",
    "roster.v1.AuditService",
    "roster.v1.ReportService",
    "roster.v1.PlatformService",
];

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in std::iter::once("").chain(SERVICES) {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

/// Asks the v1 reflection service one question and returns its answer.
async fn reflect_v1(
    channel: Channel,
    question: v1::server_reflection_request::MessageRequest,
) -> v1::server_reflection_response::MessageResponse {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(question),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    responses
        .next()
        .await
        .expect("a response")
        .expect("ok")
        .message_response
        .expect("an answer")
}

/// The file descriptors reflection answers for the file holding `symbol`.
async fn files_containing(channel: Channel, symbol: &str) -> Vec<prost_types::FileDescriptorProto> {
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) =
        reflect_v1(
            channel,
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.into()),
        )
        .await
    else {
        panic!("{symbol}: no file descriptor");
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("descriptor")
        })
        .collect()
}

async fn list_services_v1(channel: Channel) -> Vec<String> {
    match reflect_v1(
        channel,
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
    )
    .await
    {
        v1::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service() {
    let app = spawn_app().await;
    let names = list_services_v1(app.channel.clone()).await;
    for service in SERVICES.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses
            .next()
            .await
            .expect("a response")
            .expect("ok")
            .message_response
    else {
        panic!("unexpected v1alpha answer");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "roster.v1.UserService")
    );
}

/// The error details Roster sends are described by reflection, and so is
/// what they import, so a generic client decodes them (grpcurl, `buf curl`).
#[tokio::test]
async fn reflection_describes_the_error_details_roster_sends() {
    let app = spawn_app().await;
    for (symbol, fields) in [
        (
            "google.rpc.ErrorInfo",
            &["reason", "domain", "metadata"][..],
        ),
        ("google.rpc.BadRequest", &["field_violations"][..]),
        ("google.rpc.PreconditionFailure", &["violations"][..]),
        ("google.rpc.QuotaFailure", &["violations"][..]),
        ("google.rpc.Status", &["code", "message", "details"][..]),
    ] {
        let files = files_containing(app.channel.clone(), symbol).await;
        let name = symbol.trim_start_matches("google.rpc.");
        let message = files
            .iter()
            .filter(|f| f.package() == "google.rpc")
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{symbol} not described"));
        for field in fields {
            assert!(
                message.field.iter().any(|f| f.name() == *field),
                "{symbol} lacks {field}"
            );
        }
        // What the files import is described too (clients ask by file name).
        for import in files.iter().flat_map(|f| &f.dependency) {
            let answer = reflect_v1(
                app.channel.clone(),
                v1::server_reflection_request::MessageRequest::FileByFilename(import.clone()),
            )
            .await;
            assert!(
                matches!(
                    answer,
                    v1::server_reflection_response::MessageResponse::FileDescriptorResponse(_)
                ),
                "{symbol}: {import} not described: {answer:?}"
            );
        }
    }
}

/// What a client that has only reflection does: fetch the descriptor of
/// `AuthService`, find `Login` and its request fields by name, build the
/// request from field numbers alone, and call it.
#[tokio::test]
async fn a_client_with_only_reflection_can_sign_in() {
    let app = spawn_app().await;
    let files = files_containing(app.channel.clone(), "roster.v1.AuthService").await;
    let message = |name: &str| {
        files
            .iter()
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{name} not described"))
            .clone()
    };
    let service = files
        .iter()
        .flat_map(|f| &f.service)
        .find(|s| s.name() == "AuthService")
        .expect("AuthService described");
    let login = service
        .method
        .iter()
        .find(|m| m.name() == "Login")
        .expect("Login");
    assert_eq!(login.input_type(), ".roster.v1.LoginRequest");
    let field_number = |msg: &prost_types::DescriptorProto, name: &str| {
        msg.field
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} not in {}", msg.name()))
            .number() as u32
    };
    let request_type = message("LoginRequest");
    let mut body = Vec::new();
    for (name, value) in [
        ("org", ORG),
        ("login", ADMIN_EMAIL),
        ("password", ADMIN_PASSWORD),
    ] {
        prost::encoding::string::encode(
            field_number(&request_type, name),
            &value.to_string(),
            &mut body,
        );
    }
    let token_field = field_number(&message("LoginResponse"), "session_token");

    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let response = grpc
        .unary(
            tonic::Request::new(body),
            "/roster.v1.AuthService/Login".parse().expect("path"),
            RawCodec,
        )
        .await
        .expect("login through reflection")
        .into_inner();
    let token = read_string_field(&response, token_field).expect("session_token in response");
    assert!(token.starts_with("rs_"));
}

/// The string value of field `number` in an encoded message.
fn read_string_field(mut bytes: &[u8], number: u32) -> Option<String> {
    use prost::encoding::{DecodeContext, WireType, decode_key, skip_field};
    while !bytes.is_empty() {
        let (tag, wire_type) = decode_key(&mut bytes).ok()?;
        if tag == number && wire_type == WireType::LengthDelimited {
            let mut value = String::new();
            prost::encoding::string::merge(
                wire_type,
                &mut value,
                &mut bytes,
                DecodeContext::default(),
            )
            .ok()?;
            return Some(value);
        }
        skip_field(wire_type, tag, &mut bytes, DecodeContext::default()).ok()?;
    }
    None
}

#[tokio::test]
async fn a_restart_on_a_used_database_bootstraps_nothing() {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let app = spawn_app_on(database).await;
    let mut config = Config::for_tests(url);
    config.bootstrap_org = "other".into();
    config.bootstrap_admin_email = "other@example.com".into();
    config.bootstrap_admin_password = Some("another long password".into());
    let (addr, server) = start(config).await;
    let mut auth = pb::auth_service_client::AuthServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let status = auth
        .login(pb::LoginRequest {
            org: "other".into(),
            login: "other@example.com".into(),
            password: "another long password".into(),
        })
        .await
        .expect_err("no second org");
    assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    auth.login(pb::LoginRequest {
        org: ORG.into(),
        login: ADMIN_EMAIL.into(),
        password: ADMIN_PASSWORD.into(),
    })
    .await
    .expect("the first admin still signs in");
    server.abort();
    drop(app);
}

#[tokio::test]
async fn a_bootstrap_password_that_breaks_the_policy_stops_start_up() {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.bootstrap_admin_password = Some("short".into());
    let err = App::build(config).await.err().expect("refused");
    assert!(
        err.to_string().contains("ROSTER_BOOTSTRAP_ADMIN_PASSWORD"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_drains_and_stops_within_the_grace_period() {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.shutdown_grace_secs = 2;
    let mut server = Stoppable::start(config).await;
    HealthClient::new(server.channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("serving");
    server.stop();
    tokio::time::timeout(Duration::from_secs(10), server.server)
        .await
        .expect("stops within the grace period")
        .expect("task")
        .expect("clean stop");
}

/// The number of orgs in the database at `url`.
async fn org_count(url: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(url).await.expect("db");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM orgs",
        ))
        .await
        .expect("count")
        .expect("a row");
    db.close().await.ok();
    row.try_get_by_index::<i64>(0).expect("a count")
}

#[tokio::test]
async fn a_port_in_use_stops_start_up_before_anything_is_created() {
    let database = TestDatabase::create().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let mut config = Config::for_tests(database.url.clone());
    config.listen = taken.local_addr().expect("address");
    let err = App::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    assert_eq!(
        org_count(&database.url).await,
        0,
        "nothing was bootstrapped"
    );
}

#[tokio::test]
async fn migrate_brings_the_schema_up_and_no_migrate_refuses_one_that_is_not() {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.no_migrate = true;
    let err = App::build(config.clone()).await.err().expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("missing migrations m2026") && message.contains("rosterd migrate"),
        "{message}"
    );

    // The real binary's `migrate`, as a deployment job runs it: the URL
    // from a mounted secret file.
    let secret = tempfile::NamedTempFile::new().expect("secret file");
    std::fs::write(secret.path(), format!("{}\n", database.url)).expect("secret written");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("migrate")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/not-this-one")
        .env("ROSTER_DATABASE_URL_FILE", secret.path())
        .env("ROSTER_LOG_LEVEL", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("ROSTER_METRICS_LISTEN")
        .output()
        .expect("rosterd migrate runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("the database schema is current"), "{log}");
    assert_eq!(
        org_count(&database.url).await,
        0,
        "migrate bootstraps nothing"
    );
    assert!(
        roster::app::migrate(&config)
            .await
            .expect("again")
            .is_empty(),
        "a second migrate has nothing to do"
    );

    let (_, server) = start(config).await;
    server.abort();
    assert_eq!(
        org_count(&database.url).await,
        1,
        "started and bootstrapped"
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_is_named_with_the_cause() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no such folder").join("roster.db");
    for (url, expected) in [
        (
            "postgres://roster@127.0.0.1:1/roster".to_owned(),
            vec![
                "PostgreSQL 127.0.0.1:1 (database roster, user roster)",
                "refused",
            ],
        ),
        (
            format!("sqlite://{}", missing.display()),
            vec![missing.to_str().expect("path")],
        ),
    ] {
        let err = App::build(Config::for_tests(url.clone()))
            .await
            .err()
            .expect("refused");
        let message = err.to_string();
        for part in expected {
            assert!(message.contains(part), "{url}: {message}");
        }
    }
}

/// `rosterd admin …` on the database at `url`, with `stdin`; returns
/// whether it succeeded and what it printed.
fn rosterd_admin(url: &str, args: &[&str], stdin: &str) -> (bool, String) {
    let args: Vec<&str> = ["admin"].iter().chain(args).copied().collect();
    rosterd_at(url, &args, stdin)
}

/// `rosterd ARGS` (an operator command) on the database at `url`.
fn rosterd_at(url: &str, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("ROSTER_PASSWORD_HASHING", "insecure-fast")
        .env("ROSTER_LOG_LEVEL", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("ROSTER_METRICS_LISTEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rosterd admin runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let output = child.wait_with_output().expect("rosterd admin ends");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test]
async fn an_operator_unlocks_and_resets_the_only_admin_offline_and_it_is_audited() {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.bootstrap_org = ORG.into();
    config.bootstrap_admin_email = ADMIN_EMAIL.into();
    config.bootstrap_admin_password = Some(ADMIN_PASSWORD.into());
    let login = |addr: std::net::SocketAddr, password: &'static str| async move {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        roster::api::pb::auth_service_client::AuthServiceClient::new(channel)
            .login(pb::LoginRequest {
                org: ORG.into(),
                login: ADMIN_EMAIL.into(),
                password: password.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    };
    let (addr, server) = start(config.clone()).await;
    for _ in 0..5 {
        login(addr, "not the password").await.expect_err("refused");
    }
    login(addr, ADMIN_PASSWORD)
        .await
        .expect_err("the only admin is locked out");
    server.abort();
    let _ = server.await;

    let url = &database.url;
    let (ok, printed) = rosterd_admin(
        url,
        &["unlock", "--org", "nope", "--login", ADMIN_EMAIL],
        "",
    );
    assert!(
        !ok && printed.contains("no org with slug \"nope\""),
        "{printed}"
    );
    let (ok, printed) = rosterd_admin(
        url,
        &["unlock", "--org", ORG, "--login", "who@example.com"],
        "",
    );
    assert!(!ok && printed.contains("no user signs in as"), "{printed}");
    let (ok, printed) = rosterd_admin(url, &["unlock", "--org", ORG, "--login", ADMIN_EMAIL], "");
    assert!(ok && printed.contains("is unlocked"), "{printed}");
    let reset = [
        "reset-password",
        "--org",
        ORG,
        "--login",
        ADMIN_EMAIL,
        "--password-stdin",
    ];
    let (ok, printed) = rosterd_admin(url, &reset, "short\n");
    assert!(
        !ok && printed.contains("password:"),
        "the org's policy holds: {printed}"
    );
    let (ok, printed) = rosterd_admin(url, &reset, "a brand new admin password\n");
    assert!(ok && printed.contains("must be changed"), "{printed}");
    let (ok, printed) = rosterd_admin(url, &reset[..5], "");
    assert!(ok && printed.contains("shown only this once"), "{printed}");
    let generated = printed
        .lines()
        .find_map(|l| l.strip_prefix("New password (shown only this once): "))
        .expect("the generated password")
        .to_owned();

    let (addr, server) = start(config).await;
    login(addr, "a brand new admin password")
        .await
        .expect_err("replaced by the generated one");
    let generated: &'static str = generated.leak();
    let signed_in = login(addr, generated)
        .await
        .expect("the admin signs in again");
    assert!(signed_in.password_change_required);
    server.abort();

    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(url.as_str()).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT action FROM audit_events WHERE actor_kind = 'system' \
             AND request_id = 'rosterd-admin' ORDER BY occurred_at",
        ))
        .await
        .expect("audit");
    let actions: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("action"))
        .collect();
    db.close().await.ok();
    assert_eq!(
        actions,
        ["user.unlock", "user.password_reset", "user.password_reset"]
    );
}

#[tokio::test]
async fn rosterd_probe_tells_a_serving_server_from_none() {
    let database = TestDatabase::create().await;
    let server = crate::helpers::Rosterd::start(&database.url).await;
    let probe = |addr: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("probe")
            .env("ROSTER_LISTEN", addr)
            .env("ROSTER_LOG_LEVEL", "error")
            .env_remove("ROSTER_METRICS_LISTEN")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .output()
            .expect("rosterd probe runs")
    };
    let serving = probe(format!("0.0.0.0:{}", server.addr.port()));
    assert!(serving.status.success(), "{serving:?}");
    assert_eq!(String::from_utf8_lossy(&serving.stdout).trim(), "SERVING");
    drop(server);
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    let nobody = probe(unused.to_string());
    assert!(!nobody.status.success(), "{nobody:?}");
}

#[tokio::test]
async fn platform_keys_are_made_listed_and_revoked_at_the_console() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let (ok, printed) = rosterd_at(&url, &["platform-keys", "create", "signup"], "");
    assert!(ok, "{printed}");
    let secret = printed
        .split_whitespace()
        .find(|w| w.starts_with("rpk_"))
        .expect("the secret is printed")
        .to_owned();
    app.platform_as(&secret)
        .list_orgs(pb::ListOrgsRequest::default())
        .await
        .expect("the printed secret calls PlatformService");
    let (ok, printed) = rosterd_at(&url, &["platform-keys", "create", "signup"], "");
    assert!(!ok && printed.contains("exists already"), "{printed}");

    let (ok, listed) = rosterd_at(&url, &["platform-keys", "list"], "");
    assert!(
        ok && listed.contains("signup") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "never the secret: {listed}");

    let (ok, printed) = rosterd_at(&url, &["platform-keys", "revoke", "signup"], "");
    assert!(ok, "{printed}");
    let status = app
        .platform_as(&secret)
        .list_orgs(pb::ListOrgsRequest::default())
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let (ok, printed) = rosterd_at(&url, &["platform-keys", "revoke", "signup"], "");
    assert!(!ok && printed.contains("no live platform key"), "{printed}");
    let (ok, printed) = rosterd_at(&url, &["platform-keys", "create", ""], "");
    assert!(
        !ok && printed.contains("invalid platform key name"),
        "{printed}"
    );
}

#[tokio::test]
async fn a_platform_key_named_at_start_is_made_once_and_its_secret_logged() {
    let database = TestDatabase::create().await;
    let env = [("ROSTER_BOOTSTRAP_PLATFORM_KEY", "signup-backend".to_owned())];
    let mut first = Rosterd::start_with(&database.url, &env).await;
    let log = first.log_text();
    let secret = log
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_-".contains(c)))
        .find(|w| w.starts_with("rpk_"))
        .unwrap_or_else(|| panic!("the secret is logged: {log}"))
        .to_owned();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", first.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    roster::api::pb::platform_service_client::PlatformServiceClient::with_interceptor(
        channel,
        roster::api::Bearer::new(&secret).expect("header text"),
    )
    .list_orgs(pb::ListOrgsRequest::default())
    .await
    .expect("the logged secret calls PlatformService");
    first.kill();

    // A restart with the same setting makes no second key.
    let second = Rosterd::start_with(&database.url, &env).await;
    assert!(!second.log_text().contains("rpk_"), "{}", second.log_text());
    let (ok, listed) = rosterd_at(&database.url, &["platform-keys", "list"], "");
    assert!(ok, "{listed}");
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.starts_with("signup-backend"))
            .count(),
        1
    );
}
