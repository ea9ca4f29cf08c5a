//! `rosterd`: serves the roster.v1 gRPC API, or runs an operator command.

use clap::{Parser, Subcommand};
use roster::{app, app::App, config::Config, telemetry};

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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli { config, command } = Cli::parse();
    let _telemetry = match telemetry::init(&config) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("rosterd: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match command {
        None => serve(config).await,
        Some(Command::Migrate) => app::migrate(&config).await.map(|applied| {
            tracing::info!(
                applied = applied.len(),
                migrations = %applied.join(", "),
                "the database schema is current"
            );
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "rosterd stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), app::StartError> {
    let app = App::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "serving roster.v1");
    app.run_until_stopped().await
}
