//! The composition root: connect the store, migrate, bootstrap, build the
//! services, bind, serve, and shut down gracefully within a bounded time.

mod gauges;

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::ServiceBuilder;

use crate::{
    api::{
        self, AuditApi, AuthApi, AuthLayer, DeadlineLayer, OrgApi, PlatformApi, PresenceServer,
        ReportApi, UserApi,
        pb::{
            audit_service_server::AuditServiceServer, auth_service_server::AuthServiceServer,
            org_service_server::OrgServiceServer, platform_service_server::PlatformServiceServer,
            report_service_server::ReportServiceServer, user_service_server::UserServiceServer,
        },
    },
    audit::AuditLog,
    auth::{Authenticator, PasswordHasher, generate_password},
    config::Config,
    domain::{ApiKeyName, Email, OrgSlug, Password},
    error::Error,
    mail::{MailError, Mailer},
    org::Org,
    platform::Platform,
    presence::{Hub, HubConfig, Presences},
    store::{Store, StoreError},
    telemetry::{self, RpcLayer},
    tls::{Alpn, Tls, TlsError},
    users::{Bootstrap, Users},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the database schema is not current: missing migrations {}; run `rosterd migrate` \
         (or start without --no-migrate)",
        .0.join(", ")
    )]
    SchemaNotCurrent(Vec<String>),
    #[error("invalid bootstrap setting {setting}: {message}")]
    Bootstrap {
        setting: &'static str,
        message: String,
    },
    #[error("{0}")]
    Setup(#[from] Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("email: {0}")]
    Mail(#[from] MailError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("TLS: --tls-cert and --tls-key go together, and --tls-client-ca needs both")]
    TlsIncomplete,
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A built server, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    /// The plaintext health-only listener, when configured.
    health_listener: Option<TcpListener>,
    /// Set when the listener serves TLS.
    tls: Option<Tls>,
    store: Store,
    authenticator: Authenticator,
    users: Users,
    org: Org,
    audit_log: AuditLog,
    presences: Presences,
    platform: Platform,
    config: Config,
}

impl App {
    /// Connects and migrates the database (or, with `no_migrate`, checks
    /// that it is current), binds the listener (port 0 picks a free port:
    /// see [`App::local_addr`]), then bootstraps an empty database: a port
    /// in use stops start-up before anything is created.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let tls = match config.tls_files() {
            Some(files) => Some(Tls::load(&files, Alpn::H2)?),
            None if config.tls_cert.is_some()
                || config.tls_key.is_some()
                || config.tls_client_ca.is_some() =>
            {
                return Err(StartError::TlsIncomplete);
            }
            None => None,
        };
        let store = migrated_store(&config).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let health_listener = match config.health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let hasher = PasswordHasher::new(config.hash_cost())?;
        let mailer = Mailer::new(
            config.smtp_url.as_deref(),
            &config.smtp_from,
            &config.public_url,
        )?;
        let users = Users::new(store.clone(), hasher.clone(), mailer);
        bootstrap(&config, &users).await?;
        let authenticator = Authenticator::new(store.clone(), hasher.clone());
        bootstrap_platform_key(&config, &authenticator).await?;
        let failed = users.recover_imports().await?;
        if failed > 0 {
            tracing::warn!(failed, "imports cut off by the last stop are marked FAILED");
        }
        let hub = Hub::new(
            store.clone(),
            HubConfig {
                tail: config.presence_tail,
                watch_buffer: config.presence_watch_buffer,
                poll: config.presence_poll(),
            },
        );
        gauges::observe(&hub, &store);
        let presences = Presences::new(store.clone(), hub, config.presence_retention());
        Ok(Self {
            listener,
            health_listener,
            tls,
            presences,
            org: Org::new(store.clone()),
            audit_log: AuditLog::new(store.clone()),
            platform: Platform::new(store.clone(), users.clone(), hasher),
            store,
            authenticator,
            users,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then drains: health turns NOT_SERVING
    /// and everything is still served for the shutdown delay (so load
    /// balancers stop sending work first); then new connections are
    /// refused, watches end UNAVAILABLE, and in-flight RPCs get the
    /// configured grace period before the server stops regardless.
    ///
    /// Meanwhile health follows the database (see [`follow_database`]).
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::Serving).await;
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let layers = ServiceBuilder::new()
            .layer(RpcLayer::new(api::is_rpc))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                self.config.max_concurrent_requests,
            ))
            .layer(DeadlineLayer::new(self.config.request_timeout()))
            .layer(AuthLayer::new(self.authenticator.clone()))
            .map_response(api::wire::rename_oversize);
        let router = Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .trace_fn(telemetry::rpc_span)
            .layer(layers)
            .add_service(health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AuthServiceServer::new(AuthApi::new(
                self.authenticator.clone(),
                self.users.clone(),
            )))
            .add_service(UserServiceServer::new(UserApi::new(
                self.users.clone(),
                self.config.import_max_bytes,
            )))
            .add_service(PresenceServer::new(
                self.presences.clone(),
                self.authenticator.clone(),
            ))
            .add_service(OrgServiceServer::new(OrgApi::new(self.org.clone())))
            .add_service(AuditServiceServer::new(AuditApi::new(
                self.audit_log.clone(),
            )))
            .add_service(ReportServiceServer::new(ReportApi::new(
                self.presences.clone(),
            )))
            .add_service(PlatformServiceServer::new(PlatformApi::new(
                self.platform.clone(),
            )));

        let hub = self.presences.hub().clone();
        tokio::spawn(hub.clone().run());
        tokio::spawn(hub.clone().listen());
        tokio::spawn(self.presences.clone().run_sweeper());

        let probe = tokio::spawn(follow_database(self.store.clone(), health.clone()));
        // Health alone, in plaintext, for probes that cannot speak TLS; it
        // reports what the main listener's health does, until the end.
        let health_only = self.health_listener.map(|listener| {
            let server = Server::builder()
                .add_service(health_service.clone())
                .serve_with_incoming(incoming(listener));
            tokio::spawn(async move {
                if let Err(err) = server.await {
                    tracing::error!(%err, "the health listener stopped");
                }
            })
        });
        let _health_only = AbortOnDrop(health_only);

        let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
        let drained = async {
            drain_rx.await.ok();
        };
        let mut serve: std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
        > = match &self.tls {
            Some(tls) => {
                tls.spawn_reloader();
                Box::pin(router.serve_with_incoming_shutdown(tls.incoming(self.listener), drained))
            }
            None => Box::pin(router.serve_with_incoming_shutdown(incoming(self.listener), drained)),
        };
        tokio::select! {
            result = &mut serve => return Ok(result?),
            () = stop => {}
        }
        // Stopped and gone before health is set for the last time, so it
        // cannot turn health back to SERVING.
        probe.abort();
        let _ = probe.await;
        set_health(&health, ServingStatus::NotServing).await;
        let delay = self.config.shutdown_delay();
        tracing::info!(
            delay_secs = delay.as_secs(),
            "shutting down: health is NOT_SERVING; draining after the delay"
        );
        tokio::select! {
            result = &mut serve => return Ok(result?),
            () = tokio::time::sleep(delay) => {}
        }
        tracing::info!("draining in-flight requests");
        // Watches would hold the server open forever: end them with
        // UNAVAILABLE so their clients resume on another replica.
        hub.stop();
        drain_tx.send(()).ok();
        match tokio::time::timeout(self.config.shutdown_grace(), &mut serve).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!("grace period over; stopping with requests in flight"),
        }
        self.store.close().await?;
        Ok(())
    }
}

/// Aborts a task when dropped: a server task that must not outlive `run_until`.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// How often health checks the database, and how long one check may take.
const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(1);
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Keeps health truthful about the database: NOT_SERVING (overall and per
/// service) from the first failed probe, SERVING again from the first that
/// succeeds. One cheap query a second, whatever the RPC rate.
/// The accepted connections of a plaintext listener, with Nagle's
/// algorithm off: a response of several segments (a page of users) would
/// otherwise wait on the client's delayed ACK, some 40 ms. (The builder's
/// `tcp_nodelay` applies only to listeners it binds itself; TLS
/// connections are set in [`crate::tls`].)
fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn follow_database(store: Store, health: HealthReporter) {
    let mut serving = true;
    let mut interval = tokio::time::interval(HEALTH_PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let probe = tokio::time::timeout(HEALTH_PROBE_TIMEOUT, store.ping()).await;
        let reachable = matches!(probe, Ok(Ok(())));
        if reachable == serving {
            continue;
        }
        serving = reachable;
        if reachable {
            tracing::info!("the database answers again: health is SERVING");
            set_health(&health, ServingStatus::Serving).await;
        } else {
            match probe {
                Ok(Err(err)) => {
                    tracing::warn!(%err, "the database does not answer: health is NOT_SERVING")
                }
                _ => tracing::warn!(
                    "the database did not answer within a second: health is NOT_SERVING"
                ),
            }
            set_health(&health, ServingStatus::NotServing).await;
        }
    }
}

/// Applies every pending migration to the configured database and returns
/// their names: `rosterd migrate`.
pub async fn migrate(config: &Config) -> Result<Vec<String>, StartError> {
    let store = connect(config).await?;
    let pending = store.pending_migrations().await?;
    store.migrate().await?;
    store.close().await?;
    Ok(pending)
}

pub(crate) async fn connect(config: &Config) -> Result<Store, StartError> {
    Ok(Store::connect(
        &config.database_url,
        config.cache_capacity,
        config.database_acquire_timeout(),
    )
    .await?)
}

/// The store, migrated; with `no_migrate`, refused unless already current.
async fn migrated_store(config: &Config) -> Result<Store, StartError> {
    let store = connect(config).await?;
    if config.no_migrate {
        let pending = store.pending_migrations().await?;
        if !pending.is_empty() {
            return Err(StartError::SchemaNotCurrent(pending));
        }
    } else {
        store.migrate().await?;
    }
    Ok(store)
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in api::SERVICE_NAMES {
        health.set_service_status(name, status).await;
    }
}

/// Creates the first org and admin on an empty database, as configured or
/// with a generated password that is printed once.
async fn bootstrap(config: &Config, users: &Users) -> Result<(), StartError> {
    let invalid = |setting: &'static str| {
        move |e: crate::error::ParseError| StartError::Bootstrap {
            setting,
            message: e.message,
        }
    };
    let org = OrgSlug::parse(&config.bootstrap_org).map_err(invalid("ROSTER_BOOTSTRAP_ORG"))?;
    let admin_email = Email::parse(&config.bootstrap_admin_email)
        .map_err(invalid("ROSTER_BOOTSTRAP_ADMIN_EMAIL"))?;
    let (password, generated) = match &config.bootstrap_admin_password {
        Some(p) => (p.clone(), false),
        None => (generate_password(), true),
    };
    let admin_password = Password::parse(&password, Password::MIN_LEN)
        .map_err(invalid("ROSTER_BOOTSTRAP_ADMIN_PASSWORD"))?;
    let spec = Bootstrap {
        org,
        admin_email,
        admin_password,
    };
    if users.bootstrap(&spec).await? {
        if generated {
            tracing::warn!(
                org = spec.org.as_str(),
                email = spec.admin_email.as_str(),
                password = %password,
                "created org and first admin with a generated password, shown only this once; \
                 sign in with: rosterctl login --org {} --login {}",
                spec.org.as_str(),
                spec.admin_email.as_str(),
            );
        } else {
            tracing::info!(
                org = spec.org.as_str(),
                email = spec.admin_email.as_str(),
                "created org and first admin"
            );
        }
    }
    Ok(())
}

/// Creates the platform key `ROSTER_BOOTSTRAP_PLATFORM_KEY` names, unless
/// one of that name exists already, and prints its secret this once.
async fn bootstrap_platform_key(
    config: &Config,
    authenticator: &Authenticator,
) -> Result<(), StartError> {
    let Some(name) = &config.bootstrap_platform_key else {
        return Ok(());
    };
    let name = ApiKeyName::parse(name).map_err(|e| StartError::Bootstrap {
        setting: "ROSTER_BOOTSTRAP_PLATFORM_KEY",
        message: e.message,
    })?;
    let origin = crate::audit::Origin::default();
    if let Some(created) = authenticator.create_platform_key(name, &origin).await? {
        tracing::warn!(
            name = created.key.name.as_str(),
            secret = %created.secret,
            "created platform key, its secret shown only this once; use it as the bearer \
             token of PlatformService (rosterctl orgs … with ROSTER_PLATFORM_KEY)"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}

/// What reflection describes: the API, health, and the error details the
/// API sends (so grpcurl and `buf curl` decode them).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(api::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(api::pb::ERROR_DETAILS_DESCRIPTOR_SET)
}
