//! SIGINT and SIGTERM: the first asks the server to shut down (members are
//! told, output is flushed, `Server::run` returns); a second one exits at
//! once with 128 + the signal number.

use std::io;
use std::thread::JoinHandle;

use chatcore::ServerHandle;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Starts catching SIGINT and SIGTERM. Call it early: a signal that arrives
/// before [`watch`] is kept and handled then.
pub fn catch() -> io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM])
}

/// The thread that turns signals into [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct Watcher {
    handle: Handle,
    thread: JoinHandle<()>,
}

/// Starts the signal thread.
pub fn watch(mut signals: Signals, server: ServerHandle) -> io::Result<Watcher> {
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut asked = false;
            for signal in signals.forever() {
                let name = signal_name(signal);
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
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
