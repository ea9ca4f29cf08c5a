//! `rosterd`: serves the roster.v1 gRPC API, or runs an operator command.

use std::io::Read;

use clap::{Parser, Subcommand};
use roster::{
    app::{self, App},
    audit::Origin,
    auth::generate_password,
    config::Config,
    domain::ApiKeyName,
    operator::{self, Operator},
    telemetry,
};

#[derive(Parser)]
#[command(name = "rosterd", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply every pending database migration, then exit (for a job that
    /// runs before the servers, which then start with --no-migrate).
    Migrate,
    /// Ask the server on this machine for its health (on ROSTER_HEALTH_LISTEN's
    /// port, else ROSTER_LISTEN's); exit 0 when SERVING: a container health
    /// check.
    Probe,
    /// Recover an account offline, straight on the database, when nobody
    /// who could fix it can sign in. Audited as the system.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Platform API keys, the only callers of PlatformService (tenants):
    /// create (the secret is printed once), list, revoke.
    #[command(subcommand)]
    PlatformKeys(PlatformKeysCommand),
}

#[derive(Subcommand)]
enum PlatformKeysCommand {
    /// Create a platform key and print its secret, shown only this once.
    Create {
        /// A name to recognise the key by, unique among platform keys.
        name: String,
    },
    /// List platform keys (never their secrets).
    List,
    /// Revoke a platform key: its next call fails.
    Revoke {
        /// The key's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a user's password; they must change it at their next sign-in,
    /// and their sessions end. Prints a generated password unless
    /// --password-stdin.
    ResetPassword {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The user's email or login id.
        #[arg(long)]
        login: String,
        /// Read the new password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lift a user's lock after failed sign-ins.
    Unlock {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The user's email or login id.
        #[arg(long)]
        login: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli {
        mut config,
        command,
    } = Cli::parse();
    if let Err(err) = config.read_files() {
        eprintln!("rosterd: {err}");
        return std::process::ExitCode::FAILURE;
    }
    // Only the server serves metrics: an operator command run beside it
    // (a probe in the same container, say) must not take its port.
    if command.is_some() {
        config.metrics_listen = None;
    }
    let _telemetry = match telemetry::init(&config) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("rosterd: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match command {
        None => serve(config).await.map_err(Into::into),
        Some(Command::Migrate) => migrate(&config).await.map_err(Into::into),
        Some(Command::Admin(command)) => admin(&config, command).await,
        Some(Command::Probe) => probe(&config).await,
        Some(Command::PlatformKeys(command)) => platform_keys(&config, command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "rosterd stopped");
            eprintln!("rosterd: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), app::StartError> {
    let app = App::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "serving roster.v1");
    app.run_until_stopped().await
}

async fn migrate(config: &Config) -> Result<(), app::StartError> {
    let applied = app::migrate(config).await?;
    tracing::info!(
        applied = applied.len(),
        migrations = %applied.join(", "),
        "the database schema is current"
    );
    Ok(())
}

async fn probe(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    // The plaintext health listener when there is one; else the main one,
    // which must then be plaintext too.
    let port = match config.health_listen {
        Some(addr) => addr.port(),
        None if config.tls_files().is_some() => {
            return Err("the listener speaks TLS: set ROSTER_HEALTH_LISTEN to probe it".into());
        }
        None => config.listen.port(),
    };
    let url = format!("http://127.0.0.1:{port}");
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect_timeout(std::time::Duration::from_secs(2))
        .timeout(std::time::Duration::from_secs(2))
        .connect()
        .await?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await?
        .into_inner()
        .status();
    if status != ServingStatus::Serving {
        return Err(format!("health is {}", status.as_str_name()).into());
    }
    println!("SERVING");
    Ok(())
}

async fn admin(config: &Config, command: AdminCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        AdminCommand::ResetPassword {
            org,
            login,
            password_stdin,
        } => {
            let operator = Operator::open(config, &org, &login).await?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_to_string(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (generate_password(), true)
            };
            operator.reset_password(&password).await?;
            println!(
                "The password of {login} in org {org} is reset; it must be changed at the next \
                 sign-in, and every session of theirs has ended."
            );
            if generated {
                println!("New password (shown only this once): {password}");
            }
        }
        AdminCommand::Unlock { org, login } => {
            let operator = Operator::open(config, &org, &login).await?;
            operator.unlock().await?;
            println!("{login} in org {org} is unlocked.");
        }
    }
    Ok(())
}

async fn platform_keys(
    config: &Config,
    command: PlatformKeysCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = operator::platform_keys(config).await?;
    let origin = Origin::default();
    let parse = |name: &str| {
        ApiKeyName::parse(name).map_err(|e| format!("invalid platform key name: {}", e.message))
    };
    match command {
        PlatformKeysCommand::Create { name } => {
            let created = keys
                .create_platform_key(parse(&name)?, &origin)
                .await?
                .ok_or_else(|| format!("a platform key named {name:?} exists already"))?;
            println!(
                "Created platform key {} ({}). Its secret, shown only this once:",
                created.key.name.as_str(),
                created.key.id
            );
            println!("{}", created.secret);
        }
        PlatformKeysCommand::List => {
            for key in keys.platform_keys().await? {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "live".to_owned(),
                };
                let used = key.last_used_at.map_or_else(
                    || "never used".to_owned(),
                    |at| format!("last used {}", at.to_rfc3339()),
                );
                println!(
                    "{}\t{}\t{}…\tcreated {}\t{used}\t{state}",
                    key.name.as_str(),
                    key.id,
                    key.secret_prefix,
                    key.created_at.to_rfc3339()
                );
            }
        }
        PlatformKeysCommand::Revoke { name } => {
            let key = keys.revoke_platform_key(&parse(&name)?, &origin).await?;
            println!("Revoked platform key {} ({}).", key.name.as_str(), key.id);
        }
    }
    Ok(())
}
