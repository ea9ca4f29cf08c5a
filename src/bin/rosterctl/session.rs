//! The session file `login` leaves behind, and signed-in connections.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use roster::api::{
    Bearer,
    pb::{
        audit_service_client::AuditServiceClient, auth_service_client::AuthServiceClient,
        org_service_client::OrgServiceClient, platform_service_client::PlatformServiceClient,
        presence_service_client::PresenceServiceClient, report_service_client::ReportServiceClient,
        user_service_client::UserServiceClient,
    },
};
use serde::{Deserialize, Serialize};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::error::{CliError, chain};

// ---------------------------------------------------------------------------
// Session file
// ---------------------------------------------------------------------------

/// What `login` leaves behind for the other commands.
#[derive(Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub org: String,
    pub token: String,
    /// RFC 3339; empty if the server did not say.
    pub expires_at: String,
}

pub fn session_path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("ROSTER_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::config_dir().ok_or_else(|| {
            CliError::msg("cannot find a config directory: set ROSTER_CONFIG_DIR")
        })?,
    };
    Ok(base.join("roster").join("session.json"))
}

/// Reads the session file as it is, expired or not.
pub fn read_session(path: &Path) -> Result<Session, CliError> {
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
pub fn current_session() -> Result<Session, CliError> {
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
pub fn save_session(session: &Session) -> Result<(), CliError> {
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

pub fn remove_session(path: &Path) -> Result<(), CliError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CliError::msg(format!(
            "cannot delete {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a new file only its owner can read (on unix).
pub fn private_file_options() -> fs::OpenOptions {
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
pub struct SignedIn {
    channel: Channel,
    bearer: Bearer,
    server: String,
}

impl SignedIn {
    /// Loads the session (failing before any network I/O when there is
    /// none) and connects to the server.
    pub async fn open(server: Option<String>) -> Result<Self, CliError> {
        let session = current_session()?;
        let bearer = bearer(&session.token)?;
        let server = server.unwrap_or(session.server);
        Ok(Self {
            channel: connect(&server).await?,
            bearer,
            server,
        })
    }

    /// A user-service client on a connection of its own whose calls wait
    /// for their answer as long as it takes: ImportUsers answers only once
    /// every row is processed, which grows with the file. Keepalive pings
    /// still notice a dead server.
    pub async fn users_without_deadline(
        &self,
    ) -> Result<UserServiceClient<InterceptedService<Channel, Bearer>>, CliError> {
        let channel = endpoint(&self.server)?
            .connect()
            .await
            .map_err(|e| connect_error(&self.server, &e))?;
        Ok(UserServiceClient::with_interceptor(
            channel,
            self.bearer.clone(),
        ))
    }

    pub fn auth(&self) -> AuthServiceClient<InterceptedService<Channel, Bearer>> {
        AuthServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn users(&self) -> UserServiceClient<InterceptedService<Channel, Bearer>> {
        UserServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn org(&self) -> OrgServiceClient<InterceptedService<Channel, Bearer>> {
        OrgServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn audit(&self) -> AuditServiceClient<InterceptedService<Channel, Bearer>> {
        AuditServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn presence(&self) -> PresenceServiceClient<InterceptedService<Channel, Bearer>> {
        PresenceServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn reports(&self) -> ReportServiceClient<InterceptedService<Channel, Bearer>> {
        ReportServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

/// A connection that calls PlatformService with the platform key in
/// `$ROSTER_PLATFORM_KEY` (never a flag: flags show in process lists).
pub struct PlatformConnection {
    channel: Channel,
    bearer: Bearer,
}

impl PlatformConnection {
    pub async fn open(server: &str) -> Result<Self, CliError> {
        let key = std::env::var("ROSTER_PLATFORM_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                CliError::msg(
                    "orgs commands need a platform API key in ROSTER_PLATFORM_KEY \
                     (made by `rosterd platform-keys create NAME`)",
                )
            })?;
        let bearer = Bearer::new(key.trim())
            .map_err(|_| CliError::msg("ROSTER_PLATFORM_KEY is not valid header text"))?;
        Ok(Self {
            channel: connect(server).await?,
            bearer,
        })
    }

    pub fn platform(&self) -> PlatformServiceClient<InterceptedService<Channel, Bearer>> {
        PlatformServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

pub fn bearer(token: &str) -> Result<Bearer, CliError> {
    Bearer::new(token).map_err(|_| {
        CliError::msg("the saved session token is not valid header text: run rosterctl login")
    })
}

pub async fn connect(server: &str) -> Result<Channel, CliError> {
    endpoint(server)?
        // Until the response headers arrive: a stream may then run for hours.
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .map_err(|e| connect_error(server, &e))
}

/// How an `https://` server is verified, and who this client is to it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsOptions {
    /// Trust this CA (PEM) for https:// servers instead of the system's roots.
    #[arg(long, env = "ROSTER_CA_CERT", global = true, value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
    /// Present this certificate (PEM) to an https:// server that asks for
    /// one (mutual TLS); needs --client-key.
    #[arg(
        long,
        env = "ROSTER_CLIENT_CERT",
        global = true,
        value_name = "FILE",
        requires = "client_key"
    )]
    client_cert: Option<std::path::PathBuf>,
    /// The key (PEM) of --client-cert.
    #[arg(
        long,
        env = "ROSTER_CLIENT_KEY",
        global = true,
        value_name = "FILE",
        requires = "client_cert"
    )]
    client_key: Option<std::path::PathBuf>,
}

/// The TLS settings of this run, read once from the command line; every
/// connection of the run uses them.
static TLS: std::sync::OnceLock<ClientTlsConfig> = std::sync::OnceLock::new();

/// Reads the files the options name into the settings every `https://`
/// connection of this run uses.
pub fn use_tls(options: TlsOptions) -> Result<(), CliError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| CliError::msg(format!("cannot read {}: {e}", path.display())))
    };
    let mut tls = match &options.ca_cert {
        Some(path) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(path)?)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&options.client_cert, &options.client_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    let _ = TLS.set(tls);
    Ok(())
}

fn endpoint(server: &str) -> Result<Endpoint, CliError> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| CliError::msg(format!("invalid server URL {server:?}: {}", chain(&e))))?;
    // https:// is TLS, always: never plaintext in its place.
    let endpoint = match endpoint.uri().scheme_str() {
        Some("https") => endpoint
            .tls_config(TLS.get().cloned().unwrap_or_default())
            .map_err(|e| CliError::msg(format!("TLS settings for {server}: {}", chain(&e))))?,
        Some("http") => endpoint,
        _ => {
            return Err(CliError::msg(format!(
                "invalid server URL {server:?}: it must start with http:// or https://"
            )));
        }
    };
    Ok(endpoint
        .connect_timeout(Duration::from_secs(10))
        // Pings while a call is open, so `presence watch` notices a dead
        // connection (no FIN, e.g. a vanished host) and reconnects.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10)))
}

fn connect_error(server: &str, err: &tonic::transport::Error) -> CliError {
    let cause = chain(err);
    // rustls reads a plaintext server's answer as a corrupt record.
    let hint = if server.starts_with("https://")
        && (cause.contains("corrupt message") || cause.contains("InvalidContentType"))
    {
        " (the server does not speak TLS: is it plaintext, at http://?)".to_owned()
    } else {
        crate::error::unreachable_hint(&cause)
            .map(|hint| format!(" ({hint})"))
            .unwrap_or_default()
    };
    CliError::msg(format!("cannot connect to {server}: {cause}{hint}"))
}
