//! Bind, announce, serve on this thread until a signal stops the server.

use anyhow::Context;
use chatcore::{Server, ServerConfig};

use crate::signals;

/// Runs the server until SIGINT/SIGTERM; `Ok` once it has shut down cleanly.
pub fn run(config: ServerConfig) -> anyhow::Result<()> {
    let caught = signals::catch().context("cannot install signal handlers")?;
    warn_if_few_fds(config.max_clients, config.file_descriptors_needed());
    let server = Server::builder().config(config).build()?;
    let voice = server
        .voice_addr()
        .map_or_else(|| "voice off".to_owned(), |a| format!("voice on {a}"));
    // Tests and scripts read the chat address from this line.
    tracing::info!("listening on {} (chat), {voice}", server.local_addr());
    let watcher =
        signals::watch(caught, server.handle()).context("cannot start the signal thread")?;
    let result = server.run();
    watcher.stop();
    result?;
    tracing::info!("stopped");
    Ok(())
}

/// Each connection is a file descriptor: warn when the soft limit is below
/// `need` (`ServerConfig::file_descriptors_needed`; the server would pause
/// accepting instead).
fn warn_if_few_fds(max_clients: usize, need: u64) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| open_files_limit(&text))
    else {
        return;
    };
    if limit < need {
        tracing::warn!(
            "the open-file limit is {limit} but max_clients is {max_clients}: \
             raise it (ulimit -n, or LimitNOFILE= under systemd) to at least {need}, \
             or lower max_clients"
        );
    }
}

/// The soft `Max open files` limit from `/proc/self/limits` (`None` when
/// unlimited or unreadable).
fn open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::open_files_limit;

    #[test]
    fn the_soft_open_files_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_files_limit(unlimited), None);
        assert_eq!(open_files_limit(""), None);
    }
}
