//! TLS for both listeners (rustls with ring), off unless `tls_cert_file` and `tls_key_file` are
//! set. The certificate is read again when either file changes (a renewed Let's Encrypt or
//! cert-manager certificate applies without a restart): new handshakes get it, connections
//! already open keep theirs. A file that cannot be read or parsed leaves the certificate in
//! force as it is, with an error in the log, as a half-written renewal must not take the
//! server down.

use crate::config::TlsFiles;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the files are checked for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no PEM item of its kind.
    #[error("{what} {path}: {message}")]
    File {
        /// "certificate file" or "key file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key is of a kind rustls cannot sign with, or does not match the certificate.
    #[error("the key in {path} cannot be used with the certificate: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the certificate chain and key of `files`.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let file_error = |what, path: &Path, message: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|error| file_error("certificate file", &files.cert, error.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "certificate file",
            &files.cert,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|error| file_error("key file", &files.key, error.to_string()))?;
    let certified =
        CertifiedKey::from_der(chain, key, &provider()).map_err(|error| TlsError::Key {
            path: files.key.clone(),
            message: error.to_string(),
        })?;
    Ok(Arc::new(certified))
}

/// The certificate in force, replaced whole when the files change.
#[derive(Debug)]
pub struct Certificate {
    current: ArcSwap<CertifiedKey>,
    files: TlsFiles,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl Certificate {
    /// The certificate of `files`, checked now.
    pub fn load(files: TlsFiles) -> Result<Arc<Certificate>, TlsError> {
        let current = ArcSwap::new(load(&files)?);
        Ok(Arc::new(Certificate { current, files }))
    }

    /// A TLS acceptor offering `protocols` by ALPN (`h2`, `http/1.1`), TLS 1.2 and 1.3.
    pub fn acceptor(
        self: &Arc<Self>,
        protocols: &[&[u8]],
    ) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// Reads the files again whenever their contents change, until aborted.
    pub async fn follow_files(self: Arc<Self>) {
        let mut seen = fingerprint(&self.files).await;
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = fingerprint(&self.files).await;
            if now == seen {
                continue;
            }
            seen = now;
            let files = self.files.clone();
            match tokio::task::spawn_blocking(move || load(&files)).await {
                Ok(Ok(certified)) => {
                    self.current.store(certified);
                    metrics::counter!("mlserve_tls_reloads_total").increment(1);
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Ok(Err(error)) => {
                    metrics::counter!("mlserve_tls_reload_errors_total").increment(1);
                    tracing::error!(%error, "TLS files changed but cannot be used; the certificate in force stays");
                }
                Err(error) => tracing::error!(%error, "TLS reload failed"),
            }
        }
    }
}

/// The TLS handshake of an accepted connection, due within `wait`; a failure is counted in
/// `mlserve_tls_handshake_failures_total` and logged at debug level (a port scan or a client
/// speaking plain text is not worth more).
pub async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    wait: Duration,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let failure = match tokio::time::timeout(wait, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => return Some(stream),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("not done within {:.1} s", wait.as_secs_f64()),
    };
    metrics::counter!("mlserve_tls_handshake_failures_total").increment(1);
    tracing::debug!(%peer, failure, "TLS handshake failed");
    None
}

/// Both files' contents as one fingerprint (None for a file that cannot be read).
async fn fingerprint(files: &TlsFiles) -> [Option<[u8; 32]>; 2] {
    [
        super::auth::keys_fingerprint(&files.cert).await,
        super::auth::keys_fingerprint(&files.key).await,
    ]
}
