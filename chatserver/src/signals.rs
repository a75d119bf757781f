//! SIGINT and SIGTERM: the first asks the server to shut down (members are
//! told, output is flushed, `Server::run` returns); a second one exits at
//! once with 128 + the signal number. SIGHUP reloads the TLS certificate
//! files (read here, on the signal thread, never on the loop's): new
//! handshakes use the new certificate, connected members stay. SIGXFSZ
//! (a write past the file size limit, `ulimit -f`) is caught and ignored,
//! so that such a write fails with an error the store reports to members
//! (`store_unavailable`) instead of killing the server.

use std::io;
use std::thread::JoinHandle;

use chatcore::{ServerHandle, TlsSource};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
use signal_hook::iterator::{Handle, Signals};

/// Starts catching SIGINT, SIGTERM, SIGHUP and SIGXFSZ. Call it early: a
/// signal that arrives before [`watch`] is kept and handled then.
pub fn catch() -> io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGXFSZ])
}

/// The thread that turns signals into [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct Watcher {
    handle: Handle,
    thread: JoinHandle<()>,
}

/// Starts the signal thread; `tls` is what SIGHUP loads again.
pub fn watch(
    mut signals: Signals,
    server: ServerHandle,
    tls: Option<TlsSource>,
) -> io::Result<Watcher> {
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut asked = false;
            for signal in signals.forever() {
                let name = signal_name(signal);
                if signal == SIGHUP {
                    reload(&server, tls.as_ref());
                    continue;
                }
                if signal == SIGXFSZ {
                    // The write itself failed with EFBIG; whoever made it
                    // (the store, the spool) reports that.
                    tracing::debug!("SIGXFSZ: a write went past the file size limit");
                    continue;
                }
                if asked {
                    tracing::warn!("{name} again: exiting now");
                    std::process::exit(128 + signal);
                }
                asked = true;
                tracing::info!("{name} received: shutting down");
                if server.shutdown().is_err() {
                    tracing::debug!("the server had already stopped");
                }
            }
        })?;
    Ok(Watcher { handle, thread })
}

impl Watcher {
    /// Stops catching signals and ends the thread.
    pub fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

/// SIGHUP: loads the certificate again and hands it to the loop. A file
/// that cannot be read or does not match keeps the current certificate.
fn reload(server: &ServerHandle, tls: Option<&TlsSource>) {
    let Some(source) = tls else {
        tracing::info!("SIGHUP received: TLS is off, nothing to reload");
        return;
    };
    tracing::info!(
        "SIGHUP received: reloading {}",
        crate::daemon::describe(source)
    );
    match source.load() {
        Ok(loaded) => {
            let fingerprint = loaded.fingerprint();
            match server.set_tls(loaded) {
                Ok(()) => tracing::info!("TLS certificate SHA-256 fingerprint: {fingerprint}"),
                Err(e) => tracing::warn!("cannot replace the certificate: {e}"),
            }
        }
        Err(e) => tracing::warn!(
            "cannot reload the certificate, keeping the current one: {}",
            crate::one_line(&anyhow::Error::new(e))
        ),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
