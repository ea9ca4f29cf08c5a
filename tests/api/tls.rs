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
    helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ORG, TestDatabase, start},
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

    // A plaintext server behind an https:// URL is a clear error.
    let plain = TestDatabase::create().await;
    let (plain_addr, _plain_server) = start(Config::for_tests(plain.url.clone())).await;
    let ctl = Ctl::at(format!("https://127.0.0.1:{}", plain_addr.port()));
    let failed = ctl
        .run(
            &[
                "login",
                "--org",
                "default",
                "--login",
                "a@b.c",
                "--password-stdin",
            ],
            "x\n",
        )
        .await;
    assert!(!failed.success);
    assert!(
        failed.stderr.contains("does not speak TLS"),
        "{}",
        failed.stderr
    );
}
