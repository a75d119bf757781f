//! TLS on the chat port, server side.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`ServerTls`] (a ready `rustls::ServerConfig` and its fingerprint), loading PEM files, [`TlsSource`] (where a daemon's certificate comes from, loaded again on reload), [`ServerTlsError`] |
//! | `selfsigned.rs` | the self-signed certificate created on first start in a data directory and reused afterwards |
//! | `session.rs` | `TlsSession`: one connection's `rustls::ServerConnection` driven non-blockingly by the loop |
//!
//! Everything that touches the disk (reading PEM files, creating the
//! self-signed pair) runs before the loop starts or on the caller's thread
//! for a reload ([`crate::ServerHandle::set_tls`]); the loop only receives a
//! ready [`ServerTls`] through its command channel. New handshakes use the
//! configuration the loop holds at accept time; connections already up keep
//! theirs.

mod selfsigned;
pub(crate) mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::{Fingerprint, provider};

pub use selfsigned::{CERT_FILE, KEY_FILE, TLS_DIR};

/// A TLS configuration ready for the chat port: what the loop hands every
/// new connection, and the fingerprint of its leaf certificate (what the
/// daemon logs and what users compare).
#[derive(Clone)]
pub struct ServerTls {
    /// The rustls configuration shared by every handshake started with it.
    config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate's DER bytes.
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Two configurations are equal when they present the same certificate
/// (`ServerConfig` compares its settings, and a key cannot be compared).
impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl ServerTls {
    /// A configuration presenting `chain` (leaf first) with `key`: TLS 1.3
    /// and 1.2 with the workspace's provider ([`crate::tls::provider`]), no
    /// client authentication, no ALPN (docs/protocol.md, "Transport: TLS").
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, ServerTlsError> {
        let leaf = chain.first().ok_or(ServerTlsError::EmptyChain)?;
        let fingerprint = Fingerprint::of(leaf);
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(ServerTlsError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(ServerTlsError::Rustls)?;
        Ok(Self {
            config: Arc::new(config),
            fingerprint,
        })
    }

    /// A configuration from PEM text: `cert_pem` holds the chain (leaf
    /// first), `key_pem` the private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ServerTlsError> {
        Self::from_pem_named(
            cert_pem,
            Path::new("(certificate)"),
            key_pem,
            Path::new("(key)"),
        )
    }

    /// A configuration from two PEM files (see [`ServerTls::from_pem`]).
    /// Reads the disk: call it before the server starts or off its thread.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, ServerTlsError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        Self::from_pem_named(&cert_pem, cert, &key_pem, key)
    }

    /// The self-signed certificate kept in `data_dir/tls/`: created (key
    /// mode 0600, directories 0700) when absent, reused when present, so
    /// the fingerprint users remember stays the same from start to start.
    pub fn self_signed(data_dir: &Path) -> Result<Self, ServerTlsError> {
        let (cert, key) = selfsigned::load_or_create(data_dir)?;
        Self::from_pem_files(&cert, &key)
    }

    fn from_pem_named(
        cert_pem: &[u8],
        cert_path: &Path,
        key_pem: &[u8],
        key_path: &Path,
    ) -> Result<Self, ServerTlsError> {
        let pem_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ServerTlsError::Pem { path, source }
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_err(cert_path))?;
        if chain.is_empty() {
            return Err(ServerTlsError::NoCertificate(cert_path.to_path_buf()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem_err(key_path))?;
        Self::new(chain, key)
    }

    /// SHA-256 fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The rustls configuration (for tests and embedders that inspect it).
    pub fn rustls_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

/// Where a daemon's certificate comes from: loaded at start and loaded
/// again on every reload (SIGHUP), so replacing the files and signalling is
/// all a certificate renewal takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A real certificate chain and its key, PEM files.
    Files {
        /// The chain, leaf first.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// The self-signed pair in `data_dir/tls/` (created on first use).
    SelfSigned {
        /// The server's data directory.
        data_dir: PathBuf,
    },
}

impl TlsSource {
    /// Reads (or, for `SelfSigned` the first time, creates) the
    /// certificate. Touches the disk: never call it on the loop's thread.
    pub fn load(&self) -> Result<ServerTls, ServerTlsError> {
        match self {
            Self::Files { cert, key } => ServerTls::from_pem_files(cert, key),
            Self::SelfSigned { data_dir } => ServerTls::self_signed(data_dir),
        }
    }
}

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file or directory could not be written (self-signed certificate).
    #[error("cannot write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A PEM file is malformed or holds no usable item of the kind needed.
    #[error("{path}: not a usable PEM file")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no certificate in the file")]
    NoCertificate(PathBuf),
    /// An empty chain was given.
    #[error("the certificate chain is empty")]
    EmptyChain,
    /// rustls refused the certificate or key (e.g. the key does not match
    /// the certificate, or an unsupported key type).
    #[error("the certificate or key is unusable")]
    Rustls(#[source] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate")]
    Generate(#[source] rcgen::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, ServerTlsError> {
    std::fs::read(path).map_err(|source| ServerTlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}
