//! Reloading at run time (SIGHUP, `chatserver admin reload`): the
//! configuration is resolved again from the same flags, environment and
//! file; what can change while running is applied, what needs a restart is
//! logged (and returned); the TLS certificate files are loaded again.

use chatcore::{ServerHandle, TlsSource};

use crate::cli::Cli;
use crate::config::{self, Settings};
use crate::logging::LogReload;

/// Everything a reload needs, shared by the signal and admin threads.
#[derive(Clone)]
pub struct Reloader {
    /// The command line the daemon started with (the environment and the
    /// file are read again).
    cli: std::sync::Arc<Cli>,
    /// What the daemon started with, to tell what changed.
    started: std::sync::Arc<Settings>,
    server: ServerHandle,
    log: LogReload,
}

/// What a reload did.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    /// Keys whose new value waits for a restart.
    pub restart_needed: Vec<String>,
    /// The certificate: `reloaded`, `off` (plain TCP) or the failure.
    pub tls: String,
}

impl Reloader {
    /// A reloader for a daemon started with `cli` and `started`.
    pub fn new(cli: Cli, started: Settings, server: ServerHandle, log: LogReload) -> Self {
        Self {
            cli: std::sync::Arc::new(cli),
            started: std::sync::Arc::new(started),
            server,
            log,
        }
    }

    /// Reloads; `Err` (nothing changed) if the configuration is now invalid.
    pub fn reload(&self) -> anyhow::Result<Outcome> {
        let new = config::resolve(&self.cli)?;
        let mut restart: Vec<String> = self
            .server
            .reconfigure(new.server.clone())?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let old = &self.started;
        for (key, changed) in [
            ("tls/tls_cert/tls_key/data_dir", new.tls != old.tls),
            (
                "store/data_dir",
                new.server.store_path != old.server.store_path,
            ),
            ("log_format", new.log_format != old.log_format),
            ("metrics_listen", new.metrics_listen != old.metrics_listen),
            ("admin/data_dir", new.admin_socket != old.admin_socket),
        ] {
            if changed {
                restart.push(key.to_owned());
            }
        }
        self.log
            .set(self.cli.log_level, new.log_level, new.log_private);
        if restart.is_empty() {
            tracing::info!("configuration reloaded");
        } else {
            tracing::warn!(
                "configuration reloaded; these changes need a restart: {}",
                restart.join(", ")
            );
        }
        let tls = reload_tls(&self.server, old.tls.as_ref());
        Ok(Outcome {
            restart_needed: restart,
            tls,
        })
    }
}

/// Loads the certificate again and hands it to the loop. A file that
/// cannot be read or does not match keeps the current certificate.
pub fn reload_tls(server: &ServerHandle, tls: Option<&TlsSource>) -> String {
    let Some(source) = tls else {
        tracing::info!("TLS is off, no certificate to reload");
        return "off".into();
    };
    tracing::info!("reloading {}", describe(source));
    match source.load() {
        Ok(loaded) => {
            let fingerprint = loaded.fingerprint();
            match server.set_tls(loaded) {
                Ok(()) => {
                    tracing::info!("TLS certificate SHA-256 fingerprint: {fingerprint}");
                    "reloaded".into()
                }
                Err(e) => {
                    tracing::warn!("cannot replace the certificate: {e}");
                    format!("not replaced: {e}")
                }
            }
        }
        Err(e) => {
            let why = crate::one_line(&anyhow::Error::new(e));
            tracing::warn!("cannot reload the certificate, keeping the current one: {why}");
            format!("kept the current one: {why}")
        }
    }
}

/// Where the certificate comes from, for the log.
pub fn describe(source: &TlsSource) -> String {
    match source {
        TlsSource::Files { cert, key } => {
            format!("certificate {} and key {}", cert.display(), key.display())
        }
        TlsSource::SelfSigned { data_dir } => format!(
            "the self-signed certificate in {}",
            data_dir.join(chatcore::server::tls::TLS_DIR).display()
        ),
    }
}
