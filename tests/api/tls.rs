//! TLS and mutual TLS on the gRPC listener, with certificates made here:
//! a verifying client is served, a client that trusts another CA or speaks
//! plaintext is not, mutual TLS refuses a client without a certificate, and
//! a rotated certificate reaches the next connection while an open watch
//! goes on.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use roster::{
    api::{
        Bearer,
        pb::{self, presence_service_client::PresenceServiceClient},
    },
    config::Config,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    cli::Ctl,
    helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ORG, Rosterd, TestDatabase, start},
};

/// A certificate authority made for the test.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Self { params, key, pem }
    }

    /// A certificate for `names`, signed by this CA: (certificate, key) PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// The server's files in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the pair as a rotation does: each file replaced whole.
    fn write_pair(&self, (cert, key): &(String, String)) {
        for (name, text) in [("server.key", key), ("server.crt", cert)] {
            let staged = self.path(&format!("{name}.new"));
            std::fs::write(&staged, text).expect("staged");
            std::fs::rename(&staged, self.path(name)).expect("replaced");
        }
    }
}

async fn tls_server(files: &Files, client_ca: Option<&Ca>) -> (SocketAddr, TestDatabase) {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.bootstrap_org = ORG.into();
    config.bootstrap_admin_email = ADMIN_EMAIL.into();
    config.bootstrap_admin_password = Some(ADMIN_PASSWORD.into());
    config.tls_cert = Some(files.path("server.crt"));
    config.tls_key = Some(files.path("server.key"));
    if let Some(ca) = client_ca {
        std::fs::write(files.path("clients.crt"), &ca.pem).expect("client CA");
        config.tls_client_ca = Some(files.path("clients.crt"));
    }
    let (addr, _server) = start(config).await;
    (addr, database)
}

/// A channel to `addr` that trusts `ca`, optionally with a client identity.
async fn connect(
    addr: SocketAddr,
    ca: &Ca,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

async fn healthy(channel: Channel) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_tls_server_answers_verifying_clients_and_no_others() {
    let ca = Ca::new("Roster test CA");
    let files = Files::new();
    files.write_pair(&ca.issue(&["localhost", "127.0.0.1"]));
    let (addr, _database) = tls_server(&files, None).await;

    let channel = connect(addr, &ca, None).await.expect("TLS connects");
    healthy(channel).await.expect("served over TLS");

    let other = Ca::new("Another CA");
    let refused = match connect(addr, &other, None).await {
        Ok(channel) => healthy(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client trusting another CA must not get through");

    let plaintext = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    let refused = match plaintext {
        Ok(channel) => healthy(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "plaintext must not be served on a TLS listener");
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_from_its_ca() {
    let ca = Ca::new("Roster test CA");
    let clients = Ca::new("Client CA");
    let files = Files::new();
    files.write_pair(&ca.issue(&["localhost"]));
    let (addr, _database) = tls_server(&files, Some(&clients)).await;

    let without = match connect(addr, &ca, None).await {
        Ok(channel) => healthy(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(without, "no client certificate: refused at the handshake");
    let stranger = Ca::new("Stranger CA").issue(&["router"]);
    let wrong = match connect(addr, &ca, Some(&stranger)).await {
        Ok(channel) => healthy(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(wrong, "a certificate from another CA: refused");
    let router = clients.issue(&["router"]);
    let channel = connect(addr, &ca, Some(&router))
        .await
        .expect("mTLS connects");
    healthy(channel)
        .await
        .expect("served with a client certificate");
}

#[tokio::test]
async fn a_rotated_certificate_reaches_new_connections_while_a_watch_goes_on() {
    let first = Ca::new("First CA");
    let second = Ca::new("Second CA");
    let files = Files::new();
    files.write_pair(&first.issue(&["localhost"]));
    let (addr, _database) = tls_server(&files, None).await;

    let channel = connect(addr, &first, None).await.expect("connects");
    let token = roster::api::pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            org: ORG.into(),
            login: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect("signed in over TLS")
        .into_inner()
        .session_token;
    let bearer = Bearer::new(&token).expect("token");
    let mut watch = PresenceServiceClient::with_interceptor(channel.clone(), bearer.clone())
        .watch_presence(pb::WatchPresenceRequest::default())
        .await
        .expect("watch opens")
        .into_inner();
    loop {
        let event = watch.message().await.expect("snapshot").expect("event");
        if event.kind() == pb::PresenceEventKind::SnapshotEnd {
            break;
        }
    }

    files.write_pair(&second.issue(&["localhost"]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let rotated = loop {
        if let Ok(channel) = connect(addr, &second, None).await
            && healthy(channel.clone()).await.is_ok()
        {
            break channel;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated certificate was not served within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // A change made over the new connection reaches the watch opened on
    // the old one.
    PresenceServiceClient::with_interceptor(rotated, bearer)
        .set_availability(pb::SetAvailabilityRequest {
            status: pb::PresenceStatus::Available as i32,
            ..Default::default()
        })
        .await
        .expect("available, over the rotated connection");
    let change = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the open watch still delivers")
        .expect("no error on the open watch")
        .expect("the watch is still open");
    assert_eq!(
        change.presence.expect("presence").status(),
        pb::PresenceStatus::Available
    );
}

#[tokio::test]
async fn rosterctl_speaks_tls_and_mutual_tls_and_never_falls_back_to_plaintext() {
    let ca = Ca::new("Roster test CA");
    let clients = Ca::new("Client CA");
    let files = Files::new();
    files.write_pair(&ca.issue(&["localhost"]));
    std::fs::write(files.path("ca.crt"), &ca.pem).expect("CA file");
    let (client_cert, client_key) = clients.issue(&["rosterctl"]);
    std::fs::write(files.path("client.crt"), client_cert).expect("client cert");
    std::fs::write(files.path("client.key"), client_key).expect("client key");
    let (addr, _database) = tls_server(&files, Some(&clients)).await;
    let ctl = Ctl::at(format!("https://localhost:{}", addr.port()));
    let path = |name: &str| files.path(name).display().to_string();
    let login = |extra: Vec<String>| {
        let mut args: Vec<String> = vec!["--ca-cert".into(), path("ca.crt")];
        args.extend(extra);
        args.extend(
            [
                "login",
                "--org",
                ORG,
                "--login",
                ADMIN_EMAIL,
                "--password-stdin",
            ]
            .map(String::from),
        );
        args
    };
    let args = login(Vec::new());
    let refused = ctl
        .run(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .await;
    assert!(!refused.success, "no client certificate: refused");
    let args = login(vec![
        "--client-cert".into(),
        path("client.crt"),
        "--client-key".into(),
        path("client.key"),
    ]);
    let signed_in = ctl
        .run(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .await;
    assert!(signed_in.success, "{}", signed_in.stderr);

    // And a TLS server behind an http:// URL.
    let failed = Ctl::at(format!("http://localhost:{}", addr.port()))
        .failed_login()
        .await;
    assert!(
        failed.contains("if the server serves TLS, use an https:// URL"),
        "{failed}"
    );

    // A plaintext server behind an https:// URL is a clear error.
    let plain = TestDatabase::create().await;
    let (plain_addr, _plain_server) = start(Config::for_tests(plain.url.clone())).await;
    let failed = Ctl::at(format!("https://127.0.0.1:{}", plain_addr.port()))
        .failed_login()
        .await;
    assert!(failed.contains("does not speak TLS"), "{failed}");
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `GET /metrics` over TLS trusting `ca`, with a client identity or none;
/// the status line, or why the exchange failed.
async fn scrape_tls(
    addr: SocketAddr,
    ca: &Ca,
    identity: Option<&(String, String)>,
) -> Result<String, String> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("CA pem"))
        .expect("CA");
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
            )
            .expect("identity"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn metrics_follow_the_tls_settings_and_health_has_a_plaintext_port_for_probes() {
    let ca = Ca::new("Roster test CA");
    let clients = Ca::new("Client CA");
    let files = Files::new();
    files.write_pair(&ca.issue(&["localhost"]));
    std::fs::write(files.path("clients.crt"), &clients.pem).expect("client CA");
    let scraper = clients.issue(&["prometheus"]);
    let (metrics, health) = (free_addr(), free_addr());
    let path = |name: &str| files.path(name).display().to_string();
    let env = [
        ("ROSTER_TLS_CERT", path("server.crt")),
        ("ROSTER_TLS_KEY", path("server.key")),
        ("ROSTER_TLS_CLIENT_CA", path("clients.crt")),
        ("ROSTER_METRICS_LISTEN", metrics.to_string()),
        ("ROSTER_HEALTH_LISTEN", health.to_string()),
    ];
    let database = TestDatabase::create().await;
    // Started means health answered SERVING on the plaintext port.
    let rosterd = Rosterd::start_with(&database.url, &env).await;

    let status = scrape_tls(metrics, &ca, Some(&scraper))
        .await
        .expect("scraped");
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert!(
        scrape_tls(metrics, &ca, None).await.is_err(),
        "mutual TLS: no client certificate, no metrics"
    );
    let plaintext = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(metrics).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = plaintext.await.unwrap_or_default();
    assert!(
        !answer.contains("200 OK"),
        "no plaintext metrics: {answer:?}"
    );

    // The main listener stays TLS only; the health port serves nothing else.
    let plain = Channel::from_shared(format!("http://{}", rosterd.addr))
        .expect("uri")
        .connect()
        .await;
    if let Ok(channel) = plain {
        healthy(channel)
            .await
            .expect_err("no plaintext on the main listener");
    }
    let channel = Channel::from_shared(format!("http://{health}"))
        .expect("uri")
        .connect()
        .await
        .expect("the health port");
    let status = pb::auth_service_client::AuthServiceClient::new(channel)
        .login(pb::LoginRequest {
            org: ORG.into(),
            login: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect_err("health only");
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    // `rosterd probe` (the compose and exec health check) uses that port.
    let probe = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("probe")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("ROSTER_LOG_LEVEL", "warn")
        .output()
        .expect("probe runs");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let probe = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("probe")
        .envs(
            env.iter()
                .filter(|(k, _)| *k != "ROSTER_HEALTH_LISTEN")
                .map(|(k, v)| (k, v)),
        )
        .env_remove("ROSTER_HEALTH_LISTEN")
        .env("ROSTER_LOG_LEVEL", "warn")
        .output()
        .expect("probe runs");
    assert!(!probe.status.success());
    assert!(
        String::from_utf8_lossy(&probe.stderr).contains("ROSTER_HEALTH_LISTEN"),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}
