//! `roster-bench`: measures Roster's hot paths, each next to its ceiling in
//! the same run, and prints a table of throughput, latency, server CPU and
//! memory, and the ratio to the ceiling (BENCHMARKS.md shows how to read it).
//!
//! Servers run as children of this binary (`roster-bench serve …`) on
//! loopback, each on a fresh database, so their CPU time and memory are
//! their own. `--short` runs every scenario at a tiny size: a smoke test of
//! the program that fails on any error, not a measurement.

mod child;
mod client;
mod database;
mod fanout;
mod import;
mod load;
mod login_timing;
mod report;
mod unary;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::{child::ServerKind, database::StoreKind, report::Outcome};

#[derive(Parser)]
#[command(name = "roster-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    serve: Option<Serve>,
    #[command(flatten)]
    options: Options,
}

#[derive(Subcommand)]
enum Serve {
    /// Runs a server under measurement (started by the benchmark itself).
    #[command(hide = true)]
    Serve { kind: ServerKind },
}

/// What to run, and how big.
#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// The database behind Roster (and the storage ceiling).
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    /// A PostgreSQL database the benchmark may create databases from.
    #[arg(
        long,
        env = "ROSTER_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Scenario>,
    /// Every scenario at a tiny size, to check that the program works.
    #[arg(long)]
    short: bool,
    /// Rows of the import scenario's file.
    #[arg(long, default_value_t = 100_000)]
    import_rows: usize,
    /// Users seeded before the unary scenarios.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Seconds each load runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// The Redis server the fan-out scenarios compare with (pub/sub).
    #[arg(
        long,
        env = "ROSTER_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    redis_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Import,
    GetUser,
    ListUsers,
    InviteUser,
    Login,
    /// Login's four refusals (unknown, wrong password, locked, suspended)
    /// timed side by side.
    LoginTiming,
    /// WatchPresence: 100 watchers over 10 connections, 5,000 changes/s.
    FanoutRouters,
    /// WatchPresence: 1,000 watchers over 100 connections, 1,000 changes/s.
    #[value(name = "fanout-1k")]
    Fanout1k,
    /// WatchPresence: 10,000 watchers over 100 connections, 10 changes/s.
    FanoutDashboards,
    /// Server memory with N users and 10,000 watchers.
    Memory,
    /// PostgreSQL only: the routers' shape with changes through one replica
    /// and the watchers on another, beside the same on one replica.
    FanoutReplicas,
    /// The fan-out shapes and memory.
    Watch,
}

const WATCH: [Scenario; 5] = [
    Scenario::FanoutRouters,
    Scenario::Fanout1k,
    Scenario::FanoutDashboards,
    Scenario::Memory,
    Scenario::FanoutReplicas,
];

const UNARY: [Scenario; 4] = [
    Scenario::GetUser,
    Scenario::ListUsers,
    Scenario::InviteUser,
    Scenario::Login,
];

impl Options {
    fn runs(&self, scenario: Scenario) -> bool {
        self.only.is_empty()
            || self.only.contains(&scenario)
            || WATCH.contains(&scenario) && self.only.contains(&Scenario::Watch)
    }

    pub fn import_rows(&self) -> usize {
        if self.short { 2_000 } else { self.import_rows }
    }

    pub fn seed_users(&self) -> usize {
        if self.short { 2_000 } else { self.users }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(if self.short { 1 } else { self.duration })
    }
}

/// Any failure of the benchmark: it stops the run.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    pub fn msg(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for BenchError {
    fn from(err: E) -> Self {
        Self(err.to_string())
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("roster-bench: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.serve {
            Some(Serve::Serve { kind }) => serve(kind).await,
            None => bench(&cli.options).await,
        }
    });
    // Children and streams may linger; the results are printed already.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("roster-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench(options: &Options) -> Result<(), BenchError> {
    report::print_machine();
    let mut outcomes: Vec<Outcome> = Vec::new();
    if options.runs(Scenario::Import) {
        outcomes.extend(import::run(options).await?);
    }
    if UNARY.iter().any(|s| options.runs(*s)) {
        outcomes.extend(unary::run(options).await?);
    }
    if WATCH.iter().any(|s| options.runs(*s)) {
        outcomes.extend(fanout::run(options).await?);
    }
    report::print(&outcomes);
    if options.runs(Scenario::LoginTiming) {
        login_timing::run(options).await?;
    }
    Ok(())
}

async fn serve(kind: ServerKind) -> Result<(), BenchError> {
    match kind {
        ServerKind::Roster => {
            let config = <roster::config::Config as clap::Parser>::try_parse_from(["rosterd"])?;
            let _telemetry = roster::telemetry::init(&config).map_err(BenchError::msg)?;
            let app = roster::app::App::build(config).await?;
            child::announce(app.local_addr());
            app.run_until_stopped().await?;
            Ok(())
        }
        ServerKind::Bare => unary::serve_bare().await,
        ServerKind::BareBroadcast => fanout::serve_bare().await,
    }
}
