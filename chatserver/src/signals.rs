//! SIGINT and SIGTERM: the first asks the server to shut down (members are
//! told, output is flushed, `Server::run` returns); a second one exits at
//! once with 128 + the signal number. SIGHUP reloads the configuration
//! (what can change at run time; [`crate::reload`]) and the TLS
//! certificate files (read here, on the signal thread, never on the
//! loop's): new handshakes use the new certificate, connected members
//! stay. SIGXFSZ
//! (a write past the file size limit, `ulimit -f`) is caught and ignored,
//! so that such a write fails with an error the store reports to members
//! (`store_unavailable`) instead of killing the server.

use std::io;
use std::thread::JoinHandle;

use chatcore::ServerHandle;

use crate::reload::Reloader;
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

/// Starts the signal thread; `reloader` is what SIGHUP runs.
pub fn watch(
    mut signals: Signals,
    server: ServerHandle,
    reloader: Reloader,
) -> io::Result<Watcher> {
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut asked = false;
            for signal in signals.forever() {
                let name = signal_name(signal);
                if signal == SIGHUP {
                    tracing::info!("SIGHUP received: reloading");
                    if let Err(e) = reloader.reload() {
                        tracing::warn!(
                            "cannot reload, keeping the running configuration: {}",
                            crate::one_line(&e)
                        );
                    }
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

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
