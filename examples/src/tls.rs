//! The TLS flags the `chat` and `bot` programs share, and what they print
//! about the server's certificate.
//!
//! Default: TLS with trust on first use (the first connection remembers the
//! server's certificate fingerprint in the known-servers file; a changed
//! certificate is refused). `--ca-file` or `--system-roots` verify against
//! CAs instead, `--insecure` verifies nothing, `--no-tls` speaks plain TCP.

use std::path::PathBuf;

use chatcore::tls::{ClientTls, KnownServers, TlsError, Trust, Verify};
use clap::Args;

/// How to connect: the flags every client program takes.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Plain TCP, no TLS (for a server started with --no-tls).
    #[arg(long, conflicts_with_all = ["insecure", "ca_file", "system_roots", "known_servers"])]
    pub no_tls: bool,
    /// TLS without verifying the server's certificate (tests only: anyone on
    /// the path can read everything).
    #[arg(long, conflicts_with_all = ["ca_file", "system_roots", "known_servers"])]
    pub insecure: bool,
    /// Verify the server against these PEM CA certificates (the name checked
    /// is the host part of --server).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["system_roots", "known_servers"])]
    pub ca_file: Option<PathBuf>,
    /// Verify the server against the system's CA certificates.
    #[arg(long, conflicts_with = "known_servers")]
    pub system_roots: bool,
    /// The known-servers file of trust on first use (default:
    /// $CHAT_KNOWN_SERVERS, else ~/.config/chat/known_servers).
    #[arg(long, value_name = "FILE")]
    pub known_servers: Option<PathBuf>,
}

impl TlsArgs {
    /// What the flags ask for. Prints the `--insecure` warning on stderr.
    pub fn client_tls(&self, program: &str) -> Result<ClientTls, TlsError> {
        if self.no_tls {
            return Ok(ClientTls::Plain);
        }
        let verify = if self.insecure {
            eprintln!(
                "{program}: WARNING: --insecure: the server's certificate is not verified; anyone on the path can read and change this connection"
            );
            Verify::Insecure
        } else if let Some(file) = &self.ca_file {
            Verify::CaFile(file.clone())
        } else if self.system_roots {
            Verify::SystemRoots
        } else if let Some(file) = &self.known_servers {
            Verify::TrustOnFirstUse(KnownServers::at(file.clone()))
        } else {
            Verify::TrustOnFirstUse(KnownServers::default_location()?)
        };
        Ok(ClientTls::Tls(verify))
    }
}

/// What to tell the user about the connection's trust, if anything: the
/// fingerprint remembered on first use, or that nothing is protected.
pub fn trust_notice(trust: Trust, server: &str, tls: &ClientTls) -> Option<String> {
    match trust {
        Trust::FirstUse(fp) => {
            let file = match tls {
                ClientTls::Tls(Verify::TrustOnFirstUse(known)) => {
                    format!(" in {}", known.path().display())
                }
                _ => String::new(),
            };
            Some(format!(
                "* first connection to {server}: remembered its TLS certificate fingerprint {fp}{file} (compare it with the one the server logs)"
            ))
        }
        Trust::Plain => Some(format!(
            "* connected to {server} over plain TCP (--no-tls): nothing is encrypted"
        )),
        Trust::Insecure => Some(format!(
            "* connected to {server} over TLS WITHOUT verifying the certificate (--insecure)"
        )),
        Trust::Known(_) | Trust::CaVerified => None,
    }
}
