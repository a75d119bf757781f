//! TLS pieces both ends of the chat port share: the crypto provider, the
//! certificate fingerprint users compare, and the verifier that accepts any
//! certificate (`--insecure`, benchmarks).
//!
//! The chat port speaks TLS 1.3 and 1.2 through `rustls` with the `ring`
//! provider (see docs/architecture.md, "TLS"). The server side (driving
//! `rustls::ServerConnection` inside the loop, the self-signed certificate,
//! reloads) is in `server::tls`; the client side (feature `client`) is here:
//! [`connect`] with a [`ClientTls`] (plain, or TLS verified by trust on
//! first use, a CA file, the system roots, or not at all), the
//! [`KnownServers`] file of trust on first use, the [`Trust`] a connection
//! got, [`TlsError`], and the [`ChatStream`] that splits into a
//! [`ReadHalf`] and a [`WriteHalf`] for a reader thread and writers.

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
mod known_servers;
#[cfg(feature = "client")]
mod stream;

#[cfg(feature = "client")]
pub use client::{ClientTls, Trust, Verify, connect};
#[cfg(feature = "client")]
pub use error::TlsError;
#[cfg(feature = "client")]
pub use known_servers::{KNOWN_SERVERS_ENV, KnownServers};
#[cfg(feature = "client")]
pub use stream::{ChatStream, Closer, ReadHalf, WriteHalf};

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The crypto provider every TLS configuration of the workspace uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SHA-256 fingerprint of a certificate (its DER bytes): what the
/// server logs at start, what trust on first use remembers, and what
/// `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    /// Parses the form [`fmt::Display`] writes (`AB:CD:...`, 32 bytes; case
    /// and the colons are optional), as users paste it.
    pub fn parse(text: &str) -> Option<Self> {
        let hex: Vec<u8> = text
            .trim()
            .bytes()
            .filter(|&b| b != b':')
            .collect::<Vec<_>>();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for Fingerprint {
    /// Upper-case hex bytes joined by colons, as openssl prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A server-certificate verifier that accepts any certificate, for
/// `--insecure` and the load generators. The handshake signatures are still
/// checked (the peer must own the key of the certificate it shows), but
/// nothing ties that certificate to the server: an on-path attacker can
/// read everything. Never the default.
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyCertificate {
    /// A verifier using `provider`'s signature algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that accepts any server certificate (see
/// [`AcceptAnyCertificate`]): for `--insecure` and the load generators.
pub fn insecure_client_config() -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_prints_as_openssl_does_and_parses_back() {
        let f = Fingerprint::of(b"not really a certificate");
        let text = f.to_string();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert!(text.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()));
        assert_eq!(Fingerprint::parse(&text), Some(f));
        assert_eq!(
            Fingerprint::parse(&text.replace(':', "").to_lowercase()),
            Some(f)
        );
        assert_eq!(Fingerprint::parse("AB:CD"), None);
        assert_eq!(Fingerprint::parse(&"ZZ".repeat(32)), None);
    }
}
