//! `rosterd`: serves the roster.v1 gRPC API.

use clap::Parser;
use roster::{app::App, config::Config, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let _telemetry = match telemetry::init(&config) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("rosterd: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = async {
        let app = App::build(config).await?;
        tracing::info!(addr = %app.local_addr(), "serving roster.v1");
        app.run_until_stopped().await
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "rosterd stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
