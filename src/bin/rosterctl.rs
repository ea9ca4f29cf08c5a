//! `rosterctl`: the command-line client of Roster, for people.
//!
//! `rosterctl login` signs in and keeps the session (server, org, bearer
//! token, expiry) in `<config dir>/roster/session.json`, readable by its owner
//! only; every other command reads the token from there and sends it as
//! `authorization: Bearer <token>`. The config dir is `$ROSTER_CONFIG_DIR`
//! when set, else the platform's (e.g. `~/.config`). The server is
//! `--server`/`$ROSTER_SERVER` when given, else the session's, else
//! `http://127.0.0.1:50051`.
//!
//! Output contract: results go to stdout, as tables for people or, with
//! `--json`, as one JSON document (timestamps in RFC 3339, enums by their
//! proto names) for scripts. Everything else (notes, the next page token,
//! errors) goes to stderr. A failure prints `error: <CODE>: <message>` with
//! the server's reason code and field violations and exits with status 1.

use std::{
    error::Error as StdError,
    fmt::Display,
    fs,
    io::{self, BufRead, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{Table, presets};
use roster::api::{
    Bearer,
    pb::{self, auth_service_client::AuthServiceClient, user_service_client::UserServiceClient},
};
use serde::{Deserialize, Serialize};
use tonic::{
    Code, Status,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};
use tonic_types::StatusExt;

/// Where the server listens when neither a flag nor a session says otherwise.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let uses_session = !matches!(cli.command, Command::Login(_));
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            // The saved token was refused: expired, signed out elsewhere, or
            // the account was suspended. Only a new sign-in helps.
            if uses_session
                && matches!(&err, CliError::Status(s) if s.code() == Code::Unauthenticated)
            {
                note("hint: the session is no longer valid: run rosterctl login");
            }
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// Command-line client of Roster, the agent directory and presence service.
#[derive(Parser)]
#[command(name = "rosterctl", version)]
struct Cli {
    /// Server URL [default: the session's server, else http://127.0.0.1:50051]
    #[arg(long, env = "ROSTER_SERVER", global = true, value_name = "URL")]
    server: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in and save the session.
    Login(LoginArgs),
    /// End the session and delete the session file.
    Logout,
    /// Show who is signed in: user, roles, teams and permissions.
    Whoami,
    /// Create, show and list users.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Args)]
struct LoginArgs {
    /// The org's slug.
    #[arg(long)]
    org: String,
    /// Email address or login id.
    #[arg(long, value_name = "EMAIL_OR_LOGIN_ID")]
    login: String,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an active user with a password.
    Create(CreateUserArgs),
    /// Show one user.
    Get {
        /// Id of the user.
        user_id: String,
    },
    /// List users, filtered and paged.
    List(ListUsersArgs),
}

#[derive(Args)]
struct CreateUserArgs {
    /// Email address (cannot be changed later).
    #[arg(long)]
    email: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Optional sign-in name, unique in the org.
    #[arg(long)]
    login_id: Option<String>,
    /// Role to grant; repeat for several.
    #[arg(long = "role", value_name = "ROLE", default_value = "agent")]
    roles: Vec<String>,
    /// Team to join; repeat for several.
    #[arg(long = "team", value_name = "TEAM_ID")]
    team_ids: Vec<String>,
    /// Most chats at once [default: the org's default].
    #[arg(long, value_name = "N")]
    max_chats: Option<u32>,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// Make the user change the password at first sign-in.
    #[arg(long)]
    require_password_change: bool,
    /// Idempotency key: a retry with the same id does not create twice.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
}

#[derive(Args)]
struct ListUsersArgs {
    /// Free text matched against name, email, login id and user id.
    #[arg(long, value_name = "Q")]
    query: Option<String>,
    /// Only users holding this role.
    #[arg(long)]
    role: Option<String>,
    /// Only members of this team.
    #[arg(long = "team", value_name = "TEAM_ID")]
    team_id: Option<String>,
    /// Only users in this state.
    #[arg(long, value_enum)]
    state: Option<StateFilter>,
    /// Only locked (true) or unlocked (false) users.
    #[arg(long, value_name = "true|false")]
    locked: Option<bool>,
    /// Most users per page [default: the server's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    page_size: Option<u16>,
    /// Continue from a previous page's next page token.
    #[arg(long, value_name = "T")]
    page_token: Option<String>,
    /// Follow page tokens and list every matching user.
    #[arg(long)]
    all: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum StateFilter {
    Invited,
    Active,
    Suspended,
}

impl From<StateFilter> for pb::UserState {
    fn from(state: StateFilter) -> Self {
        match state {
            StateFilter::Invited => Self::Invited,
            StateFilter::Active => Self::Active,
            StateFilter::Suspended => Self::Suspended,
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    let server = cli.server;
    match cli.command {
        Command::Login(args) => login(server, args, out).await,
        Command::Logout => logout(server, out).await,
        Command::Whoami => whoami(server, out).await,
        Command::Users(command) => {
            let signed_in = SignedIn::open(server).await?;
            match command {
                UsersCommand::Create(args) => create_user(&signed_in, args, out).await,
                UsersCommand::Get { user_id } => get_user(&signed_in, user_id, out).await,
                UsersCommand::List(args) => list_users(&signed_in, args, out).await,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

async fn login(server: Option<String>, args: LoginArgs, out: Output) -> Result<(), CliError> {
    // Signing in again goes to the same server as the last session unless told otherwise.
    let previous = session_path().and_then(|path| read_session(&path)).ok();
    let server = server
        .or(previous.map(|session| session.server))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        prompt_password("Password: ")?
    };
    let mut auth = AuthServiceClient::new(connect(&server).await?);
    let response = auth
        .login(pb::LoginRequest {
            org: args.org.clone(),
            login: args.login,
            password,
        })
        .await?
        .into_inner();
    let expires_at = rfc3339(response.expires_at.as_ref()).unwrap_or_default();
    save_session(&Session {
        server,
        org: args.org.clone(),
        token: response.session_token,
        expires_at: expires_at.clone(),
    })?;
    let user = response.user.map(UserView::from);
    if out.json {
        return out.json(&LoginView {
            org: args.org,
            user,
            expires_at,
            password_change_required: response.password_change_required,
        });
    }
    let who = user.map_or_else(
        || "unknown user".to_owned(),
        |u| format!("{} <{}>", u.display_name, u.email),
    );
    emit(format!(
        "Signed in to {} as {who}.\nSession expires at {expires_at}.",
        args.org
    ))?;
    if response.password_change_required {
        note(
            "note: your password must be changed before you can use anything but whoami and logout",
        );
    }
    Ok(())
}

async fn logout(server: Option<String>, out: Output) -> Result<(), CliError> {
    let path = session_path()?;
    let session = read_session(&path)?;
    let server = server.unwrap_or_else(|| session.server.clone());
    let bearer = bearer(&session.token)?;
    let mut auth = AuthServiceClient::with_interceptor(connect(&server).await?, bearer);
    match auth.logout(pb::LogoutRequest {}).await {
        Ok(_) => {}
        // The server no longer knows the session (expired, or ended by an
        // admin): signing out locally is all that is left to do.
        Err(status) if status.code() == Code::Unauthenticated => {}
        // Otherwise keep the file so the user can retry and really end the session.
        Err(status) => return Err(status.into()),
    }
    remove_session(&path)?;
    if out.json {
        out.json(&serde_json::json!({ "signed_out": true }))
    } else {
        emit("Signed out.")
    }
}

async fn whoami(server: Option<String>, out: Output) -> Result<(), CliError> {
    let signed_in = SignedIn::open(server).await?;
    let response = signed_in
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await?
        .into_inner();
    let view = WhoAmIView::from(response);
    if out.json {
        return out.json(&view);
    }
    let mut rows = vec![("ORG", format!("{} ({})", view.org_slug, view.org_id))];
    if let Some(user) = &view.user {
        rows.extend([
            ("USER ID", user.user_id.clone()),
            ("EMAIL", user.email.clone()),
            ("NAME", user.display_name.clone()),
            ("ROLES", user.roles.join(", ")),
        ]);
    }
    if let Some(key) = &view.api_key {
        rows.push(("API KEY", format!("{} ({})", key.name, key.api_key_id)));
    }
    rows.extend([
        ("TEAMS", dash_if_empty(view.team_ids.join(", "))),
        ("PERMISSIONS", view.permissions.join("\n")),
        (
            "SESSION EXPIRES",
            view.session_expires_at
                .clone()
                .unwrap_or_else(|| "-".into()),
        ),
    ]);
    if view.password_change_required {
        rows.push(("PASSWORD CHANGE", "required".into()));
    }
    emit(render(&key_value_table(rows)))
}

async fn create_user(
    signed_in: &SignedIn,
    args: CreateUserArgs,
    out: Output,
) -> Result<(), CliError> {
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        prompt_new_password()?
    };
    let request = pb::CreateUserRequest {
        user: Some(pb::User {
            email: args.email,
            display_name: args.name,
            login_id: args.login_id.unwrap_or_default(),
            roles: args.roles,
            team_ids: args.team_ids,
            max_chats: args.max_chats,
            ..Default::default()
        }),
        password,
        request_id: args.request_id.unwrap_or_default(),
        send_welcome_email: false,
        require_password_change: args.require_password_change,
    };
    let user = signed_in
        .users()
        .create_user(request)
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

async fn get_user(signed_in: &SignedIn, user_id: String, out: Output) -> Result<(), CliError> {
    let user = signed_in
        .users()
        .get_user(pb::GetUserRequest { user_id })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

async fn list_users(
    signed_in: &SignedIn,
    args: ListUsersArgs,
    out: Output,
) -> Result<(), CliError> {
    let mut request = pb::ListUsersRequest {
        page_size: args.page_size.map_or(0, i32::from),
        page_token: args.page_token.unwrap_or_default(),
        query: args.query.unwrap_or_default(),
        role: args.role.unwrap_or_default(),
        team_id: args.team_id.unwrap_or_default(),
        state: args.state.map_or(pb::UserState::Unspecified, Into::into) as i32,
        locked: args.locked,
        presence_status: pb::PresenceStatus::Unspecified as i32,
    };
    let mut client = signed_in.users();
    let mut users = Vec::new();
    let next_page_token = loop {
        let page = client.list_users(request.clone()).await?.into_inner();
        users.extend(page.users.into_iter().map(UserView::from));
        if !args.all || page.next_page_token.is_empty() {
            break page.next_page_token;
        }
        // A server bug handing back the same token would loop forever.
        if page.next_page_token == request.page_token {
            return Err(CliError::msg(
                "the server returned the same page token twice",
            ));
        }
        request.page_token = page.next_page_token;
    };
    if out.json {
        out.json(&users)?;
    } else if users.is_empty() {
        note("no users match");
    } else {
        emit(render(&users_table(&users)))?;
    }
    if !next_page_token.is_empty() {
        note(format!(
            "next page token: {next_page_token} (pass it with --page-token, or use --all)"
        ));
    }
    Ok(())
}

fn print_user(user: Option<pb::User>, out: Output) -> Result<(), CliError> {
    let user = user
        .map(UserView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no user"))?;
    if out.json {
        return out.json(&user);
    }
    emit(render(&user_table(&user)))
}

// ---------------------------------------------------------------------------
// Session file
// ---------------------------------------------------------------------------

/// What `login` leaves behind for the other commands.
#[derive(Serialize, Deserialize)]
struct Session {
    server: String,
    org: String,
    token: String,
    /// RFC 3339; empty if the server did not say.
    expires_at: String,
}

fn session_path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("ROSTER_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::config_dir().ok_or_else(|| {
            CliError::msg("cannot find a config directory: set ROSTER_CONFIG_DIR")
        })?,
    };
    Ok(base.join("roster").join("session.json"))
}

/// Reads the session file as it is, expired or not.
fn read_session(path: &Path) -> Result<Session, CliError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CliError::NotSignedIn),
        Err(e) => {
            return Err(CliError::msg(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        CliError::msg(format!(
            "{} is not a valid session file ({e}): run rosterctl login",
            path.display()
        ))
    })
}

/// Reads the session file and refuses a session that has already expired,
/// so the user is told to sign in rather than shown a bare UNAUTHENTICATED.
fn current_session() -> Result<Session, CliError> {
    let session = read_session(&session_path()?)?;
    // An unreadable expiry is left for the server to judge.
    if let Ok(expires_at) = DateTime::parse_from_rfc3339(&session.expires_at)
        && expires_at <= Utc::now()
    {
        return Err(CliError::msg(format!(
            "the session expired at {}: run rosterctl login",
            session.expires_at
        )));
    }
    Ok(session)
}

/// Writes the session atomically (temporary file, then rename) so a crash
/// never leaves half a file, and creates it owner-only on unix because the
/// token is a credential.
fn save_session(session: &Session) -> Result<(), CliError> {
    let path = session_path()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |what: &str, p: &Path, e: io::Error| {
        CliError::msg(format!("cannot {what} {}: {e}", p.display()))
    };
    create_private_dir(dir).map_err(|e| fail("create", dir, e))?;
    let mut text = serde_json::to_string_pretty(session)
        .map_err(|e| CliError::msg(format!("cannot encode the session: {e}")))?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(fail("remove", &tmp, e)),
        _ => {}
    }
    let mut file = private_file_options()
        .open(&tmp)
        .map_err(|e| fail("create", &tmp, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| fail("write", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| fail("write", &path, e))
}

fn remove_session(path: &Path) -> Result<(), CliError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CliError::msg(format!(
            "cannot delete {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a new file only its owner can read (on unix).
fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

// ---------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------

/// A signed-in connection: clients built from it send the session's token.
struct SignedIn {
    channel: Channel,
    bearer: Bearer,
}

impl SignedIn {
    /// Loads the session (failing before any network I/O when there is
    /// none) and connects to the server.
    async fn open(server: Option<String>) -> Result<Self, CliError> {
        let session = current_session()?;
        let bearer = bearer(&session.token)?;
        let server = server.unwrap_or(session.server);
        Ok(Self {
            channel: connect(&server).await?,
            bearer,
        })
    }

    fn auth(&self) -> AuthServiceClient<InterceptedService<Channel, Bearer>> {
        AuthServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    fn users(&self) -> UserServiceClient<InterceptedService<Channel, Bearer>> {
        UserServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

fn bearer(token: &str) -> Result<Bearer, CliError> {
    Bearer::new(token).map_err(|_| {
        CliError::msg("the saved session token is not valid header text: run rosterctl login")
    })
}

async fn connect(server: &str) -> Result<Channel, CliError> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| CliError::msg(format!("invalid server URL {server:?}: {}", chain(&e))))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    endpoint
        .connect()
        .await
        .map_err(|e| CliError::msg(format!("cannot connect to {server}: {}", chain(&e))))
}

// ---------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------

/// The first line of stdin, without its line ending; other whitespace is
/// part of the password.
fn password_from_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::msg(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::msg("no password on stdin"));
    }
    Ok(password.to_owned())
}

fn prompt_password(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(|e| {
        CliError::msg(format!(
            "cannot prompt for a password ({e}): use --password-stdin"
        ))
    })
}

/// Asks twice, because a typo in a password nobody can see would lock the
/// new user out.
fn prompt_new_password() -> Result<String, CliError> {
    let first = prompt_password("Password: ")?;
    let second = prompt_password("Repeat password: ")?;
    if first != second {
        return Err(CliError::msg("the passwords do not match"));
    }
    Ok(first)
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn json(self, value: &impl Serialize) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::msg(format!("cannot encode the output: {e}")))?;
        emit(text)
    }
}

/// Writes a result to stdout. A closed pipe (`rosterctl … | head`) is not an
/// error: the reader has all it wanted.
fn emit(text: impl Display) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError::msg(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Writes a remark to stderr; if even that fails there is nobody to tell.
fn note(text: impl Display) {
    let _ = writeln!(io::stderr(), "{text}");
}

fn users_table(users: &[UserView]) -> Table {
    let mut table = plain_table();
    table.set_header([
        "ID", "NAME", "EMAIL", "LOGIN ID", "ROLES", "STATE", "LOCKED",
    ]);
    for user in users {
        table.add_row([
            user.user_id.clone(),
            user.display_name.clone(),
            user.email.clone(),
            dash_if_empty(user.login_id.clone()),
            user.roles.join(","),
            short_state(&user.state).to_owned(),
            yes_no(user.locked).to_owned(),
        ]);
    }
    table
}

fn user_table(user: &UserView) -> Table {
    let max_chats = match user.max_chats {
        Some(n) => n.to_string(),
        None => format!("{} (org default)", user.effective_max_chats),
    };
    let optional = [
        ("PUBLIC NAME", &user.public_name),
        ("LANGUAGE", &user.language),
        ("JOB TITLE", &user.job_title),
        ("LOCATION", &user.location),
        ("LANDLINE", &user.landline_phone),
        ("MOBILE", &user.mobile_phone),
    ];
    let mut rows = vec![
        ("ID", user.user_id.clone()),
        ("NAME", user.display_name.clone()),
        ("EMAIL", user.email.clone()),
        ("LOGIN ID", dash_if_empty(user.login_id.clone())),
        ("STATE", short_state(&user.state).to_owned()),
        ("LOCKED", yes_no(user.locked).to_owned()),
        ("ROLES", user.roles.join(", ")),
        ("TEAMS", dash_if_empty(user.team_ids.join(", "))),
        ("MAX CHATS", max_chats),
    ];
    rows.extend(
        optional
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(label, value)| (label, value.clone())),
    );
    rows.extend([
        (
            "CREATED",
            user.created_at.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "LAST LOGIN",
            user.last_login_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ]);
    if user.password_change_required {
        rows.push(("PASSWORD CHANGE", "required".into()));
    }
    key_value_table(rows)
}

fn key_value_table(rows: Vec<(&str, String)>) -> Table {
    let mut table = plain_table();
    for (label, value) in rows {
        table.add_row([label.to_owned(), value]);
    }
    table
}

/// Borderless, like `kubectl get`: easy to read and to grep.
fn plain_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table
}

/// The table without the padding comfy-table puts at both ends of a line,
/// so output lines start with their first column and carry no trailing blanks.
fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| {
            let line = line.strip_prefix(' ').unwrap_or(&line).trim_end();
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `USER_STATE_ACTIVE` → `ACTIVE`: the prefix is noise in a table column.
fn short_state(state: &str) -> &str {
    state.strip_prefix("USER_STATE_").unwrap_or(state)
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn dash_if_empty(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
}

// ---------------------------------------------------------------------------
// JSON views of the wire messages (the generated types are not Serialize)
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct UserView {
    user_id: String,
    email: String,
    login_id: String,
    display_name: String,
    public_name: String,
    state: String,
    locked: bool,
    roles: Vec<String>,
    team_ids: Vec<String>,
    max_chats: Option<u32>,
    effective_max_chats: u32,
    etag: String,
    login_with: String,
    language: String,
    landline_phone: String,
    mobile_phone: String,
    job_title: String,
    location: String,
    can_view_colleagues_chats: bool,
    created_at: Option<String>,
    last_login_at: Option<String>,
    last_logout_at: Option<String>,
    password_change_required: bool,
    has_avatar: bool,
    suspend_reason: String,
}

impl From<pb::User> for UserView {
    fn from(user: pb::User) -> Self {
        // Exhaustive on purpose: a new field in the proto must be decided on here.
        let pb::User {
            user_id,
            email,
            login_id,
            display_name,
            public_name,
            state,
            locked,
            roles,
            team_ids,
            max_chats,
            effective_max_chats,
            etag,
            login_with,
            language,
            landline_phone,
            mobile_phone,
            job_title,
            location,
            can_view_colleagues_chats,
            created_at,
            last_login_at,
            last_logout_at,
            password_change_required,
            has_avatar,
            suspend_reason,
        } = user;
        Self {
            user_id,
            email,
            login_id,
            display_name,
            public_name,
            state: enum_name(state, pb::UserState::as_str_name),
            locked,
            roles,
            team_ids,
            max_chats,
            effective_max_chats,
            etag,
            login_with: enum_name(login_with, pb::LoginWith::as_str_name),
            language,
            landline_phone,
            mobile_phone,
            job_title,
            location,
            can_view_colleagues_chats,
            created_at: rfc3339(created_at.as_ref()),
            last_login_at: rfc3339(last_login_at.as_ref()),
            last_logout_at: rfc3339(last_logout_at.as_ref()),
            password_change_required,
            has_avatar,
            suspend_reason,
        }
    }
}

#[derive(Serialize)]
struct ApiKeyView {
    api_key_id: String,
    name: String,
    scopes: Vec<String>,
}

#[derive(Serialize)]
struct WhoAmIView {
    org_id: String,
    org_slug: String,
    user: Option<UserView>,
    api_key: Option<ApiKeyView>,
    permissions: Vec<String>,
    team_ids: Vec<String>,
    session_expires_at: Option<String>,
    password_change_required: bool,
}

impl From<pb::WhoAmIResponse> for WhoAmIView {
    fn from(response: pb::WhoAmIResponse) -> Self {
        let pb::WhoAmIResponse {
            org_id,
            org_slug,
            user,
            api_key,
            permissions,
            team_ids,
            session_expires_at,
            password_change_required,
        } = response;
        Self {
            org_id,
            org_slug,
            user: user.map(UserView::from),
            api_key: api_key.map(|key| ApiKeyView {
                api_key_id: key.api_key_id,
                name: key.name,
                scopes: key.scopes,
            }),
            permissions,
            team_ids,
            session_expires_at: rfc3339(session_expires_at.as_ref()),
            password_change_required,
        }
    }
}

/// What `login --json` prints; never the token, which stays in the session file.
#[derive(Serialize)]
struct LoginView {
    org: String,
    user: Option<UserView>,
    expires_at: String,
    password_change_required: bool,
}

/// The proto name of an enum value, or the bare number for a value this
/// build does not know (a newer server), so nothing is hidden.
fn enum_name<E: TryFrom<i32>>(value: i32, name: fn(&E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |e| name(&e).to_owned())
}

fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::<Utc>::from_timestamp(timestamp.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

enum CliError {
    /// The server refused the call.
    Status(Status),
    /// There is no session file.
    NotSignedIn,
    /// Anything else, already phrased for the user.
    Message(String),
}

impl CliError {
    fn msg(message: impl Into<String>) -> Self {
        Self::Message(message.into())
    }
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        Self::Status(status)
    }
}

/// Prints the error to stderr: the status code and message, then the
/// machine-readable details the server attached, which say what to fix.
fn report(err: &CliError) {
    match err {
        CliError::Status(status) => {
            note(format!(
                "error: {}: {}",
                code_name(status.code()),
                status.message()
            ));
            if let Some(info) = status.get_details_error_info() {
                note(format!("  reason: {}", info.reason));
            }
            if let Some(bad_request) = status.get_details_bad_request() {
                for violation in bad_request.field_violations {
                    note(format!("  {}: {}", violation.field, violation.description));
                }
            }
        }
        CliError::NotSignedIn => note("error: not signed in: run rosterctl login"),
        CliError::Message(message) => note(format!("error: {message}")),
    }
}

/// The canonical gRPC name of a code, as grpcurl and the docs spell it
/// (tonic's `Display` gives a sentence instead).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its causes on one line: tonic's transport errors say only
/// "transport error" at the top.
fn chain(err: &dyn StdError) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Wrappers often repeat their cause's message; say it once.
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        source = cause.source();
    }
    parts.join(": ")
}
