//! `rosterd`'s settings, from flags and the environment (a flag wins),
//! validated at start-up.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

use crate::auth::HashCost;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PasswordHashing {
    /// argon2id with OWASP's parameters.
    Owasp,
    /// Cheap argon2id parameters, for tests only. Never use in production.
    InsecureFast,
}

/// The agent directory and presence service (gRPC, package roster.v1).
#[derive(Debug, Clone, Parser)]
#[command(name = "rosterd", version, about)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "ROSTER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Database: `sqlite://FILE` (created if missing) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://roster.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// A file holding the database URL (a mounted secret, so its password
    /// is in no environment variable); wins over DATABASE_URL.
    #[arg(long, env = "ROSTER_DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,

    /// Longest a statement waits for a database connection (on SQLite, for
    /// the write lock), in milliseconds; past it the RPC answers UNAVAILABLE
    /// (`DATABASE_UNAVAILABLE`), so clients retry elsewhere instead of
    /// hanging through an outage.
    #[arg(
        long,
        env = "ROSTER_DATABASE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 1500
    )]
    pub database_acquire_timeout_ms: u64,

    /// Refuse to start on a schema that is not current (naming the missing
    /// migrations) instead of applying them: for deployments that migrate
    /// with `rosterd migrate` first.
    #[arg(long, env = "ROSTER_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Serve gRPC over TLS with this certificate chain (PEM); re-read when
    /// the file changes. Needs --tls-key.
    #[arg(long, env = "ROSTER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "ROSTER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    /// Needs --tls-cert.
    #[arg(long, env = "ROSTER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter: a level (`info`) or `tracing` directives (`roster=debug,info`).
    #[arg(long, env = "ROSTER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// OTLP/gRPC collector for traces and metrics; unset means no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Longest one OTLP export (traces or metrics) may take, in
    /// milliseconds; connecting gets at most 2 s of it. Exports run beside
    /// the RPCs, so a slow collector delays only telemetry.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", default_value_t = 10_000)]
    pub otlp_timeout_ms: u64,

    /// How often metrics are exported over OTLP, in milliseconds.
    #[arg(long, env = "OTEL_METRIC_EXPORT_INTERVAL", default_value_t = 60_000)]
    pub metric_export_interval_ms: u64,

    /// Address to serve Prometheus metrics on (`GET /metrics`); unset
    /// means no endpoint.
    #[arg(long, env = "ROSTER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Address to serve grpc.health.v1 on, in plaintext and nothing else:
    /// for probes that cannot speak TLS (Kubernetes' gRPC probes) when the
    /// main listener does. Unset means health only on the main listener.
    #[arg(long, env = "ROSTER_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// Longest a unary RPC may run, in seconds (a client's shorter
    /// `grpc-timeout` wins).
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// RPCs handled at once; past this, new ones are refused with
    /// UNAVAILABLE rather than queued (load shedding).
    #[arg(long, env = "ROSTER_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,

    /// On SIGTERM/SIGINT, how long in-flight RPCs get to finish, in seconds.
    #[arg(long, env = "ROSTER_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// On SIGTERM/SIGINT, how long health says NOT_SERVING while the server
    /// still serves everything, in seconds, before it starts draining: the
    /// time load balancers (Kubernetes endpoints) need to stop sending it
    /// new work.
    #[arg(long, env = "ROSTER_SHUTDOWN_DELAY_SECS", default_value_t = 5)]
    pub shutdown_delay_secs: u64,

    /// Slug of the org created on first start with an empty database.
    #[arg(long, env = "ROSTER_BOOTSTRAP_ORG", default_value = "default")]
    pub bootstrap_org: String,

    /// Email of the first admin created on first start.
    #[arg(
        long,
        env = "ROSTER_BOOTSTRAP_ADMIN_EMAIL",
        default_value = "admin@localhost"
    )]
    pub bootstrap_admin_email: String,

    /// Password of the first admin; unset means a generated one, printed once.
    #[arg(long, env = "ROSTER_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<String>,

    /// Name of a platform API key (for PlatformService) to create at start
    /// when none of that name exists yet; its secret is printed once.
    #[arg(long, env = "ROSTER_BOOTSTRAP_PLATFORM_KEY", value_name = "NAME")]
    pub bootstrap_platform_key: Option<String>,

    /// SMTP server for invitation emails (`smtp://host:port`,
    /// `smtps://user:password@host`); unset means emails go to the log.
    #[arg(long, env = "ROSTER_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of Roster's emails.
    #[arg(
        long,
        env = "ROSTER_SMTP_FROM",
        default_value = "Roster <roster@localhost>"
    )]
    pub smtp_from: String,

    /// Base URL of the page where invitees accept (the link is
    /// `<url>/accept-invite?token=…`).
    #[arg(
        long,
        env = "ROSTER_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,

    /// How long the presence event log is kept, in seconds (default 31
    /// days): the history activity reports read, and what a watcher can
    /// resume from (older, it gets a fresh snapshot instead).
    #[arg(
        long,
        env = "ROSTER_PRESENCE_RETENTION_SECS",
        default_value_t = 2_678_400
    )]
    pub presence_retention_secs: u64,

    /// Recent presence events each replica keeps in memory per org, so most
    /// resumes need no database read.
    #[arg(long, env = "ROSTER_PRESENCE_TAIL", default_value_t = 4096)]
    pub presence_tail: usize,

    /// Events a watcher may fall behind before it is resynchronised with a
    /// fresh snapshot.
    #[arg(long, env = "ROSTER_PRESENCE_WATCH_BUFFER", default_value_t = 1024)]
    pub presence_watch_buffer: usize,

    /// How often each replica reads every org it follows for presence
    /// events even without a notification, in milliseconds: how late a
    /// change can be seen when a notification is lost.
    #[arg(long, env = "ROSTER_PRESENCE_POLL_MS", default_value_t = 5000)]
    pub presence_poll_ms: u64,

    /// Sessions and users each replica keeps in memory (each; orgs and
    /// their roles a tenth of it), so most requests are authenticated and
    /// answered without a database read; 0 turns the cache off, and with
    /// it the in-memory index that answers ListUsers queries (which holds
    /// every user of each org searched, about 1 KB each).
    #[arg(long, env = "ROSTER_CACHE_CAPACITY", default_value_t = 20_000)]
    pub cache_capacity: usize,

    /// Largest CSV file ImportUsers accepts, in bytes.
    #[arg(long, env = "ROSTER_IMPORT_MAX_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub import_max_bytes: u64,

    /// Password hashing cost.
    #[arg(long, env = "ROSTER_PASSWORD_HASHING", value_enum, default_value_t = PasswordHashing::Owasp, hide = true)]
    pub password_hashing: PasswordHashing,
}

/// A setting that names a file which cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {setting} {}: {source}", path.display())]
pub struct ConfigFileError {
    setting: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl Config {
    /// Reads the settings that name files (ROSTER_DATABASE_URL_FILE) into
    /// the values they stand for; once, at start-up.
    pub fn read_files(&mut self) -> Result<(), ConfigFileError> {
        if let Some(path) = &self.database_url_file {
            let url = std::fs::read_to_string(path).map_err(|source| ConfigFileError {
                setting: "ROSTER_DATABASE_URL_FILE",
                path: path.clone(),
                source,
            })?;
            self.database_url = url.trim().to_owned();
        }
        Ok(())
    }

    /// Settings for a server in a test or a benchmark: the given database,
    /// an OS-chosen port, cheap hashing, no telemetry export.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            database_url_file: None,
            log_format: LogFormat::Text,
            log_level: "warn".into(),
            otlp_endpoint: None,
            otlp_timeout_ms: 10_000,
            metric_export_interval_ms: 60_000,
            metrics_listen: None,
            health_listen: None,
            request_timeout_secs: 30,
            max_concurrent_requests: 1024,
            shutdown_grace_secs: 5,
            shutdown_delay_secs: 0,
            database_acquire_timeout_ms: 1500,
            no_migrate: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            bootstrap_org: "default".into(),
            bootstrap_admin_email: "admin@localhost".into(),
            bootstrap_admin_password: None,
            bootstrap_platform_key: None,
            smtp_url: None,
            smtp_from: "Roster <roster@localhost>".into(),
            public_url: "http://localhost:8080".into(),
            password_hashing: PasswordHashing::InsecureFast,
            presence_retention_secs: 2_678_400,
            presence_tail: 4096,
            presence_watch_buffer: 1024,
            presence_poll_ms: 5000,
            cache_capacity: 20_000,
            import_max_bytes: 50 * 1024 * 1024,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn otlp_timeout(&self) -> Duration {
        Duration::from_millis(self.otlp_timeout_ms.max(1))
    }

    pub fn metric_export_interval(&self) -> Duration {
        Duration::from_millis(self.metric_export_interval_ms.max(1))
    }

    /// The TLS files, when TLS is on.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }

    pub fn database_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms.max(1))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn presence_retention(&self) -> Duration {
        Duration::from_secs(self.presence_retention_secs)
    }

    pub fn presence_poll(&self) -> Duration {
        Duration::from_millis(self.presence_poll_ms)
    }

    pub fn hash_cost(&self) -> HashCost {
        match self.password_hashing {
            PasswordHashing::Owasp => HashCost::Owasp,
            PasswordHashing::InsecureFast => HashCost::InsecureFast,
        }
    }
}
