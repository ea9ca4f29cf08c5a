//! Spawns the real server on 127.0.0.1:0 with a fresh database per test:
//! a temporary SQLite file, or, when `ROSTER_TEST_DATABASE_URL` names a
//! PostgreSQL server, a new database there that is dropped afterwards.

use std::net::SocketAddr;

use roster::{
    api::{
        Bearer,
        pb::{
            self, auth_service_client::AuthServiceClient, org_service_client::OrgServiceClient,
            platform_service_client::PlatformServiceClient, user_service_client::UserServiceClient,
        },
    },
    app::App,
    audit::Origin,
    config::Config,
    domain::ApiKeyName,
};
use sea_orm::{ConnectionTrait, Database};
use tonic::{Status, service::interceptor::InterceptedService, transport::Channel};

pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const ORG: &str = "acme";

pub struct TestApp {
    pub addr: SocketAddr,
    pub channel: Channel,
    /// A session token of the bootstrap admin.
    pub admin_token: String,
    pub database_url: String,
    server: Server,
    _database: TestDatabase,
}

/// In this process (most tests), or a `rosterd` process of its own (tests
/// of process-wide settings such as telemetry).
enum Server {
    Task(tokio::task::JoinHandle<()>),
    Process(Rosterd),
}

pub type Users = UserServiceClient<InterceptedService<Channel, Bearer>>;
pub type Auth = AuthServiceClient<InterceptedService<Channel, Bearer>>;
pub type Platform = PlatformServiceClient<InterceptedService<Channel, Bearer>>;

pub async fn spawn_app() -> TestApp {
    let database = TestDatabase::create().await;
    spawn_app_on(database).await
}

/// A server whose configuration the test adjusts first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::create().await;
    spawn_configured(database, configure).await
}

/// A server on `url` (the test's database behind a proxy, say); `database`
/// stays the test's own, for its SQL and to be dropped.
pub async fn spawn_app_through(database: TestDatabase, url: String) -> TestApp {
    spawn_configured(database, |c| c.database_url = url).await
}

pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    spawn_configured(database, |_| {}).await
}

async fn spawn_configured(database: TestDatabase, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::for_tests(database.url.clone());
    config.bootstrap_org = ORG.into();
    config.bootstrap_admin_email = ADMIN_EMAIL.into();
    config.bootstrap_admin_password = Some(ADMIN_PASSWORD.into());
    configure(&mut config);
    let (addr, server) = start(config).await;
    signed_in(addr, Server::Task(server), database).await
}

/// A `rosterd` process on a fresh database, with more environment.
pub async fn spawn_rosterd(env: &[(&str, String)]) -> TestApp {
    let database = TestDatabase::create().await;
    let rosterd = Rosterd::start_with(&database.url, env).await;
    signed_in(rosterd.addr, Server::Process(rosterd), database).await
}

/// Connects to the server at `addr` and signs the admin in.
async fn signed_in(addr: SocketAddr, server: Server, database: TestDatabase) -> TestApp {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("connect to the server");
    let mut app = TestApp {
        addr,
        channel,
        admin_token: String::new(),
        database_url: database.url.clone(),
        server,
        _database: database,
    };
    app.admin_token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.session_token;
    app
}

/// Builds and runs a server with `config`, returning its address.
pub async fn start(config: Config) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = App::build(config).await.expect("server builds");
    let addr = app.local_addr();
    let server = tokio::spawn(async move {
        app.run_until(std::future::pending())
            .await
            .expect("server runs");
    });
    (addr, server)
}

/// A server that serves until [`Stoppable::stop`], with a channel to it.
pub struct Stoppable {
    pub channel: Channel,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<Result<(), roster::app::StartError>>,
}

impl Stoppable {
    pub async fn start(config: Config) -> Self {
        let app = App::build(config).await.expect("server builds");
        let addr = app.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            stopped.await.ok();
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            channel,
            stop: Some(stop),
            server,
        }
    }

    /// Tells the server to stop, as SIGTERM would.
    pub fn stop(&mut self) {
        self.stop
            .take()
            .expect("stopped once")
            .send(())
            .expect("server listening for stop");
    }
}

fn bearer(token: &str) -> Bearer {
    Bearer::new(token).expect("token is header text")
}

impl TestApp {
    /// The admin's bearer interceptor, for clients of any service.
    pub fn bearer(&self) -> Bearer {
        bearer(&self.admin_token)
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    pub fn auth_as(&self, token: &str) -> Auth {
        AuthServiceClient::with_interceptor(self.channel.clone(), bearer(token))
    }

    pub fn users_as(&self, token: &str) -> Users {
        UserServiceClient::with_interceptor(self.channel.clone(), bearer(token))
    }

    pub fn admin_users(&self) -> Users {
        self.users_as(&self.admin_token)
    }

    pub async fn try_login(
        &self,
        login: &str,
        password: &str,
    ) -> Result<pb::LoginResponse, Status> {
        self.auth()
            .login(pb::LoginRequest {
                org: ORG.into(),
                login: login.into(),
                password: password.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn login(&self, login: &str, password: &str) -> pb::LoginResponse {
        self.try_login(login, password)
            .await
            .expect("login succeeds")
    }

    /// Creates a user as the admin, with the given roles and a known password.
    pub async fn create_user(&self, email: &str, name: &str, roles: &[&str]) -> pb::User {
        self.admin_users()
            .create_user(create_request(email, name, roles))
            .await
            .expect("user created")
            .into_inner()
            .user
            .expect("user in response")
    }
}

pub const USER_PASSWORD: &str = "a long enough password";

pub fn create_request(email: &str, name: &str, roles: &[&str]) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        user: Some(pb::User {
            email: email.into(),
            display_name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }),
        password: USER_PASSWORD.into(),
        ..Default::default()
    }
}

impl TestApp {
    /// The secret of a new platform key, made on the database as
    /// `rosterd platform-keys create NAME` makes it.
    pub async fn platform_key(&self, name: &str) -> String {
        let keys = roster::operator::platform_keys(&Config::for_tests(self.database_url.clone()))
            .await
            .expect("open the database");
        keys.create_platform_key(
            ApiKeyName::parse(name).expect("key name"),
            &Origin::default(),
        )
        .await
        .expect("platform key created")
        .expect("a new name")
        .secret
    }

    /// A PlatformService client that calls with `secret`.
    pub fn platform_as(&self, secret: &str) -> Platform {
        PlatformServiceClient::with_interceptor(self.channel.clone(), bearer(secret))
    }

    /// Runs one SQL statement on the test's database (for set-up that has
    /// no RPC, or to look behind the API).
    pub async fn sql(&self, statement: &str) {
        let db = Database::connect(&self.database_url).await.expect("db");
        db.execute_unprepared(statement).await.expect("sql");
        db.close().await.ok();
    }

    /// The first column of every row of a query, as text.
    pub async fn sql_strings(&self, query: &str) -> Vec<String> {
        let db = Database::connect(&self.database_url).await.expect("db");
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                query,
            ))
            .await
            .expect("query");
        db.close().await.ok();
        rows.iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("text column"))
            .collect()
    }

    /// A second org (slug `slug`) with one active user, inserted directly
    /// (a set-up that needs no platform key). Returns the user's id.
    pub async fn insert_org_with_user(&self, slug: &str, email: &str, name: &str) -> String {
        let (org, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let key = name.to_lowercase();
        self.sql(&format!(
            "INSERT INTO orgs (id, slug, name, created_at, seat_limit, default_max_chats, \
             password_min_length, lockout_threshold, lockout_duration_secs, login_with, \
             invite_lifetime_secs, session_lifetime_secs, presence_lease_secs, version) \
             SELECT '{org}', '{slug}', '{slug}', created_at, NULL, 6, 8, 5, 0, 'both', \
             604800, 43200, 60, 1 FROM orgs LIMIT 1"
        ))
        .await;
        self.sql(&format!(
            "INSERT INTO users (id, org_id, email, login_id, display_name, sort_key, search_text, \
             public_name, state, locked_at, max_chats, login_with, language, landline_phone, \
             mobile_phone, job_title, location, can_view_colleagues_chats, version, created_at, \
             updated_at, last_login_at, last_logout_at, suspend_reason, has_avatar) \
             SELECT '{user}', '{org}', '{email}', NULL, '{name}', '{key}', '{key}', '', 'active', \
             NULL, NULL, NULL, '', '', '', '', '', false, 1, created_at, created_at, NULL, NULL, \
             NULL, false FROM orgs LIMIT 1"
        ))
        .await;
        user.to_string()
    }

    /// An admin of a second org (slug `slug`), inserted directly: a user
    /// from [`TestApp::insert_org_with_user`] with the admin role and the
    /// password of user `password_of`, copied as its hash. Returns their id.
    pub async fn insert_org_admin(
        &self,
        slug: &str,
        email: &str,
        name: &str,
        password_of: &str,
    ) -> String {
        let user = self.insert_org_with_user(slug, email, name).await;
        self.sql(&format!(
            "INSERT INTO user_roles (user_id, role_name) VALUES ('{user}', 'admin')"
        ))
        .await;
        self.sql(&format!(
            "INSERT INTO credentials (user_id, password_hash, password_change_required, \
             failed_logins, updated_at) SELECT '{user}', password_hash, false, 0, updated_at \
             FROM credentials WHERE user_id = '{password_of}'"
        ))
        .await;
        user
    }

    /// Changes the org's settings named in `paths` through the API, as its
    /// admin (a change made behind the service's back would not reach its
    /// cached reads).
    pub async fn update_org(&self, settings: pb::OrgSettings, paths: &[&str]) {
        OrgServiceClient::with_interceptor(self.channel.clone(), self.bearer())
            .update_org_settings(pb::UpdateOrgSettingsRequest {
                settings: Some(settings),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
            })
            .await
            .expect("org settings updated");
    }

    /// Creates a team as the admin; returns its id.
    pub async fn create_team(&self, name: &str) -> String {
        OrgServiceClient::with_interceptor(self.channel.clone(), self.bearer())
            .create_team(pb::CreateTeamRequest {
                team: Some(pb::Team {
                    name: name.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("team created")
            .into_inner()
            .team
            .expect("team")
            .team_id
    }

    /// The bootstrap admin's user id.
    pub async fn admin_id(&self) -> String {
        self.auth_as(&self.admin_token)
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .expect("whoami")
            .into_inner()
            .user
            .expect("user")
            .user_id
    }

    pub async fn get_user(&self, user_id: &str) -> Result<pb::User, Status> {
        self.admin_users()
            .get_user(pb::GetUserRequest {
                user_id: user_id.into(),
            })
            .await
            .map(|r| r.into_inner().user.expect("user"))
    }
}

impl TestApp {
    /// What the `rosterd` process logged so far (empty in this process).
    pub fn process_log(&self) -> String {
        match &self.server {
            Server::Process(rosterd) => rosterd.log_text(),
            Server::Task(_) => String::new(),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A process kills itself on drop.
        if let Server::Task(task) = &self.server {
            task.abort();
        }
    }
}

/// The `ErrorInfo.reason` of a status.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| {
            assert_eq!(info.domain, "roster.v1");
            info.reason
        })
        .unwrap_or_default()
}

/// The fields named by a status's BadRequest violations.
pub fn bad_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A `rosterd` process of the test's own, killed (SIGKILL) when dropped so
/// a failing test leaves no server behind. Its log goes to a file, shown
/// when it fails to start.
pub struct Rosterd {
    child: std::process::Child,
    pub addr: SocketAddr,
    /// Where health answers in plaintext: `ROSTER_HEALTH_LISTEN` when the
    /// environment names it, else `addr`.
    health: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl Rosterd {
    /// Starts the real binary on `database_url` and waits until its health
    /// service says SERVING.
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[]).await
    }

    /// [`Rosterd::start`] with more environment (telemetry settings, say).
    /// The port is found free just before; should another process take it
    /// first, the server exits and is started again on another.
    pub async fn start_with(database_url: &str, env: &[(&str, String)]) -> Self {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = tempfile::NamedTempFile::new().expect("log file");
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"));
            command
                .env("DATABASE_URL", database_url)
                .env("ROSTER_LISTEN", addr.to_string())
                .env("ROSTER_BOOTSTRAP_ORG", ORG)
                .env("ROSTER_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("ROSTER_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("ROSTER_PASSWORD_HASHING", "insecure-fast")
                .env("ROSTER_LOG_LEVEL", "warn")
                // An upload must not be cut short by the server's own
                // per-request limit on a slow machine.
                .env("ROSTER_REQUEST_TIMEOUT_SECS", "3600")
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("ROSTER_METRICS_LISTEN")
                .env_remove("ROSTER_SMTP_URL")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(std::process::Stdio::null())
                .stdout(log.reopen().expect("log file"))
                .stderr(log.reopen().expect("log file"));
            let child = command.spawn().expect("rosterd starts");
            let health = env
                .iter()
                .find(|(k, _)| *k == "ROSTER_HEALTH_LISTEN")
                .map_or(addr, |(_, v)| v.parse().expect("a health address"));
            let mut server = Self {
                child,
                addr,
                health,
                log,
            };
            if server.wait_until_serving().await {
                return server;
            }
        }
        panic!("rosterd did not start on any of 5 ports");
    }

    /// `true` once SERVING; `false` if the process exited first (its log
    /// is printed); fails the test if neither happens within 3 minutes.
    async fn wait_until_serving(&mut self) -> bool {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(180);
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("rosterd status") {
                eprintln!("rosterd exited with {status}: {}", self.log_text());
                return false;
            }
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.health))
                .expect("uri")
                .connect()
                .await
                && let Ok(answer) = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                && answer.into_inner().status == ServingStatus::Serving as i32
            {
                // The answer may come from another server that took the
                // port first (rosterd binds after migrating): only ours counts.
                if listens_on(self.child.id(), self.health.port()) {
                    return true;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("rosterd not SERVING after 3 minutes: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, as when a machine dies.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill rosterd");
        self.child.wait().expect("reap rosterd");
    }
}

/// Whether process `pid` holds the listening TCP socket of `port` (Linux:
/// the socket's inode in /proc/net/tcp among the process's descriptors;
/// elsewhere this cannot be told, and it is taken to).
fn listens_on(pid: u32, port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .collect();
    if tables.is_empty() {
        return true;
    }
    let inodes: Vec<String> = tables
        .into_iter()
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local address, state 0A (LISTEN), inode
                    (fields.len() > 9 && fields[1].ends_with(&wanted) && fields[3] == "0A")
                        .then(|| fields[9].to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| {
            let target = target.to_string_lossy();
            inodes
                .iter()
                .any(|inode| target == format!("socket:[{inode}]"))
        })
}

impl Drop for Rosterd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database of its own for one test.
pub struct TestDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// On PostgreSQL, a database made with these further `CREATE DATABASE`
    /// options (a collation, say).
    pub async fn create_with(options: &str) -> Self {
        match std::env::var("ROSTER_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => Self::postgres(admin_url, options).await,
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("roster.db").display());
                Self {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    async fn postgres(admin_url: String, options: &str) -> Self {
        let name = format!("roster_test_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\" {options}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("ROSTER_TEST_DATABASE_URL ends in /DATABASE");
        Self {
            url: format!("{base}/{name}"),
            postgres: Some((admin_url, name)),
            _dir: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await
                        .ok();
                    admin.close().await.ok();
                }
            });
        })
        .join()
        .ok();
    }
}

/// Passes already-encoded messages through: what a dynamic client does with
/// messages it built from descriptors.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        let len = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, len).to_vec()))
    }
}
