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
//! proto names) for scripts; `presence watch --json`, which never ends,
//! prints one JSON object per line instead. Everything else (notes, the next
//! page token, errors) goes to stderr. A failure prints
//! `error: <CODE>: <message>` with the server's reason code and field
//! violations and exits with status 1.

mod audit;
mod auth;
mod error;
mod imports;
mod keys;
mod orgs;
mod output;
mod paging;
mod presence;
mod prompt;
mod report;
mod roles;
mod session;
mod settings;
mod teams;
mod users;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tonic::Code;

use crate::{
    audit::AuditCommand,
    auth::{LoginArgs, PasswdArgs, login, logout, passwd, whoami},
    error::{CliError, report},
    imports::ImportsCommand,
    keys::KeysCommand,
    orgs::OrgsCommand,
    output::{Output, note, write_raw},
    presence::PresenceCommand,
    report::ReportCommand,
    roles::RolesCommand,
    session::{PlatformConnection, SignedIn},
    settings::OrgCommand,
    teams::TeamsCommand,
    users::UsersCommand,
};

/// Where the server listens when neither a flag nor a session says otherwise.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let uses_session = !matches!(
        cli.command,
        Command::Login(_) | Command::Orgs(_) | Command::Completion { .. } | Command::Man
    );
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
    #[command(flatten)]
    tls: session::TlsOptions,
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
    /// Change your password; every other session of yours ends.
    Passwd(PasswdArgs),
    /// Manage users: create, invite, show, list, update, suspend, delete, import, export.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Import jobs made by `users import`: list, show, report.
    #[command(subcommand)]
    Imports(ImportsCommand),
    /// Presence: set availability, see who can take chats, watch changes live.
    #[command(subcommand)]
    Presence(PresenceCommand),
    /// Activity reports: time per presence status and peak chats, per day or hour.
    #[command(subcommand)]
    Report(ReportCommand),
    /// List, create, update and delete teams.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// List roles; create, update and delete custom roles.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// The org's settings.
    #[command(subcommand)]
    Org(OrgCommand),
    /// The audit log: who changed what, to whom, and when.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// API keys for backend services: create (the secret is shown once), list, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Tenants, for platform operators (with $ROSTER_PLATFORM_KEY, not a
    /// session): create, get, list, update, suspend, reactivate, delete, audit.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Print a shell completion script: `source <(rosterctl completion bash)`,
    /// or save it where your shell loads completions from.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `rosterctl man > rosterctl.1`, `man ./rosterctl.1`.
    Man,
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    session::use_tls(cli.tls)?;
    let server = cli.server;
    match cli.command {
        Command::Login(args) => login(server, args, out).await,
        Command::Logout => logout(server, out).await,
        Command::Whoami => whoami(server, out).await,
        Command::Passwd(args) => passwd(server, args, out).await,
        Command::Users(command) => users::run(&SignedIn::open(server).await?, command, out).await,
        Command::Imports(command) => {
            imports::run(&SignedIn::open(server).await?, command, out).await
        }
        Command::Presence(command) => {
            presence::run(&SignedIn::open(server).await?, command, out).await
        }
        Command::Report(command) => report::run(&SignedIn::open(server).await?, command, out).await,
        Command::Teams(command) => teams::run(&SignedIn::open(server).await?, command, out).await,
        Command::Roles(command) => roles::run(&SignedIn::open(server).await?, command, out).await,
        Command::Org(command) => settings::run(&SignedIn::open(server).await?, command, out).await,
        Command::Audit(command) => audit::run(&SignedIn::open(server).await?, command, out).await,
        Command::Keys(command) => keys::run(&SignedIn::open(server).await?, command, out).await,
        Command::Orgs(command) => {
            let server = server.unwrap_or_else(|| DEFAULT_SERVER.to_owned());
            orgs::run(&PlatformConnection::open(&server).await?, command, out).await
        }
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "rosterctl", &mut script);
            write_raw(&script).map(|_| ())
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| CliError::msg(format!("cannot render the man page: {e}")))?;
            write_raw(&page).map(|_| ())
        }
    }
}
