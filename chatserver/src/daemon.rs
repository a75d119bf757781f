//! Bind, announce, serve on this thread until a signal stops the server.

use anyhow::Context;
use chatcore::Server;

use crate::cli::Cli;
use crate::config::Settings;
use crate::logging::LogReload;
use crate::reload::Reloader;
use crate::signals;

/// Runs the server until SIGINT/SIGTERM; `Ok` once it has shut down cleanly.
/// `settings.tls` says where the chat port's certificate comes from
/// (`None`: plain TCP); it is loaded here, before the loop starts, and
/// again on SIGHUP. The metrics endpoint and the admin socket are opened
/// when the settings ask for them.
pub fn run(cli: Cli, settings: Settings, log: LogReload) -> anyhow::Result<()> {
    let caught = signals::catch().context("cannot install signal handlers")?;
    // Before the server is built: chatcore registers its handles then.
    let prometheus = match settings.metrics_listen {
        Some(_) => Some(crate::metrics::install()?),
        None => None,
    };
    let mut config = settings.server.clone();
    let tls = settings.tls.clone();
    warn_if_few_fds(config.max_clients, config.file_descriptors_needed());
    match &tls {
        Some(source) => {
            let loaded = source.load().with_context(|| {
                format!("cannot set up TLS ({})", crate::reload::describe(source))
            })?;
            tracing::info!(
                "TLS on the chat port with {}",
                crate::reload::describe(source)
            );
            log_fingerprint(&loaded);
            config.tls = Some(loaded);
        }
        None => {
            config.tls = None;
            tracing::warn!(
                "TLS IS OFF (--no-tls): chat, names and files cross the network in clear \
                 and anyone on the path can read or change them; use this only on a \
                 trusted network"
            );
        }
    }
    let transport = if config.tls.is_some() {
        "chat, TLS"
    } else {
        "chat, plain TCP"
    };
    let server = Server::builder().config(config).build()?;
    let voice = server
        .voice_addr()
        .map_or_else(|| "voice off".to_owned(), |a| format!("voice on {a}"));
    // Tests and scripts read the chat address from this line.
    tracing::info!(
        "listening on {} ({transport}), {voice}",
        server.local_addr()
    );
    if let (Some(addr), Some(prometheus)) = (settings.metrics_listen, prometheus) {
        let bound = crate::metrics::serve(addr, prometheus, server.handle())?;
        // Tests and scripts read the metrics address from this line.
        tracing::info!("metrics on http://{bound}/metrics, health on http://{bound}/health");
    }
    let admin_socket = settings.admin_socket.clone();
    let reloader = Reloader::new(cli, settings, server.handle(), log);
    let mut admin_opened = None;
    if let Some(path) = admin_socket {
        match crate::admin::serve(&path, server.handle(), reloader.clone()) {
            Ok(()) => admin_opened = Some(path),
            Err(e) => tracing::warn!("no admin socket: {}", crate::one_line(&e)),
        }
    }
    let watcher = signals::watch(caught, server.handle(), reloader)
        .context("cannot start the signal thread")?;
    let result = server.run();
    watcher.stop();
    if let Some(path) = admin_opened {
        // Ours (the admin thread ends with the process).
        let _ = std::fs::remove_file(path);
    }
    result?;
    tracing::info!("stopped");
    Ok(())
}

/// The line users compare with what their client shows (tests and scripts
/// read it too).
pub fn log_fingerprint(tls: &chatcore::ServerTls) {
    tracing::info!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint());
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
