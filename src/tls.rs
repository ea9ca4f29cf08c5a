//! TLS for the gRPC listener (ALPN `h2`) and the metrics endpoint (ALPN
//! `http/1.1`): rustls (ring), TLS 1.2 and 1.3, the same files for both.
//!
//! Contract:
//! - The certificate chain and key are PEM files. They are read at start-up
//!   (a bad file stops start-up, naming it) and again whenever either
//!   file's modification time changes (checked every [`RELOAD_CHECK`]), so a
//!   rotated certificate (cert-manager, say) is served from the next
//!   handshake on, without a restart. Open connections, and the streams on
//!   them, keep the session they began with. A rotated pair that does not
//!   load (half-written, mismatched) is logged and the previous one kept.
//! - With a client CA, mutual TLS: a client without a certificate signed by
//!   that CA is refused at the handshake.
//! - Handshakes run on their own tasks, with [`HANDSHAKE_TIMEOUT`], so a
//!   slow or silent client never holds up the next connection.

use std::{
    io,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig,
        server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
        sign::CertifiedKey,
    },
    server::TlsStream,
};
use tokio_stream::wrappers::ReceiverStream;

/// How often the certificate and key files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Accepted connections whose handshake is done, waiting to be served.
const READY_QUEUE: usize = 64;

/// The protocol a TLS listener speaks inside, as announced by ALPN.
#[derive(Debug, Clone, Copy)]
pub enum Alpn {
    /// gRPC.
    H2,
    /// Prometheus scrapes.
    Http1,
}

/// Where the TLS material is.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("the key in {} cannot sign: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the certificate in {} does not match the key: {source}", path.display())]
    Mismatch {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS settings: {0}")]
    Config(#[from] rustls::Error),
    #[error("client CA {}: {source}", path.display())]
    ClientCa {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The listener's TLS: an acceptor whose certificate follows the files.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    certificate: Arc<ReloadingCertificate>,
}

impl Tls {
    pub fn load(files: &TlsFiles, alpn: Alpn) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(ReloadingCertificate {
            current: RwLock::new(Arc::new(load_pair(files)?)),
            stamp: RwLock::new(stamp(files)),
            files: files.clone(),
        });
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match &files.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(path, "client CA")? {
                    roots.add(cert).map_err(|e| TlsError::ClientCa {
                        path: path.clone(),
                        source: Box::new(e),
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| TlsError::ClientCa {
                        path: path.clone(),
                        source: Box::new(e),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![match alpn {
            Alpn::H2 => b"h2".to_vec(),
            Alpn::Http1 => b"http/1.1".to_vec(),
        }];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }

    /// Re-reads the files when they change, until the process ends.
    pub fn spawn_reloader(&self) {
        let certificate = self.certificate.clone();
        tokio::spawn(async move {
            let mut check = tokio::time::interval(RELOAD_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                check.tick().await;
                certificate.reload_if_changed();
            }
        });
    }

    /// The connections `listener` accepts, once their handshake succeeded.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
        let (ready, incoming) = tokio::sync::mpsc::channel(READY_QUEUE);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: wait, go on.
                        tracing::warn!(%err, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if ready.is_closed() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    let peer = stream.peer_addr().ok();
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send(Ok(tls)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(?peer, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(incoming)
    }
}

/// The certificate handshakes get, replaced when the files change.
#[derive(Debug)]
struct ReloadingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when `current` was read.
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
    files: TlsFiles,
}

impl ReloadingCertificate {
    fn reload_if_changed(&self) {
        let now = stamp(&self.files);
        if now == *self.stamp.read().unwrap_or_else(|e| e.into_inner()) {
            return;
        }
        match load_pair(&self.files) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
                *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = now;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            // Half-written during a rotation, most likely: try again at the
            // next check, serving the previous pair meanwhile.
            Err(err) => {
                tracing::warn!(%err, "TLS certificate not reloaded; keeping the previous one")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

fn load_pair(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(&files.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Read {
        what: "key",
        path: files.key.clone(),
        source,
    })?;
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| TlsError::Key {
            path: files.key.clone(),
            source,
        })?;
    let pair = CertifiedKey::new(chain, signing_key);
    pair.keys_match().map_err(|source| TlsError::Mismatch {
        path: files.cert.clone(),
        source,
    })?;
    Ok(pair)
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}
