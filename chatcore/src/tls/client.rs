//! The client end of the chat port's TLS: what to verify the server with,
//! trust on first use, and the blocking connect that completes the
//! handshake before a byte of chat is sent.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::error::TlsError;
use super::known_servers::KnownServers;
use super::stream::ChatStream;
use super::{AcceptAnyCertificate, Fingerprint, provider};

/// How a client connects to the chat port.
#[derive(Debug, Clone)]
pub enum ClientTls {
    /// Plain TCP (`--no-tls`): for a server started with `--no-tls` on a
    /// trusted network, and comparison benchmarks.
    Plain,
    /// TLS, verifying the server as given.
    Tls(Verify),
}

/// How a TLS client decides that the certificate is the server's.
#[derive(Debug, Clone)]
pub enum Verify {
    /// The default, as ssh and Mumble do: the first connection to a
    /// `host:port` remembers the certificate's fingerprint in this file; a
    /// later connection must present the same certificate.
    TrustOnFirstUse(KnownServers),
    /// `--ca-file FILE`: the chain must lead to one of these PEM CA
    /// certificates and name the host part of the address.
    CaFile(PathBuf),
    /// `--system-roots`: as `CaFile`, with the system's CA certificates.
    SystemRoots,
    /// `--insecure`: any certificate is accepted (the handshake signatures
    /// are still checked). An on-path attacker can read everything; for
    /// tests and benchmarks only.
    Insecure,
}

/// Why the client trusts the connection it got: what a client shows the
/// user ("first connection: remembered fingerprint ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Plain TCP: nothing is encrypted or verified.
    Plain,
    /// First connection to this server: its fingerprint was just
    /// remembered. Show it, so the user can compare it with the one the
    /// server logs.
    FirstUse(Fingerprint),
    /// The server presented the fingerprint remembered from before.
    Known(Fingerprint),
    /// The chain was verified against the CA file or the system roots.
    CaVerified,
    /// Nothing was verified (`--insecure`).
    Insecure,
}

impl std::fmt::Display for Trust {
    /// A short phrase for a status line ("TLS, certificate remembered on
    /// first use: AB:CD:...").
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trust::Plain => f.write_str("plain TCP, not encrypted"),
            Trust::FirstUse(fp) => write!(f, "TLS, certificate remembered on first use: {fp}"),
            Trust::Known(fp) => write!(f, "TLS, known certificate {fp}"),
            Trust::CaVerified => f.write_str("TLS, certificate verified by a CA"),
            Trust::Insecure => f.write_str("TLS, certificate NOT verified (--insecure)"),
        }
    }
}

/// Connects to `server` (`host:port` as typed), then, unless `tls` is
/// [`ClientTls::Plain`], completes the TLS handshake and verifies the
/// server. Everything (resolution excepted) is bounded by `timeout`.
///
/// With trust on first use, a server met for the first time is remembered
/// ([`Trust::FirstUse`]); a changed certificate is refused inside the
/// handshake with [`TlsError::CertificateChanged`].
pub fn connect(
    server: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<(ChatStream, Trust), TlsError> {
    let deadline = Instant::now() + timeout;
    let host = host_part(server)?;
    let verify = match tls {
        ClientTls::Plain => {
            let sock = resolve_and_connect(server, deadline)?;
            return Ok((ChatStream::plain(sock), Trust::Plain));
        }
        ClientTls::Tls(v) => v,
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| TlsError::BadAddress {
        server: server.to_owned(),
        reason: format!("{host:?} is not a valid server name: {e}"),
    })?;
    let provider = provider();
    // A fresh configuration per connection: no session is resumed (a
    // resumed session skips certificate verification), and the trust on
    // first use verifier holds this connection's state.
    let (config, tofu) = match verify {
        Verify::TrustOnFirstUse(known) => {
            let remembered = known.get(server)?;
            let verifier = Arc::new(TofuVerifier {
                inner: AcceptAnyCertificate::new(provider.clone()),
                remembered,
                presented: Mutex::new(None),
            });
            let config = builder(&provider)?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth();
            (config, Some((known, verifier)))
        }
        Verify::CaFile(path) => {
            let roots = ca_file_roots(path)?;
            let config = builder(&provider)?
                .with_root_certificates(roots)
                .with_no_client_auth();
            (config, None)
        }
        Verify::SystemRoots => {
            let config = builder(&provider)?
                .with_root_certificates(system_roots()?)
                .with_no_client_auth();
            (config, None)
        }
        Verify::Insecure => (
            builder(&provider)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
                .with_no_client_auth(),
            None,
        ),
    };
    let sock = resolve_and_connect(server, deadline)?;
    let mut conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| TlsError::Handshake {
            server: server.to_owned(),
            reason: e.to_string(),
        })?;
    let handshake = handshake(&mut conn, &sock, deadline);
    // A refused changed certificate reports itself whatever the socket said.
    if let Some((known, verifier)) = &tofu {
        let presented = *verifier
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let (Some(remembered), Some(presented)) = (verifier.remembered, presented)
            && remembered != presented
        {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            return Err(TlsError::CertificateChanged {
                server: server.to_owned(),
                remembered,
                presented,
                file: known.path().to_path_buf(),
            });
        }
    }
    if let Err(e) = handshake {
        let _ = sock.shutdown(std::net::Shutdown::Both);
        return Err(match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TlsError::Timeout {
                server: server.to_owned(),
            },
            _ => TlsError::Handshake {
                server: server.to_owned(),
                reason: handshake_reason(&e),
            },
        });
    }
    sock.set_read_timeout(None)
        .and_then(|()| sock.set_write_timeout(None))
        .map_err(|source| TlsError::Connect {
            server: server.to_owned(),
            source,
        })?;
    let trust = match (verify, tofu) {
        (_, Some((known, verifier))) => {
            let presented = verifier
                .presented
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .ok_or_else(|| TlsError::Handshake {
                    server: server.to_owned(),
                    reason: "the server presented no certificate".to_owned(),
                })?;
            match verifier.remembered {
                // Differing fingerprints were refused above.
                Some(fp) => Trust::Known(fp),
                None => {
                    known.remember(server, presented)?;
                    Trust::FirstUse(presented)
                }
            }
        }
        (Verify::Insecure, None) => Trust::Insecure,
        (_, None) => Trust::CaVerified,
    };
    Ok((ChatStream::tls(conn, sock), trust))
}

/// The host part of `host:port` (brackets of an IPv6 literal removed): the
/// name the certificate is verified against and sent as SNI.
fn host_part(server: &str) -> Result<&str, TlsError> {
    let bad = |reason: &str| TlsError::BadAddress {
        server: server.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = server
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| bad("no port"))?;
    if port.parse::<u16>().is_err() {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(host)
}

/// Resolves `server` and connects to the first address that answers
/// before `deadline`.
fn resolve_and_connect(server: &str, deadline: Instant) -> Result<TcpStream, TlsError> {
    let addrs: Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(|source| TlsError::Resolve {
            server: server.to_owned(),
            source,
        })?
        .collect();
    connect_tcp(server, &addrs, deadline)
}

/// Connects to the first address that answers before `deadline`.
fn connect_tcp(
    server: &str,
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream, TlsError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TlsError::Timeout {
                server: server.to_owned(),
            });
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(sock) => {
                sock.set_nodelay(true).map_err(|source| TlsError::Connect {
                    server: server.to_owned(),
                    source,
                })?;
                return Ok(sock);
            }
            Err(e) => last = e,
        }
    }
    if matches!(
        last.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return Err(TlsError::Timeout {
            server: server.to_owned(),
        });
    }
    Err(TlsError::Connect {
        server: server.to_owned(),
        source: last,
    })
}

/// Drives the handshake on the blocking socket until done or `deadline`.
fn handshake(conn: &mut ClientConnection, sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let mut io = sock;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake deadline",
            ));
        }
        sock.set_read_timeout(Some(left))?;
        sock.set_write_timeout(Some(left))?;
        let (read, wrote) = conn.complete_io(&mut io)?;
        if read == 0 && wrote == 0 && conn.is_handshaking() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake (does it speak TLS? try --no-tls)",
            ));
        }
    }
    // Flush what the handshake left (the client's Finished).
    while conn.wants_write() {
        conn.write_tls(&mut io)?;
    }
    Ok(())
}

/// A readable explanation of a failed handshake.
fn handshake_reason(e: &io::Error) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidMessage(_) => format!(
                "{tls} (the server does not seem to speak TLS: was it started with --no-tls? then connect with --no-tls)"
            ),
            _ => tls.to_string(),
        };
    }
    e.to_string()
}

/// The configuration builder every mode starts from.
fn builder(
    provider: &Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, TlsError> {
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Handshake {
            server: String::new(),
            reason: e.to_string(),
        })
}

/// The CA certificates of a PEM file.
fn ca_file_roots(path: &PathBuf) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::CaFile {
        path: path.clone(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("a certificate is not usable as a CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no CERTIFICATE in the file".to_owned()));
    }
    Ok(roots)
}

/// The system's CA certificates.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "none found".to_owned());
        return Err(TlsError::SystemRoots(why));
    }
    Ok(roots)
}

/// Trust on first use: checks the handshake signatures (the server owns
/// the key of its certificate), captures the certificate's fingerprint and
/// refuses a certificate other than the remembered one inside the
/// handshake, so that nothing is exchanged with an unverified peer.
#[derive(Debug)]
struct TofuVerifier {
    /// Checks the signatures; accepts any certificate.
    inner: AcceptAnyCertificate,
    /// The fingerprint in the known-servers file, if any.
    remembered: Option<Fingerprint>,
    /// The fingerprint the server presented (read after the handshake).
    presented: Mutex<Option<Fingerprint>>,
}

impl ServerCertVerifier for TofuVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = Fingerprint::of(end_entity.as_ref());
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(fp);
        match self.remembered {
            Some(remembered) if remembered != fp => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_strips_the_port_and_ipv6_brackets() {
        assert_eq!(host_part("localhost:7000").ok(), Some("localhost"));
        assert_eq!(host_part("[::1]:7000").ok(), Some("::1"));
        assert_eq!(host_part("127.0.0.1:1").ok(), Some("127.0.0.1"));
        assert!(matches!(
            host_part("localhost"),
            Err(TlsError::BadAddress { .. })
        ));
        assert!(matches!(
            host_part(":7000"),
            Err(TlsError::BadAddress { .. })
        ));
        assert!(matches!(
            host_part("h:99999"),
            Err(TlsError::BadAddress { .. })
        ));
    }
}
