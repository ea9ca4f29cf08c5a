//! `rosterd`: serves the roster.v1 gRPC API, or runs an operator command.

use std::io::Read;

use clap::{Parser, Subcommand};
use roster::{
    app::{self, App},
    auth::generate_password,
    config::Config,
    operator::Operator,
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
    /// Ask the server on ROSTER_LISTEN's port (on this machine) for its
    /// health; exit 0 when SERVING: a container health check.
    Probe,
    /// Recover an account offline, straight on the database, when nobody
    /// who could fix it can sign in. Audited as the system.
    #[command(subcommand)]
    Admin(AdminCommand),
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
    let url = format!("http://127.0.0.1:{}", config.listen.port());
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
